import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describeRewrites, type GraphRewrites } from '../tfjs/rewrite';
import { modelCacheDir } from './cache';
import { cpuFlags } from './cpuFlags';
import { loadSources, packageDir, type ModelSource } from './sources';

/**
 * Turns a model's source files (absolute paths, in manifest order) into an ONNX model, with the graph
 * rewrites chosen for this machine (builders without rewrites ignore them).
 */
export type ModelBuilder = (files: string[], source: ModelSource, rewrites: GraphRewrites) => Promise<Buffer>;

const builders = new Map<string, ModelBuilder>();

/** Builders live beside the code that knows each format; they announce themselves here. */
export function registerBuilder(kind: string, builder: ModelBuilder): void {
  builders.set(kind, builder);
}

/** Bump when a builder's output changes, so caches built by older code are rebuilt. */
export const BUILD_VERSION = 1;

export interface BuildStamp {
  id: string;
  buildVersion: number;
  sourceSha256: Record<string, string>;
  onnxSha256: string;
  /** The graph rewrites the model was built with (describeRewrites); absent: none. */
  rewrites?: string[];
  /** Rewrites this CPU wanted that the build's check refused: the plain graph was kept instead. */
  refusedRewrites?: string[];
  builtAt: string;
}

/**
 * The manifest's rewrites that apply on a CPU with these flags: one tied to a flag only where the CPU
 * has it.
 */
export function chosenRewrites(source: ModelSource, flags: ReadonlySet<string> = cpuFlags()): GraphRewrites {
  const r = source.rewrites;
  if (!r) return {};
  const out: GraphRewrites = {};
  const here = (cpuFlag: string | undefined) => cpuFlag === undefined || flags.has(cpuFlag);
  const pads = r.channelPadsAsConvs;
  if (pads === true || (typeof pads === 'object' && here(pads.cpuFlag))) out.channelPadsAsConvs = true;
  const w = r.widenChannels;
  if (w && here(w.cpuFlag)) out.widenChannels = { from: w.from, to: w.to };
  if (r.nchwInput) out.nchwInput = true;
  return out;
}

export interface BuiltModel {
  source: ModelSource;
  onnxPath: string;
  stampPath: string;
}

export function builtPaths(source: ModelSource, cacheDir = modelCacheDir()): BuiltModel {
  return {
    source,
    onnxPath: path.join(cacheDir, `${source.id}.onnx`),
    stampPath: path.join(cacheDir, `${source.id}.stamp.json`),
  };
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Is this model built from exactly these sources by this version of the builders? `checkOnnx: false` trusts
 * the stamp without reading and hashing the model (tens of MB): enough to foresee a build, not to skip one.
 */
export function isBuilt(
  source: ModelSource,
  cacheDir = modelCacheDir(),
  options: { checkOnnx?: boolean; cpuFlags?: ReadonlySet<string> } = {},
): boolean {
  const { onnxPath, stampPath } = builtPaths(source, cacheDir);
  if (!existsSync(onnxPath) || !existsSync(stampPath)) return false;
  try {
    const stamp = JSON.parse(readFileSync(stampPath, 'utf8')) as BuildStamp;
    const wanted = JSON.stringify(describeRewrites(chosenRewrites(source, options.cpuFlags)));
    return (
      stamp.buildVersion === BUILD_VERSION &&
      JSON.stringify(stamp.sourceSha256) === JSON.stringify(source.source.files) &&
      // A cache copied to a machine with another CPU is rebuilt for it; rewrites refused here are not retried.
      [stamp.rewrites ?? [], stamp.refusedRewrites].some((done) => JSON.stringify(done) === wanted) &&
      (options.checkOnnx === false || sha256(readFileSync(onnxPath)) === stamp.onnxSha256)
    );
  } catch {
    return false;
  }
}

/** Write through a temporary file and a rename, so a crash never leaves half a model behind. */
function writeAtomic(file: string, bytes: Buffer | string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, file);
}

