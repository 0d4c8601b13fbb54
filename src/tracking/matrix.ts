/**
 * Dense row-major matrices in Float64Array, just enough for a Kalman filter on 8 state and 4
 * measurement dimensions. Sizes are passed explicitly rather than stored: the arrays stay plain typed
 * arrays that the filter can keep per track without wrapping objects.
 */

/** `a` (n×k) times `b` (k×m), into `out` (n×m) when given. `out` must not alias `a` or `b`. */
export function matMul(
  a: Float64Array,
  b: Float64Array,
  n: number,
  k: number,
  m: number,
  out: Float64Array = new Float64Array(n * m),
): Float64Array {
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t] * b[t * m + j];
      out[i * m + j] = s;
    }
  }
  return out;
}

/** `a` (n×k) times the transpose of `b` (m×k), into `out` (n×m). */
export function matMulTransposed(
  a: Float64Array,
  b: Float64Array,
  n: number,
  k: number,
  m: number,
  out: Float64Array = new Float64Array(n * m),
): Float64Array {
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t] * b[j * k + t];
      out[i * m + j] = s;
    }
  }
  return out;
}

export function identity(n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out[i * n + i] = 1;
  return out;
}

/**
 * Averages `a` (n×n) with its transpose in place. Covariances are symmetric in exact arithmetic;
 * rounding in `P − K S Kᵀ` breaks that a little every update, and after thousands of frames the
 * asymmetry would reach the Cholesky factorisation.
 */
export function symmetrize(a: Float64Array, n: number): Float64Array {
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = (a[i * n + j] + a[j * n + i]) / 2;
      a[i * n + j] = v;
      a[j * n + i] = v;
    }
  }
  return a;
}

/**
 * Lower-triangular `L` with `L Lᵀ = a` for a symmetric positive-definite `a` (n×n). Throws when
 * `a` is not positive definite: for a covariance that means the filter's state is broken, which
 * must not pass silently.
 */
export function cholesky(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let t = 0; t < j; t++) s -= l[i * n + t] * l[j * n + t];
      if (i === j) {
        if (!(s > 0)) throw new RangeError('cholesky: matrix is not positive definite');
        l[i * n + i] = Math.sqrt(s);
      } else {
        l[i * n + j] = s / l[j * n + j];
      }
    }
  }
  return l;
}

/** Solves `L y = b` in place for each of the `m` columns of `b` (n×m); `L` lower-triangular n×n. */
export function forwardSubstitute(l: Float64Array, b: Float64Array, n: number, m: number): Float64Array {
  for (let c = 0; c < m; c++) {
    for (let i = 0; i < n; i++) {
      let s = b[i * m + c];
      for (let t = 0; t < i; t++) s -= l[i * n + t] * b[t * m + c];
      b[i * m + c] = s / l[i * n + i];
    }
  }
  return b;
}

/** Solves `Lᵀ x = y` in place for each of the `m` columns of `y` (n×m). */
export function backSubstituteTransposed(
  l: Float64Array,
  y: Float64Array,
  n: number,
  m: number,
): Float64Array {
  for (let c = 0; c < m; c++) {
    for (let i = n - 1; i >= 0; i--) {
      let s = y[i * m + c];
      for (let t = i + 1; t < n; t++) s -= l[t * n + i] * y[t * m + c];
      y[i * m + c] = s / l[i * n + i];
    }
  }
  return y;
}

/** Solves `a x = b` for symmetric positive-definite `a` (n×n) and `b` (n×m), without changing `b`. */
export function solveSpd(a: Float64Array, b: Float64Array, n: number, m: number): Float64Array {
  const l = cholesky(a, n);
  return backSubstituteTransposed(l, forwardSubstitute(l, Float64Array.from(b), n, m), n, m);
}
