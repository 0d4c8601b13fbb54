import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

export type PackRole = 'detector' | 'landmarker' | 'embedder' | 'attribute';

/** A model we build from weights that ship inside an npm package (`models/sources/<id>.json`). */
export interface ModelSource {
  id: string;
  role: PackRole;
  family: string;
  /** Which converter turns the source files into ONNX. */
  builder: string;
  source: {
    package: string;
    version: string;
    /** Path inside the package → sha256 of that file. */
    files: Record<string, string>;
  };
  licence: string;
  input: number[];
  /**
   * ONNX Runtime threads inside one operator when the caller sets none (`threads`); without it, ONNX
   * Runtime's own choice (one per core). For a model whose operators are too small to share out.
   */
  threads?: number;
  /**
   * Graph rewrites for ONNX Runtime's blocked convolution layout (see src/models/tfjs/rewrite.ts), for the
   * `tfjs-graph` builder. A `cpuFlag` limits a rewrite to machines whose CPU has that flag (`/proc/cpuinfo`):
   * the layout exists only on x86-64 (every one lists `sse2`), its blocks are 16 channels wide only with AVX-512, and
   * elsewhere a rewrite is work for nothing.
   */
  rewrites?: {
    channelPadsAsConvs?: boolean | { cpuFlag: string };
    widenChannels?: { from: number; to: number; cpuFlag?: string };
    /** The model takes its image NCHW (no transpose in the graph); the model's wrapper must accept it. */
    nchwInput?: boolean;
  };
  notes?: string;
}

/** Where the shipped source manifests live (`models/sources/` in the package). */
export const SOURCES_DIR = path.resolve(__dirname, '..', '..', '..', '..', 'models', 'sources');

const ROLES: PackRole[] = ['detector', 'landmarker', 'embedder', 'attribute'];

export function parseSource(file: string): ModelSource {
  let m: Partial<ModelSource>;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as Partial<ModelSource>;
  } catch (err) {
    throw new Error(`${file}: not a valid JSON model source (${(err as Error).message})`);
  }
  const problems: string[] = [];
  if (typeof m.id !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/.test(m.id))
    problems.push('"id" (lower-case name)');
  if (!ROLES.includes(m.role as PackRole)) problems.push(`"role" (one of ${ROLES.join(', ')})`);
  if (typeof m.builder !== 'string') problems.push('"builder"');
  const s = m.source;
  if (!s || typeof s.package !== 'string' || typeof s.version !== 'string' || !s.files) {
    problems.push('"source" {package, version, files}');
  } else {
    for (const [f, sha] of Object.entries(s.files)) {
      if (!/^[0-9a-f]{64}$/.test(String(sha))) problems.push(`sha256 of ${f}`);
    }
  }
  if (m.threads !== undefined && !(Number.isInteger(m.threads) && m.threads >= 1))
    problems.push('"threads" (a whole number ≥ 1)');
  if (m.rewrites !== undefined) problems.push(...rewriteProblems(m.rewrites));
  if (problems.length) throw new Error(`${file}: missing or invalid ${problems.join(', ')}`);
  return m as ModelSource;
}

function rewriteProblems(r: unknown): string[] {
  if (r === null || typeof r !== 'object' || Array.isArray(r)) return ['"rewrites" (an object)'];
  const { channelPadsAsConvs, widenChannels, nchwInput, ...rest } = r as NonNullable<ModelSource['rewrites']>;
  const problems = Object.keys(rest).map((k) => `"rewrites.${k}" (unknown)`);
  const flag = (f: unknown) => typeof f === 'string' && /^[a-z0-9_]+$/.test(f);
  const pads = channelPadsAsConvs;
  if (
    pads !== undefined &&
    typeof pads !== 'boolean' &&
    (pads === null || typeof pads !== 'object' || !flag(pads.cpuFlag))
  )
    problems.push('"rewrites.channelPadsAsConvs" (true, false or {cpuFlag})');
  if (nchwInput !== undefined && typeof nchwInput !== 'boolean')
    problems.push('"rewrites.nchwInput" (true or false)');
  if (widenChannels !== undefined) {
    const w = widenChannels;
    const whole = (n: unknown) => Number.isInteger(n) && (n as number) >= 1;
    if (w === null || typeof w !== 'object' || !whole(w.from) || !whole(w.to) || w.to <= w.from)
      problems.push('"rewrites.widenChannels" ({from, to}: whole numbers, from < to)');
    else if (w.cpuFlag !== undefined && !flag(w.cpuFlag))
      problems.push('"rewrites.widenChannels.cpuFlag" (a /proc/cpuinfo flag such as avx512f)');
  }
  return problems;
}

export function loadSources(dir = SOURCES_DIR): ModelSource[] {
  if (!existsSync(dir)) throw new Error(`${dir}: model source manifests are missing (a broken install?)`);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => parseSource(path.join(dir, f)));
}

/** The folder of an installed npm package, or a clear error naming it. */
export function packageDir(name: string): string {
  // Not require.resolve('<name>/package.json'): packages with an "exports" map may not export it.
  for (const dir of require.resolve.paths(name) ?? []) {
    const candidate = path.join(dir, name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
  }
  throw new Error(`the npm package ${name} is not installed: run 'npm install' (it ships the model weights)`);
}
