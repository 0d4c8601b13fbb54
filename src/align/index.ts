/**
 * Face alignment: a similarity transform from the five detected landmarks onto the ArcFace
 * template, then a bilinear warp into a square crop.
 */

import type { Point } from '../types';
import { estimateSimilarity } from './similarity';
import type { SimilarityTransform } from './similarity';
import { ALIGNED_SIZE, arcfaceTemplate } from './template';
import { warpAffineRgb } from './warp';
import type { RgbImage } from './warp';

export {
  applyTransform,
  estimateSimilarity,
  invertTransform,
  transformDeterminant,
  type Affine2x3,
  type SimilarityTransform,
} from './similarity';
export {
  ALIGNED_SIZE,
  ARCFACE_TEMPLATE_112,
  arcfaceTemplate,
  framedTemplate,
  type Framing,
  type TemplateName,
} from './template';
export { dlibChipTemplate, DLIB_CHIP_PADDING } from './dlibTemplate';
export { warpAffineRgb, type RgbImage } from './warp';

export interface AlignedFace {
  /** `size`×`size` packed RGB24 crop. */
  aligned: Buffer;
  /** Maps frame pixel coordinates to crop pixel coordinates. */
  transform: SimilarityTransform;
}

/**
 * Aligns one face to the ArcFace template.
 *
 * @param landmarks exactly five points in frame pixels: left eye, right eye, nose, left mouth
 *   corner, right mouth corner ("left" = left side of the image).
 * @param size side of the square output; the 112 template is scaled by size/112.
 * @param template where the five points should land (default: the ArcFace template for `size`).
 * @throws Error when the landmarks are not five finite points, are degenerate, or size is invalid.
 */
export function alignFace(
  frame: RgbImage,
  landmarks: readonly Point[],
  size: number = ALIGNED_SIZE,
  template: readonly Point[] = arcfaceTemplate(size),
): AlignedFace {
  if (!Array.isArray(landmarks) || landmarks.length !== 5) {
    throw new Error(
      `alignFace: expected exactly 5 landmarks, got ${Array.isArray(landmarks) ? landmarks.length : typeof landmarks}`,
    );
  }
  landmarks.forEach((p, i) => {
    if (!Array.isArray(p) || p.length !== 2 || !Number.isFinite(p[0]) || !Number.isFinite(p[1])) {
      throw new Error(
        `alignFace: landmark ${i} is not a finite [x, y] point: ${Array.isArray(p) ? `[${p.join(', ')}]` : String(p)}`,
      );
    }
  });
  if (!Number.isInteger(size) || size <= 0) {
    throw new Error(`alignFace: size must be a positive integer, got ${size}`);
  }
  const transform = estimateSimilarity(landmarks, template);
  const aligned = warpAffineRgb(frame, transform, size, size);
  return { aligned, transform };
}
