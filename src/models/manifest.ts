import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { EmbedderNormalization } from './embedder';
import { parseSimilarityScale, type SimilarityScale } from './similarityScale';

/** What we know about one model file beyond its ONNX signature. */
export interface ModelManifest {
  id: string;
  role: 'detector' | 'embedder';
  family: string;
  /** sha256 of the .onnx file this manifest describes. */
  sha256?: string;
  source?: string;
  licence?: string;
  normalization?: EmbedderNormalization;
  /** Cosine similarity threshold for "same person" (embedders). */
  defaultThreshold?: number;
  /** Mirror-averaged embeddings (embedders). */
  flip?: boolean;
  /** When a folder holds several models of one role, the highest preference is used. */
  preference?: number;
  /**
   * Embedders: the similarity values that belong to the model besides its threshold (track
   * re-identification, clustering radius, runner-up margin…; see `SimilarityScale`). Fields left
   * out keep FaceRes's, which suit ArcFace-scale cosines.
   */
  scale?: SimilarityScale;
  notes?: string;
}

/** The manifests shipped in the package's `models/onnx/` folder. */
export const BUILTIN_MANIFEST_DIR = path.resolve(__dirname, '..', '..', '..', 'models', 'onnx');

export function loadManifests(dir = BUILTIN_MANIFEST_DIR): ModelManifest[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => parseManifest(path.join(dir, f)));
}

export function parseManifest(file: string): ModelManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not a valid JSON manifest (${(err as Error).message})`);
  }
  const m = raw as Partial<ModelManifest>;
  if (!m || typeof m !== 'object' || typeof m.id !== 'string')
    throw new Error(`${file}: manifest needs an "id"`);
  if (m.role !== 'detector' && m.role !== 'embedder') {
    throw new Error(`${file}: manifest "role" must be "detector" or "embedder"`);
  }
  const n = m.normalization;
  if (n !== undefined) {
    const triple = (v: unknown) => Array.isArray(v) && v.length === 3 && v.every((x) => Number.isFinite(x));
    if ((n.channels !== 'rgb' && n.channels !== 'bgr') || !triple(n.mean) || !triple(n.std)) {
      throw new Error(`${file}: "normalization" needs channels "rgb"|"bgr" and 3-number "mean" and "std"`);
    }
  }
  if (m.defaultThreshold !== undefined && !(m.defaultThreshold > -1 && m.defaultThreshold < 1)) {
    throw new Error(`${file}: "defaultThreshold" must be a cosine similarity between -1 and 1`);
  }
  if (m.scale !== undefined) return { ...m, scale: parseSimilarityScale(m.scale, file) } as ModelManifest;
  return m as ModelManifest;
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/**
 * The manifest for a model file: a sidecar `<file>.json` next to it wins (for the user's own
 * models), then a shipped manifest with the same checksum.
 */
export async function findManifest(
  modelFile: string,
  shipped = loadManifests(),
): Promise<ModelManifest | undefined> {
  const sidecar = modelFile.replace(/\.onnx$/i, '') + '.json';
  if (existsSync(sidecar)) return parseManifest(sidecar);
  const digest = await sha256File(modelFile);
  return shipped.find((m) => m.sha256 === digest);
}
