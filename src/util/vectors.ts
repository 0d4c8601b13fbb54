/**
 * The vector and box arithmetic every stage shares (one copy, so a fix lands everywhere).
 */

/** Inner product; of two L2-normalised embeddings, their cosine similarity. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`vector sizes differ: ${a.length} vs ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Intersection over union of two [x1, y1, x2, y2] boxes (0 when they do not overlap or either is empty). */
export function iou(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Inner product of rows `i` and `j` of a row-major matrix with `d` columns: the similarity of two
 * L2-normalised embeddings packed into one Float32Array (no per-row subarray objects).
 */
export function rowDot(m: Float32Array, d: number, i: number, j: number): number {
  const a = i * d;
  const b = j * d;
  let s = 0;
  for (let k = 0; k < d; k++) s += m[a + k] * m[b + k];
  return s;
}

/** A standard normal sample (Box–Muller) from a uniform source such as `seededRandom`. */
export function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** A random unit vector of `d` values, for synthetic galleries in tests and benchmarks. */
export function randomUnitVector(rand: () => number, d: number): Float32Array {
  const v = new Float32Array(d);
  for (let j = 0; j < d; j++) v[j] = rand() * 2 - 1;
  return normalized(v);
}

/** A copy of `v` scaled to unit length. */
export function normalized(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  return v.map((x) => x / n);
}
