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
