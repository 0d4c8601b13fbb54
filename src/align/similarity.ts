/**
 * Least-squares 2-D similarity transforms (rotation + uniform scale + translation).
 *
 * The estimator follows Umeyama, "Least-squares estimation of transformation parameters
 * between two point patterns" (IEEE TPAMI 13(4), 1991), specialised to two dimensions with a
 * closed-form 2×2 singular value decomposition. The result is always a proper rotation
 * (never a reflection): when the SVD factors of the covariance have opposite orientation the
 * sign of the last singular direction is flipped, exactly as in the paper.
 */

import type { Point } from '../types';

/** A 2×3 affine matrix, row-major: [[m0, m1, m2], [m3, m4, m5]]; maps (x, y) to (m0·x + m1·y + m2, m3·x + m4·y + m5). */
export type Affine2x3 = [number, number, number, number, number, number];

/**
 * A 2-D similarity transform stored as its 2×3 affine matrix. For a similarity the linear part
 * has the form [[s·cos θ, −s·sin θ], [s·sin θ, s·cos θ]].
 */
export interface SimilarityTransform {
  m: Affine2x3;
}

/** Maps a point through the transform. */
export function applyTransform(t: SimilarityTransform, p: Point): Point {
  const m = t.m;
  return [m[0] * p[0] + m[1] * p[1] + m[2], m[3] * p[0] + m[4] * p[1] + m[5]];
}

/** Determinant of the 2×2 linear part (scale² for a similarity; negative would mean a reflection). */
export function transformDeterminant(t: SimilarityTransform): number {
  return t.m[0] * t.m[4] - t.m[1] * t.m[3];
}

/**
 * The inverse transform (works for any invertible 2×3 affine matrix).
 * @throws Error when the matrix is singular or contains non-finite values.
 */
export function invertTransform(t: SimilarityTransform): SimilarityTransform {
  const [a, b, c, d, e, f] = t.m;
  if (!t.m.every(Number.isFinite)) {
    throw new Error('invertTransform: transform contains non-finite values');
  }
  const det = a * e - b * d;
  if (det === 0 || !Number.isFinite(1 / det)) {
    throw new Error('invertTransform: transform is singular (zero scale) and cannot be inverted');
  }
  const ia = e / det;
  const ib = -b / det;
  const id = -d / det;
  const ie = a / det;
  return { m: [ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)] };
}

/** U·diag(d1, d2)·Vᵀ with d1 ≥ d2 ≥ 0; U and V are orthogonal, stored row-major. */
interface Svd2 {
  u: [number, number, number, number];
  d1: number;
  d2: number;
  v: [number, number, number, number];
}

/**
 * Closed-form SVD of the 2×2 matrix [[p, q], [r, s]].
 *
 * Any 2×2 matrix splits uniquely into a scaled rotation [[α, −β], [β, α]] plus a scaled
 * reflection [[γ, δ], [δ, −γ]]. With E = |(α, β)|, φ = atan2(β, α), F = |(γ, δ)|,
 * ψ = atan2(δ, γ) one has M = R((φ+ψ)/2) · diag(E+F, E−F) · R((φ−ψ)/2), where R(t) is the
 * rotation by t. A negative E−F is made non-negative by negating the second column of V.
 */
function svd2x2(p: number, q: number, r: number, s: number): Svd2 {
  const alpha = (p + s) / 2;
  const beta = (r - q) / 2;
  const gamma = (p - s) / 2;
  const delta = (r + q) / 2;
  const e = Math.hypot(alpha, beta);
  const f = Math.hypot(gamma, delta);
  const phi = Math.atan2(beta, alpha);
  const psi = Math.atan2(delta, gamma);
  const theta = (phi + psi) / 2;
  const chi = (phi - psi) / 2;
  const ct = Math.cos(theta);
  const st = Math.sin(theta);
  const cc = Math.cos(chi);
  const sc = Math.sin(chi);
  const u: Svd2['u'] = [ct, -st, st, ct];
  // Vᵀ = R(chi), so V = R(−chi) = [[cos chi, sin chi], [−sin chi, cos chi]].
  const v: Svd2['v'] = [cc, sc, -sc, cc];
  let d2 = e - f;
  if (d2 < 0) {
    d2 = -d2;
    v[1] = -v[1];
    v[3] = -v[3];
  }
  return { u, d1: e + f, d2, v };
}

