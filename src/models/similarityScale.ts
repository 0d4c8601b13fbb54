/**
 * The similarity values that belong to an embedder besides its match threshold. Cosine
 * similarities of one embedder are not comparable with another's: FaceRes puts strangers near 0.39
 * and the same person near 0.67, face-api's ResNet puts them near 0.83 and 0.95. Every fixed
 * similarity the pipeline uses must therefore come from the model that made the embeddings.
 */
import { loadSources } from './pack/sources';

export interface SimilarityScale {
  /** A lost track's mean embedding and a new track's embedding at least this similar: the same person. */
  reidSimilarity: number;
  /** A track's new embedding less similar than this to its mean: the box now shows someone else. */
  changeSimilarity: number;
  /** DBSCAN radius (cosine distance) for clustering unknown faces into people. */
  clusterEps: number;
  /** An unknown face this similar to one just kept is the same face again, not kept twice. */
  dedupeSimilarity: number;
  /**
   * The default runner-up margin: a best match whose lead over the second person is smaller is
   * `ambiguous` and not named. It cuts "named as someone else" among enrolled people more than a
   * stricter threshold does at the same share named right (bench/lfwOpenSet.ts, models/README.md).
   */
  ambiguityMargin: number;
}

/**
 * The values measured for FaceRes (the 0.1 default embedder), kept for models that state none:
 * see `TrackIdentityOptions` and `DEFAULT_CLUSTER_EPS` for how each was measured.
 */
export const FACERES_SCALE: Readonly<SimilarityScale> = Object.freeze({
  reidSimilarity: 0.65,
  changeSimilarity: 0.5,
  clusterEps: 0.35,
  dedupeSimilarity: 0.8,
  // LFW open set, 50 enrolled: someone else named 7.9 → 0.9 %, strangers named 79 → 39 %, named right 92 → 85 %.
  ambiguityMargin: 0.03,
});

/** Checks a manifest's `scale` block; throws naming the bad field. */
export function parseSimilarityScale(value: unknown, source: string): SimilarityScale {
  const v = value as Partial<Record<keyof SimilarityScale, unknown>>;
  const out = { ...FACERES_SCALE };
  if (typeof value !== 'object' || value === null) throw new Error(`${source}: scale must be an object`);
  for (const key of Object.keys(FACERES_SCALE) as (keyof SimilarityScale)[]) {
    if (v[key] === undefined) continue;
    const x = v[key];
    if (typeof x !== 'number' || !Number.isFinite(x))
      throw new Error(`${source}: scale.${key} must be a number`);
    out[key] = x;
  }
  if (!(out.clusterEps > 0 && out.clusterEps < 2))
    throw new Error(`${source}: scale.clusterEps must be in (0, 2)`);
  if (!(out.ambiguityMargin >= 0 && out.ambiguityMargin < 2))
    throw new Error(`${source}: scale.ambiguityMargin must be in [0, 2)`);
  return out;
}

/** What the packaged embedders' source manifests say, read once (the manifests ship with the package). */
let packaged: Map<string, { scale?: SimilarityScale; threshold?: number }> | undefined;

function packagedEmbedders(): Map<string, { scale?: SimilarityScale; threshold?: number }> {
  if (!packaged) {
    packaged = new Map();
    for (const source of loadSources()) {
      const settings = (source as { embedder?: { scale?: unknown; defaultThreshold?: unknown } }).embedder;
      if (!settings) continue;
      packaged.set(source.id, {
        scale: settings.scale === undefined ? undefined : parseSimilarityScale(settings.scale, source.id),
        threshold: typeof settings.defaultThreshold === 'number' ? settings.defaultThreshold : undefined,
      });
    }
  }
  return packaged;
}

/** A packaged embedder's shipped threshold (its manifest's `defaultThreshold`), if `modelId` is one. */
export function packagedThresholdOf(modelId: string): number | undefined {
  return packagedEmbedders().get(modelId)?.threshold;
}

/** Scales stated by the manifests of models loaded from files (a user's own), by model id. */
const declared = new Map<string, SimilarityScale>();

/**
 * Records the scale a loaded model's manifest states, so that everything that later knows only
 * the model's id (a gallery, a photo library, the tracker) uses it.
 */
export function declareSimilarityScale(modelId: string, scale: SimilarityScale): void {
  declared.set(modelId, { ...scale });
}

/**
 * The scale of a model by id: one its manifest stated when it was loaded, a packaged model's from
 * its source manifest, FaceRes's for anything else.
 */
export function similarityScaleOf(modelId: string): SimilarityScale {
  return { ...scaleEntry(modelId) };
}

/** The model's default runner-up margin; read on every match, so without the copy `similarityScaleOf` makes. */
export function ambiguityMarginOf(modelId: string): number {
  return scaleEntry(modelId).ambiguityMargin;
}

function scaleEntry(modelId: string): Readonly<SimilarityScale> {
  return declared.get(modelId) ?? packagedEmbedders().get(modelId)?.scale ?? FACERES_SCALE;
}
