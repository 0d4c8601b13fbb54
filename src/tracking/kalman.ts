/**
 * Constant-velocity Kalman filter for a box in image space, as SORT introduced it for tracking and
 * DeepSORT and ByteTrack parameterise it: the state is (cx, cy, a, h, vcx, vcy, va, vh), with the
 * box centre, its aspect ratio a = w / h and its height, and the measurement is (cx, cy, a, h).
 *
 * Why this parameterisation: the aspect ratio of one face barely changes while its size does, so
 * the filter can trust `a` tightly and let `h` move; and all position noise is proportional to `h`,
 * because a detector's error in pixels grows with the face's size, and so does a face's motion in
 * pixels when it is close to the camera. One set of weights then fits faces of 30 and 300 pixels.
 */

import type { Box } from '../types';
import { cholesky, forwardSubstitute, matMul, matMulTransposed, solveSpd, symmetrize } from './matrix';

export const STATE_SIZE = 8;
export const MEASUREMENT_SIZE = 4;

/**
 * The 0.95 quantile of the chi-square distribution by degrees of freedom: a squared Mahalanobis
 * distance above `CHI2_95[4]` is a measurement that the track explains with less than 5 % chance.
 */
export const CHI2_95: Readonly<Record<number, number>> = { 1: 3.8415, 2: 5.9915, 4: 9.4877 };

export interface KalmanState {
  /** (cx, cy, a, h, vcx, vcy, va, vh). */
  mean: Float64Array;
  /** 8×8, row-major. */
  covariance: Float64Array;
}

export interface KalmanOptions {
  /**
   * Standard deviation of position noise as a fraction of the box height (default 1/20, DeepSORT's):
   * a detector's box edges wander by a few percent of the face's size from frame to frame.
   */
  positionWeight?: number;
  /**
   * Standard deviation of the per-frame change in velocity as a fraction of the height (default
   * 1/160, DeepSORT's): people accelerate slowly relative to their size at video frame rates.
   */
  velocityWeight?: number;
}

/** A box as the filter measures it: (cx, cy, w / h, h). */
export function boxToMeasurement(box: Box | ArrayLike<number>): Float64Array {
  const w = box[2] - box[0];
  const h = box[3] - box[1];
  return Float64Array.of(box[0] + w / 2, box[1] + h / 2, w / h, h);
}

/** The box of a state or measurement (its first four entries). */
export function measurementToBox(m: ArrayLike<number>): Box {
  const h = m[3];
  const w = m[2] * h;
  return [m[0] - w / 2, m[1] - h / 2, m[0] + w / 2, m[1] + h / 2];
}

export class KalmanFilter {
  private readonly wp: number;
  private readonly wv: number;

  constructor(options: KalmanOptions = {}) {
    this.wp = options.positionWeight ?? 1 / 20;
    this.wv = options.velocityWeight ?? 1 / 160;
    if (!(this.wp > 0) || !(this.wv > 0)) throw new RangeError('Kalman noise weights must be positive');
  }

  /**
   * A new state from a first measurement, at rest. The velocity's variance is wide (ten times the
   * per-frame noise) because nothing is known about it yet: the first updates must be free to set it.
   */
  initiate(measurement: ArrayLike<number>): KalmanState {
    checkMeasurement(measurement);
    const h = measurement[3];
    const mean = new Float64Array(STATE_SIZE);
    for (let i = 0; i < MEASUREMENT_SIZE; i++) mean[i] = measurement[i];
    const std = [
      2 * this.wp * h,
      2 * this.wp * h,
      1e-2,
      2 * this.wp * h,
      10 * this.wv * h,
      10 * this.wv * h,
      1e-5,
      10 * this.wv * h,
    ];
    const covariance = new Float64Array(STATE_SIZE * STATE_SIZE);
    for (let i = 0; i < STATE_SIZE; i++) covariance[i * STATE_SIZE + i] = std[i] * std[i];
    return { mean, covariance };
  }