function validatePoints(name: string, pts: readonly Point[]): void {
  for (let i = 0; i < pts.length; i++) {
    const p = pts[i];
    if (!Array.isArray(p) || p.length !== 2) {
      throw new Error(`estimateSimilarity: ${name}[${i}] is not an [x, y] pair`);
    }
    if (!Number.isFinite(p[0]) || !Number.isFinite(p[1])) {
      throw new Error(`estimateSimilarity: ${name}[${i}] has a non-finite coordinate (${p[0]}, ${p[1]})`);
    }
  }
}

/**
 * Least-squares similarity transform T minimising Σ‖T(src[i]) − dst[i]‖² over all rotations,
 * non-negative uniform scales and translations (Umeyama 1991, reflection-safe).
 *
 * @throws Error for fewer than 2 points, arrays of different length, non-finite coordinates,
 *   or degenerate input (all source points coincide).
 */
export function estimateSimilarity(src: readonly Point[], dst: readonly Point[]): SimilarityTransform {
  if (!Array.isArray(src) || !Array.isArray(dst)) {
    throw new Error('estimateSimilarity: src and dst must be arrays of points');
  }
  if (src.length !== dst.length) {
    throw new Error(
      `estimateSimilarity: src and dst must have the same length (got ${src.length} and ${dst.length})`,
    );
  }
  const n = src.length;
  if (n < 2) {
    throw new Error(`estimateSimilarity: need at least 2 point pairs, got ${n}`);
  }
  validatePoints('src', src);
  validatePoints('dst', dst);

  let mxx = 0;
  let mxy = 0;
  let myx = 0;
  let myy = 0;
  let maxAbs = 0;
  for (let i = 0; i < n; i++) {
    mxx += src[i][0];
    mxy += src[i][1];
    myx += dst[i][0];
    myy += dst[i][1];
    maxAbs = Math.max(maxAbs, Math.abs(src[i][0]), Math.abs(src[i][1]));
  }
  mxx /= n;
  mxy /= n;
  myx /= n;
  myy /= n;

  // Source variance and covariance Σ = (1/n) Σᵢ (yᵢ − μy)(xᵢ − μx)ᵀ.
  let varX = 0;
  let s00 = 0;
  let s01 = 0;
  let s10 = 0;
  let s11 = 0;
  for (let i = 0; i < n; i++) {
    const ax = src[i][0] - mxx;
    const ay = src[i][1] - mxy;
    const bx = dst[i][0] - myx;
    const by = dst[i][1] - myy;
    varX += ax * ax + ay * ay;
    s00 += bx * ax;
    s01 += bx * ay;
    s10 += by * ax;
    s11 += by * ay;
  }
  varX /= n;
  s00 /= n;
  s01 /= n;
  s10 /= n;
  s11 /= n;

  const tol = 1e-12 * Math.max(1, maxAbs);
  if (!(varX > tol * tol)) {
    throw new Error('estimateSimilarity: degenerate input, all source points coincide');
  }

  const { u, d1, d2, v } = svd2x2(s00, s01, s10, s11);
  const detU = u[0] * u[3] - u[1] * u[2];
  const detV = v[0] * v[3] - v[1] * v[2];
  // S = diag(1, ±1): flip the last singular direction when U and V differ in orientation.
  const sLast = detU * detV < 0 ? -1 : 1;

  // R = U · S · Vᵀ
  const r00 = u[0] * v[0] + sLast * u[1] * v[1];
  const r01 = u[0] * v[2] + sLast * u[1] * v[3];
  const r10 = u[2] * v[0] + sLast * u[3] * v[1];
  const r11 = u[2] * v[2] + sLast * u[3] * v[3];
  const scale = (d1 + sLast * d2) / varX;

  const a = scale * r00;
  const b = scale * r01;
  const c = scale * r10;
  const d = scale * r11;
  const m: Affine2x3 = [a, b, myx - (a * mxx + b * mxy), c, d, myy - (c * mxx + d * mxy)];
  if (!m.every(Number.isFinite)) {
    throw new Error('estimateSimilarity: result is not finite (coordinates too large?)');
  }
  return { m };
}
