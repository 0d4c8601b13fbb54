import type { VectorHit, VectorIndex } from './vectorIndex';

/**
 * Exact inner-product search over vectors held in one contiguous `Float32Array`, row `slot` at
 * `slot * dimension`. Storage doubles when full; deleting swaps the last row into the hole, so
 * rows stay contiguous and a delete costs one row copy. A search scores every row and keeps the
 * `k` best in a small min-heap (no sort of all scores). Always available; the reference the
 * FAISS backend is tested against.
 */
export class ExactIndex implements VectorIndex {
  readonly backend = 'exact';
  private data: Float32Array;
  /** The id held in each slot; only `[0, count)` is meaningful. */
  private slotIds: Float64Array;
  private readonly slotOf = new Map<number, number>();
  private count = 0;
  private disposed = false;

  constructor(
    readonly dimension: number,
    initialCapacity = 64,
  ) {
    checkDimension(dimension);
    const capacity = Math.max(1, Math.floor(initialCapacity));
    this.data = new Float32Array(capacity * dimension);
    this.slotIds = new Float64Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Whether `id` is held. */
  has(id: number): boolean {
    return this.slotOf.has(id);
  }

  /** A copy of the vector held under `id`, or undefined. */
  get(id: number): Float32Array | undefined {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return undefined;
    return this.data.slice(slot * this.dimension, (slot + 1) * this.dimension);
  }

  /** The rows `[0, size)` and their ids, as views (valid until the next add or remove). */
  rows(): { ids: Float64Array; data: Float32Array } {
    return {
      ids: this.slotIds.subarray(0, this.count),
      data: this.data.subarray(0, this.count * this.dimension),
    };
  }

  add(ids: number[], vectors: Float32Array[]): void {
    this.checkOpen();
    checkBatch(this.dimension, ids, vectors, (id) => this.slotOf.has(id));
    this.reserve(this.count + ids.length);
    const d = this.dimension;
    for (let i = 0; i < ids.length; i++) {
      const slot = this.count++;
      this.data.set(vectors[i], slot * d);
      this.slotIds[slot] = ids[i];
      this.slotOf.set(ids[i], slot);
    }
  }

  remove(ids: number[]): number {
    this.checkOpen();
    const d = this.dimension;
    let removed = 0;
    for (const id of ids) {
      const slot = this.slotOf.get(id);
      if (slot === undefined) continue;
      const last = --this.count;
      if (slot !== last) {
        this.data.copyWithin(slot * d, last * d, (last + 1) * d);
        const movedId = this.slotIds[last];
        this.slotIds[slot] = movedId;
        this.slotOf.set(movedId, slot);
      }
      this.slotOf.delete(id);
      removed++;
    }
    return removed;
  }

  search(query: Float32Array, k: number): VectorHit[] {
    this.checkOpen();
    checkQuery(this.dimension, query, k);
    const n = this.count;
    const want = Math.min(k, n);
    if (want === 0) return [];
    const d = this.dimension;
    const data = this.data;
    const top = new TopK(want);
    for (let slot = 0, base = 0; slot < n; slot++, base += d) {
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let j = 0;
      for (; j + 3 < d; j += 4) {
        s0 += data[base + j] * query[j];
        s1 += data[base + j + 1] * query[j + 1];
        s2 += data[base + j + 2] * query[j + 2];
        s3 += data[base + j + 3] * query[j + 3];
      }
      for (; j < d; j++) s0 += data[base + j] * query[j];
      top.offer(s0 + s1 + s2 + s3, slot);
    }
    return top.sorted().map(({ score, index }) => ({ id: this.slotIds[index], score }));
  }

  ids(): number[] {
    return Array.from(this.slotIds.subarray(0, this.count));
  }

  dispose(): void {
    this.disposed = true;
    this.count = 0;
    this.slotOf.clear();
    this.data = new Float32Array(0);
    this.slotIds = new Float64Array(0);
  }

  private reserve(rows: number): void {
    const capacity = this.slotIds.length;
    if (rows <= capacity) return;
    let next = Math.max(1, capacity);
    while (next < rows) next *= 2;
    const data = new Float32Array(next * this.dimension);
    data.set(this.data.subarray(0, this.count * this.dimension));
    const slotIds = new Float64Array(next);
    slotIds.set(this.slotIds.subarray(0, this.count));
    this.data = data;
    this.slotIds = slotIds;
  }

  private checkOpen(): void {
    if (this.disposed) throw new Error('vector index: used after dispose()');
  }
}

/**
 * The `k` largest scores seen, kept in a binary min-heap whose root is the worst kept score: a
 * score that does not beat the root costs one comparison.
 */
export class TopK {
  private readonly scores: Float64Array;
  private readonly indices: Float64Array;
  private length = 0;