/** Check the source files against their checksums and return their absolute paths. */
export function verifiedSourceFiles(source: ModelSource): string[] {
  const dir = packageDir(source.source.package);
  return Object.entries(source.source.files).map(([rel, expected]) => {
    const file = path.join(dir, rel);
    if (!existsSync(file)) {
      throw new Error(
        `${source.id}: ${source.source.package} has no ${rel} (expected version ${source.source.version})`,
      );
    }
    const actual = sha256(readFileSync(file));
    if (actual !== expected) {
      throw new Error(
        `${source.id}: ${source.source.package}/${rel} has sha256 ${actual.slice(0, 12)}…, expected ` +
          `${expected.slice(0, 12)}… (install version ${source.source.version} of ${source.source.package})`,
      );
    }
    return file;
  });
}

export interface BuildReport {
  id: string;
  status: 'built' | 'up to date' | 'failed';
  onnxPath: string;
  ms: number;
  error?: string;
  /** Built, but not as planned: the rewrites for this CPU were refused by the check, the plain graph kept. */
  warning?: string;
}

/**
 * Build every model (or those named) into the cache. Up-to-date models are left alone, so running
 * it again is cheap. Never throws for one model's failure: each report says what happened.
 */
export async function buildModels(
  options: {
    ids?: string[];
    force?: boolean;
    cacheDir?: string;
    sources?: ModelSource[];
    cpuFlags?: ReadonlySet<string>;
  } = {},
): Promise<BuildReport[]> {
  const cacheDir = options.cacheDir ?? modelCacheDir();
  const all = options.sources ?? loadSources();
  const unknown = (options.ids ?? []).filter((id) => !all.some((s) => s.id === id));
  if (unknown.length)
    throw new Error(`unknown model ${unknown.join(', ')}; known: ${all.map((s) => s.id).join(', ')}`);
  const chosen = options.ids?.length ? all.filter((s) => options.ids?.includes(s.id)) : all;
  mkdirSync(cacheDir, { recursive: true });
  const reports: BuildReport[] = [];
  for (const source of chosen) {
    const started = Date.now();
    const { onnxPath, stampPath } = builtPaths(source, cacheDir);
    try {
      if (!options.force && isBuilt(source, cacheDir, { cpuFlags: options.cpuFlags })) {
        reports.push({ id: source.id, status: 'up to date', onnxPath, ms: Date.now() - started });
        continue;
      }
      const builder = builders.get(source.builder);
      if (!builder) throw new Error(`no builder '${source.builder}'`);
      const files = verifiedSourceFiles(source);
      const rewrites = chosenRewrites(source, options.cpuFlags);
      const applied = describeRewrites(rewrites);
      let onnx = await builder(files, source, rewrites);
      let kept = applied;
      let warning: string | undefined;
      if (applied.length > 0) {
        // A rewrite must not change what the model computes: the plain build is the reference, and the model
        // if they disagree (slower, but right; the stamp remembers, so the next open does not try again).
        const plain = await builder(files, source, {});
        // Loaded here, not at start-up: it brings ONNX Runtime, which `models list` has no use for.
        const { sameFunction } = await import('./rewriteCheck');
        const check = await sameFunction(plain, onnx, source.input);
        if (!check.same) {
          warning = `${source.id}: built without its rewrites for this CPU (${applied.join(', ')}): the rewritten graph computes something else (${check.why})`;
          onnx = plain;
          kept = [];
        }
      }
      writeAtomic(onnxPath, onnx);
      const stamp: BuildStamp = {
        id: source.id,
        buildVersion: BUILD_VERSION,
        sourceSha256: source.source.files,
        onnxSha256: sha256(onnx),
        ...(kept.length > 0 ? { rewrites: kept } : {}),
        ...(warning !== undefined ? { refusedRewrites: applied } : {}),
        builtAt: new Date().toISOString(),
      };
      writeAtomic(stampPath, JSON.stringify(stamp, null, 2) + '\n');
      reports.push({
        id: source.id,
        status: 'built',
        onnxPath,
        ms: Date.now() - started,
        ...(warning !== undefined ? { warning } : {}),
      });
    } catch (err) {
      reports.push({
        id: source.id,
        status: 'failed',
        onnxPath,
        ms: Date.now() - started,
        error: (err as Error).message,
      });
    }
  }
  return reports;
}
