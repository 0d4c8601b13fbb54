import { ALIGNED_SIZE, alignFace, type RgbImage } from '../align';
import { applyTransform, invertTransform } from '../align/similarity';
import type { Point } from '../types';

/**
 * Sharpness of an aligned face: the variance of the 4-neighbour Laplacian of its luma, over the
 * central part of a 112×112 ArcFace-aligned crop.
 *
 * Why the central part: the corners of an aligned crop hold hair, background and, for faces near
 * the frame's edge, the black fill of the warp, whose hard edge would pass any blurred face.
 * Why a fixed 112 crop: the variance depends on scale, so the same face must always be measured
 * at the same size, whatever the embedder's input; a small face upscaled to 112 comes out soft,
 * which is what a "too small or too blurry" check should see.
 *
 * The value grows with contrast (it is in squared luma steps); the thresholds that use it are
 * measured on real photos (see `DEFAULT_MIN_SHARPNESS` in gallery/enroll.ts).
 */
export function laplacianVariance(
  rgb: Buffer,
  width: number,
  height: number,
  margin = 0,
  valid?: Uint8Array,
): number {
  if (rgb.length !== width * height * 3) {
    throw new Error(
      `laplacianVariance: expected ${width * height * 3} bytes for ${width}×${height} RGB, got ${rgb.length}`,
    );
  }
  const x0 = Math.max(1, margin);
  const y0 = Math.max(1, margin);
  const x1 = Math.min(width - 1, width - margin);
  const y1 = Math.min(height - 1, height - margin);
  if (x1 <= x0 || y1 <= y0)
    throw new Error(`laplacianVariance: ${width}×${height} is too small for margin ${margin}`);
  const luma = new Float32Array(width * height);
  for (let i = 0, p = 0; i < luma.length; i++, p += 3) {
    luma[i] = 0.299 * rgb[p] + 0.587 * rgb[p + 1] + 0.114 * rgb[p + 2];
  }
  let sum = 0;
  let sumSq = 0;
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = y * width + x;
      if (valid && !(valid[i] && valid[i - 1] && valid[i + 1] && valid[i - width] && valid[i + width]))
        continue;
      const lap = luma[i - 1] + luma[i + 1] + luma[i - width] + luma[i + width] - 4 * luma[i];
      sum += lap;
      sumSq += lap * lap;
      n++;
    }
  }
  // Nothing measurable (the face lies wholly outside the frame): as flat as it gets.
  if (n === 0) return 0;
  const mean = sum / n;
  return sumSq / n - mean * mean;
}

/** Border of the 112 crop left out of the measurement (see above). */
const SHARPNESS_MARGIN = 16;

/** A face's 112 ArcFace crop with, per crop pixel, whether it was sampled from inside the frame. */
export interface QualityCrop {
  aligned: Buffer;
  /** 1 where the crop pixel comes from inside the frame, 0 where the warp filled it with black. */
  valid: Uint8Array;
  size: number;
}

/**
 * The crop every quality measure reads, made once per face: sharpness and the luma statistics
 * must see the same pixels at the same scale, whatever the embedder's own input.
 */
export function qualityCrop(frame: RgbImage, landmarks: readonly Point[]): QualityCrop {
  const { aligned, transform } = alignFace(frame, landmarks, ALIGNED_SIZE);
  const back = invertTransform(transform);
  const valid = new Uint8Array(ALIGNED_SIZE * ALIGNED_SIZE);
  for (let y = 0; y < ALIGNED_SIZE; y++) {
    for (let x = 0; x < ALIGNED_SIZE; x++) {
      const [sx, sy] = applyTransform(back, [x, y]);
      // Bilinear sampling reads the next pixel too, so the last row and column are out as well.
      valid[y * ALIGNED_SIZE + x] =
        sx >= 0 && sy >= 0 && sx <= frame.width - 2 && sy <= frame.height - 2 ? 1 : 0;
    }
  }
  return { aligned, valid, size: ALIGNED_SIZE };
}

/** Sharpness of a crop from `qualityCrop`: what `faceSharpness` returns for the same face. */
export function cropSharpness(crop: QualityCrop): number {
  return laplacianVariance(crop.aligned, crop.size, crop.size, SHARPNESS_MARGIN, crop.valid);
}

/**
 * Sharpness (Laplacian variance) of the face with these five landmarks in `frame`. Crop pixels
 * that come from outside the frame (a face at the photo's edge) are left out: the warp fills them
 * with black, and the step to black would read as detail.
 */
export function faceSharpness(frame: RgbImage, landmarks: readonly Point[]): number {
  return cropSharpness(qualityCrop(frame, landmarks));
}