  constructor(private readonly k: number) {
    this.scores = new Float64Array(k);
    this.indices = new Float64Array(k);
  }

  offer(score: number, index: number): void {
    const { scores, indices } = this;
    if (this.length < this.k) {
      // Sift up.
      let i = this.length++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (scores[parent] <= score) break;
        scores[i] = scores[parent];
        indices[i] = indices[parent];
        i = parent;
      }
      scores[i] = score;
      indices[i] = index;
      return;
    }
    if (score <= scores[0]) return;
    // Replace the root, sift down.
    const n = this.length;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && scores[right] < scores[left] ? right : left;
      if (scores[child] >= score) break;
      scores[i] = scores[child];
      indices[i] = indices[child];
      i = child;
    }
    scores[i] = score;
    indices[i] = index;
  }

  /** The kept entries, best first (ties: lower index first). */
  sorted(): { score: number; index: number }[] {
    const out: { score: number; index: number }[] = [];
    for (let i = 0; i < this.length; i++) out.push({ score: this.scores[i], index: this.indices[i] });
    return out.sort((a, b) => b.score - a.score || a.index - b.index);
  }
}

// ---------------------------------------------------------------------------------------------
// Validation shared by the backends

export function checkDimension(dimension: number): void {
  if (!Number.isInteger(dimension) || dimension < 1) {
    throw new Error(`vector index: dimension must be a positive integer, got ${dimension}`);
  }
}

function checkVector(dimension: number, vector: Float32Array, what: string): void {
  if (!(vector instanceof Float32Array)) throw new Error(`vector index: ${what} must be a Float32Array`);
  if (vector.length !== dimension) {
    throw new Error(`vector index: ${what} has dimension ${vector.length}, the index has ${dimension}`);
  }
  for (let j = 0; j < vector.length; j++) {
    if (!Number.isFinite(vector[j])) {
      throw new Error(`vector index: ${what} has a non-finite value (${vector[j]}) at ${j}`);
    }
  }
}

/** Validates a whole batch before anything is added, so that a bad batch adds nothing. */
export function checkBatch(
  dimension: number,
  ids: number[],
  vectors: Float32Array[],
  held: (id: number) => boolean,
): void {
  if (ids.length !== vectors.length) {
    throw new Error(`vector index: ${ids.length} ids for ${vectors.length} vectors`);
  }
  const seen = new Set<number>();
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isSafeInteger(id)) throw new Error(`vector index: id must be a safe integer, got ${id}`);
    if (held(id)) throw new Error(`vector index: id ${id} is already present`);
    if (seen.has(id)) throw new Error(`vector index: id ${id} appears twice in one add()`);
    seen.add(id);
    checkVector(dimension, vectors[i], `vector for id ${id}`);
  }
}

export function checkQuery(dimension: number, query: Float32Array, k: number): void {
  if (!Number.isInteger(k) || k < 0) throw new Error(`vector index: k must be an integer ≥ 0, got ${k}`);
  checkVector(dimension, query, 'query');
}
