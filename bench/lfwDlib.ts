import { dlibMeanPoint } from '../src/align/dlibTemplate';
import type { Point } from '../src/types';

const mean = dlibMeanPoint;

/** The 68-point indices dlib fits a chip on: nose, eyes, outer upper lip and inner upper lip. */
const DLIB33 = [
  27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53,
  54, 60, 61, 62, 63, 64,
];

/** FaceMesh vertices nearest in meaning to each DLIB33 point, in the same order. */
export const DLIB_MESH_POINTS = [
  168, 197, 5, 4, 75, 97, 2, 326, 305, 33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380, 61, 39, 37,
  0, 267, 269, 291, 78, 82, 13, 312, 308,
];

function centroid(idx: number[]): Point {
  const ps = idx.map(mean);
  return [ps.reduce((s, p) => s + p[0], 0) / ps.length, ps.reduce((s, p) => s + p[1], 0) / ps.length];
}

/**
 * Where points land in a `size` chip with dlib's `padding`: `centres` = our five points (eye
 * centres, nose tip, mouth corners), `dlib33` = the DLIB33 points.
 */
export function dlibChipTemplate(kind: 'centres' | 'dlib33', size: number, padding: number): Point[] {
  const unit =
    kind === 'centres'
      ? [centroid([36, 37, 38, 39, 40, 41]), centroid([42, 43, 44, 45, 46, 47]), mean(30), mean(48), mean(54)]
      : DLIB33.map(mean);
  return unit.map(([x, y]): Point => [
    ((padding + x) / (2 * padding + 1)) * size,
    ((padding + y) / (2 * padding + 1)) * size,
  ]);
}
