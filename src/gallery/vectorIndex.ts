/**
 * A searchable set of L2-normalised vectors, each under a stable numeric id that the gallery
 * chooses. Backends: `exact` (typed arrays, always available) and `faiss` (when faiss-node is
 * built). Scores are inner products, i.e. cosine similarity for normalised vectors.
 */
export interface VectorHit {
  id: number;
  score: number;
}

export interface VectorIndex {
  readonly backend: string;
  readonly dimension: number;
  readonly size: number;
  /** Add vectors under ids the caller chooses (unique, not already present). */
  add(ids: number[], vectors: Float32Array[]): void;
  /** Remove vectors by id; unknown ids are ignored. Returns how many were removed. */
  remove(ids: number[]): number;
  /** The `k` best vectors for a query, best first (fewer when the index holds fewer). */
  search(query: Float32Array, k: number): VectorHit[];
  /** Every id held. */
  ids(): number[];
  /** Release native memory, if any. */
  dispose(): void;
}
