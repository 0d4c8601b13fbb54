import { ExactIndex } from './exactIndex';
import { FaissIndex, faissAvailable, type FaissIndexOptions } from './faissIndex';
import type { VectorIndex } from './vectorIndex';

export type VectorBackend = 'auto' | 'exact' | 'faiss';

export interface CreateIndexOptions {
  /**
   * `auto` (default): faiss when faiss-node loads, else exact. `faiss` throws when it does not.
   * FAISS is exact (`IndexFlatIP`) below 50,000 vectors and approximate (IVF) above: see
   * `FaissIndexOptions` and src/gallery/faissIndex.ts for the choice and its figures.
   */
  backend?: VectorBackend;
  /** Passed to the FAISS backend (index kind, size threshold, IVF/HNSW parameters). */
  faiss?: FaissIndexOptions;
}

/** A vector index of the given dimension on the chosen backend. */
export function createIndex(dimension: number, options: CreateIndexOptions = {}): VectorIndex {
  const backend = options.backend ?? 'auto';
  switch (backend) {
    case 'exact':
      return new ExactIndex(dimension);
    case 'faiss':
      return new FaissIndex(dimension, options.faiss);
    case 'auto':
      return faissAvailable() ? new FaissIndex(dimension, options.faiss) : new ExactIndex(dimension);
    default:
      throw new Error(`vector index: unknown backend '${String(backend)}' (auto, exact or faiss)`);
  }
}
