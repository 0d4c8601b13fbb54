/**
 * The standard ArcFace (InsightFace) 5-point alignment template for 112×112 crops.
 *
 * Coordinates are in output pixels with integer coordinates at pixel centres (the OpenCV
 * convention the template was defined with). "Left" means the left side of the image.
 */

import type { Point } from '../types';
import { dlibChipTemplate } from './dlibTemplate';

/** Side length of the aligned face crop the ArcFace template is defined for. */
export const ALIGNED_SIZE = 112;

/** A point whose coordinates cannot be changed at run time (writes throw in strict mode). */
function frozenPoint(x: number, y: number): Point {
  return Object.freeze([x, y]) as unknown as Point;
}

/** Left eye, right eye, nose tip, left mouth corner, right mouth corner. */
export const ARCFACE_TEMPLATE_112: readonly Point[] = Object.freeze([
  frozenPoint(38.2946, 51.6963),
  frozenPoint(73.5318, 51.5014),
  frozenPoint(56.0252, 71.7366),
  frozenPoint(41.5493, 92.3655),
  frozenPoint(70.7299, 92.2041),
]);

/** The template scaled uniformly for a `size`×`size` crop (size/112 times the 112 template). */
export function arcfaceTemplate(size: number = ALIGNED_SIZE): Point[] {
  if (!Number.isInteger(size) || size <= 0) {
    throw new Error(`arcfaceTemplate: size must be a positive integer, got ${size}`);
  }
  const k = size / ALIGNED_SIZE;
  return ARCFACE_TEMPLATE_112.map((p): Point => [p[0] * k, p[1] * k]);
}

/** The point layouts a crop can be framed on. */
export type TemplateName = 'arcface' | 'dlib';

/**
 * How an embedder wants its crop framed, relative to a template (`arcface` unless said: InsightFace's
 * 112 layout; `dlib`: dlib's face chip with padding 0.25): `zoom` < 1 shows more of the head around
 * the face (0.8: the face takes 80% of the template's framing), `shiftY` moves the face down by that
 * fraction of the crop. Models trained on loose face boxes need this.
 */
export interface Framing {
  size: number;
  zoom: number;
  shiftY: number;
  template?: TemplateName;
}

export function framedTemplate({ size, zoom, shiftY, template = 'arcface' }: Framing): Point[] {
  if (!(zoom > 0) || !Number.isFinite(shiftY))
    throw new Error(`invalid framing: zoom ${zoom}, shiftY ${shiftY}`);
  if (template !== 'arcface' && template !== 'dlib')
    throw new Error(`invalid framing: unknown template '${String(template)}' (arcface or dlib)`);
  const c = size / 2;
  const base = template === 'dlib' ? dlibChipTemplate(size) : arcfaceTemplate(size);
  return base.map(([x, y]): Point => [c + (x - c) * zoom, c + (y - c) * zoom + shiftY * size]);
}
