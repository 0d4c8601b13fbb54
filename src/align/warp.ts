/**
 * Affine warping of packed RGB24 images with bilinear sampling.
 *
 * Pixel-centre convention (the same as OpenCV's warpAffine): integer coordinates (x, y) denote
 * the centre of pixel column x, row y. Pixel (0, 0) covers [−0.5, 0.5) × [−0.5, 0.5), and an
 * identity transform or a translation by whole pixels copies pixels exactly.
 *
 * Border: the source is treated as surrounded by black (0), like OpenCV's BORDER_CONSTANT
 * with value 0. A destination pixel whose sample point lies one pixel or more beyond the
 * outermost source pixel centres is exactly black; closer than that, the bilinear taps that
 * fall outside the image count as black, so the edge fades over one pixel.
 */

import { i420RegionToRgb, pendingI420 } from '../util/i420';
import type { SimilarityTransform } from './similarity';
import { invertTransform } from './similarity';

/** The part of a frame the warp needs: packed RGB24, row-major, no row padding. */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Uint8Array;
}

/**
 * Warps `src` into a new `outW`×`outH` packed RGB24 buffer.
 *
 * @param transform maps SOURCE pixel coordinates to DESTINATION pixel coordinates (any
 *   invertible 2×3 affine matrix; each destination pixel is sampled at its inverse image).
 * @throws Error for invalid sizes, a too-short buffer or a singular/non-finite transform.
 */
export function warpAffineRgb(
  src: RgbImage,
  transform: SimilarityTransform,
  outW: number,
  outH: number,
): Buffer {
  const w = src.width;
  const h = src.height;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w <= 0 || h <= 0) {
    throw new Error(`warpAffineRgb: source size must be positive integers, got ${w}×${h}`);
  }
  if (!Number.isInteger(outW) || !Number.isInteger(outH) || outW <= 0 || outH <= 0) {
    throw new Error(`warpAffineRgb: output size must be positive integers, got ${outW}×${outH}`);
  }
  const planes = pendingI420(src);
  if (planes) return warpFromI420(planes, w, h, transform, invertTransform(transform).m, outW, outH);
  const data = src.rgb;
  if (!data || data.length < w * h * 3) {
    throw new Error(
      `warpAffineRgb: source buffer holds ${data ? data.length : 0} bytes, need ${w * h * 3} for ${w}×${h} RGB`,
    );
  }
  const inv = invertTransform(transform).m;
  const i0 = inv[0];
  const i1 = inv[1];
  const i2 = inv[2];
  const i3 = inv[3];
  const i4 = inv[4];
  const i5 = inv[5];

  const out = Buffer.alloc(outW * outH * 3); // zero-filled: untouched pixels stay black
  const stride = w * 3;
  const wm1 = w - 1;
  const hm1 = h - 1;
  let o = 0;
  for (let y = 0; y < outH; y++) {
    const rowX = i1 * y + i2;
    const rowY = i4 * y + i5;
    for (let x = 0; x < outW; x++, o += 3) {
      const sx = i0 * x + rowX;
      const sy = i3 * x + rowY;
      // Entirely outside (also rejects NaN): all four taps are black.
      if (!(sx > -1 && sy > -1 && sx < w && sy < h)) continue;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const w11 = fx * fy;
      const w10 = fy - w11; // (1 − fx)·fy
      const w01 = fx - w11; // fx·(1 − fy)
      const w00 = 1 - fx - fy + w11; // (1 − fx)(1 − fy)
      if (x0 >= 0 && y0 >= 0 && x0 < wm1 && y0 < hm1) {
        const p = y0 * stride + x0 * 3;
        const q = p + stride;
        out[o] = (w00 * data[p] + w01 * data[p + 3] + w10 * data[q] + w11 * data[q + 3] + 0.5) | 0;
        out[o + 1] =
          (w00 * data[p + 1] + w01 * data[p + 4] + w10 * data[q + 1] + w11 * data[q + 4] + 0.5) | 0;
        out[o + 2] =
          (w00 * data[p + 2] + w01 * data[p + 5] + w10 * data[q + 2] + w11 * data[q + 5] + 0.5) | 0;
      } else {
        // Border: taps outside the image contribute black.
        const inX0 = x0 >= 0;
        const inX1 = x0 + 1 <= wm1;
        const inY0 = y0 >= 0;
        const inY1 = y0 + 1 <= hm1;
        let r = 0;
        let g = 0;
        let b = 0;
        if (inY0) {
          const row = y0 * stride;
          if (inX0) {
            const p = row + x0 * 3;
            r += w00 * data[p];
            g += w00 * data[p + 1];
            b += w00 * data[p + 2];
          }
          if (inX1) {
            const p = row + x0 * 3 + 3;
            r += w01 * data[p];
            g += w01 * data[p + 1];
            b += w01 * data[p + 2];
          }
        }
        if (inY1) {
          const row = (y0 + 1) * stride;
          if (inX0) {
            const p = row + x0 * 3;
            r += w10 * data[p];
            g += w10 * data[p + 1];
            b += w10 * data[p + 2];
          }
          if (inX1) {
            const p = row + x0 * 3 + 3;
            r += w11 * data[p];
            g += w11 * data[p + 1];
            b += w11 * data[p + 2];
          }
        }
        out[o] = (r + 0.5) | 0;
        out[o + 1] = (g + 0.5) | 0;
        out[o + 2] = (b + 0.5) | 0;
      }
    }
  }
  return out;
}

/**
 * A camera frame still in YUV: only the part of it the warp samples (every tap, one pixel of margin) is
 * converted, and warped with the transform moved to that part's origin. The frame is not converted, and the
 * result is the same as from the whole frame's RGB: taps outside the part are outside the frame too.
 */
function warpFromI420(
  planes: Buffer,
  w: number,
  h: number,
  transform: SimilarityTransform,
  inv: readonly number[],
  outW: number,
  outH: number,
): Buffer {
  const xs: number[] = [];
  const ys: number[] = [];
  for (const [x, y] of [
    [0, 0],
    [outW - 1, 0],
    [0, outH - 1],
    [outW - 1, outH - 1],
  ]) {
    xs.push(inv[0] * x + inv[1] * y + inv[2]);
    ys.push(inv[3] * x + inv[4] * y + inv[5]);
  }
  const x0 = Math.max(0, Math.floor(Math.min(...xs)) - 1);
  const y0 = Math.max(0, Math.floor(Math.min(...ys)) - 1);
  const x1 = Math.min(w, Math.ceil(Math.max(...xs)) + 2);
  const y1 = Math.min(h, Math.ceil(Math.max(...ys)) + 2);
  // Every sample lies beyond the frame: all black, as from the whole frame.
  if (x1 <= x0 || y1 <= y0) return Buffer.alloc(outW * outH * 3);
  const part = {
    width: x1 - x0,
    height: y1 - y0,
    rgb: i420RegionToRgb(planes, w, h, x0, y0, x1 - x0, y1 - y0),
  };
  const [a, b, c, d, e, f] = transform.m;
  return warpAffineRgb(part, { m: [a, b, a * x0 + b * y0 + c, d, e, d * x0 + e * y0 + f] }, outW, outH);
}