  /**
   * Moves the state `dt` frames ahead, in place. The process noise is added once per frame of `dt`,
   * so a track that skipped frames is as uncertain as one predicted frame by frame.
   */
  predict(state: KalmanState, dt = 1): KalmanState {
    if (!(dt > 0)) throw new RangeError(`predict: dt must be positive, got ${dt}`);
    const { mean, covariance: p } = state;
    const h = mean[3];
    const n = STATE_SIZE;
    const f = transition(dt);
    const next = matMul(f, mean, n, n, 1);
    const fp = matMul(f, p, n, n, n);
    matMulTransposed(fp, f, n, n, n, p);
    const pos = this.wp * h;
    const vel = this.wv * h;
    const q = [pos, pos, 1e-2, pos, vel, vel, 1e-5, vel];
    for (let i = 0; i < n; i++) p[i * n + i] += q[i] * q[i] * dt;
    mean.set(next);
    symmetrize(p, n);
    return state;
  }

  /** The state in measurement space: the predicted measurement and its covariance S = H P Hᵀ + R. */
  project(state: KalmanState): { mean: Float64Array; covariance: Float64Array } {
    const { mean: x, covariance: p } = state;
    const m = MEASUREMENT_SIZE;
    const h = x[3];
    const r = [this.wp * h, this.wp * h, 1e-1, this.wp * h];
    const s = new Float64Array(m * m);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) s[i * m + j] = p[i * STATE_SIZE + j];
      s[i * m + i] += r[i] * r[i];
    }
    return { mean: x.slice(0, m), covariance: s };
  }

  /**
   * Corrects the state with a measurement, in place. The gain comes from a Cholesky solve of S
   * rather than an inverse: S is symmetric positive definite and small, and the solve is both cheaper
   * and better conditioned.
   */
  update(state: KalmanState, measurement: ArrayLike<number>): KalmanState {
    checkMeasurement(measurement);
    const { mean: x, covariance: p } = state;
    const n = STATE_SIZE;
    const m = MEASUREMENT_SIZE;
    const projected = this.project(state);
    // H P is the first four rows of P, since H picks the first four state entries.
    const hp = p.slice(0, m * n);
    // S Kᵀ = H P, so Kᵀ = S⁻¹ H P (4×8).
    const kt = solveSpd(projected.covariance, hp, m, n);
    for (let i = 0; i < n; i++) {
      let dx = 0;
      for (let t = 0; t < m; t++) dx += kt[t * n + i] * (measurement[t] - projected.mean[t]);
      x[i] += dx;
    }
    // P − K S Kᵀ = P − K (H P), with K = (Kᵀ)ᵀ.
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < m; t++) s += kt[t * n + i] * hp[t * n + j];
        p[i * n + j] -= s;
      }
    }
    symmetrize(p, n);
    return state;
  }

  /**
   * Squared Mahalanobis distance of a measurement from the state's prediction, to compare with
   * `CHI2_95[4]` (or `CHI2_95[2]` with `onlyPosition`, which ignores the box's shape and size).
   */
  gatingDistance(state: KalmanState, measurement: ArrayLike<number>, onlyPosition = false): number {
    checkMeasurement(measurement);
    const projected = this.project(state);
    const m = onlyPosition ? 2 : MEASUREMENT_SIZE;
    const s = new Float64Array(m * m);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < m; j++) s[i * m + j] = projected.covariance[i * MEASUREMENT_SIZE + j];
    const d = new Float64Array(m);
    for (let i = 0; i < m; i++) d[i] = measurement[i] - projected.mean[i];
    const z = forwardSubstitute(cholesky(s, m), d, m, 1);
    let sum = 0;
    for (let i = 0; i < m; i++) sum += z[i] * z[i];
    return sum;
  }
}

function transition(dt: number): Float64Array {
  const n = STATE_SIZE;
  const f = new Float64Array(n * n);
  for (let i = 0; i < n; i++) f[i * n + i] = 1;
  for (let i = 0; i < MEASUREMENT_SIZE; i++) f[i * n + i + MEASUREMENT_SIZE] = dt;
  return f;
}

function checkMeasurement(z: ArrayLike<number>): void {
  if (z.length < MEASUREMENT_SIZE) throw new RangeError('a measurement has four values (cx, cy, a, h)');
  for (let i = 0; i < MEASUREMENT_SIZE; i++)
    if (!Number.isFinite(z[i])) throw new RangeError(`measurement value ${i} is not finite: ${z[i]}`);
  // The noise is proportional to the height: a flat box would give the filter zero variance.
  if (!(z[3] > 0) || !(z[2] > 0)) throw new RangeError('a measured box needs a positive width and height');
}
