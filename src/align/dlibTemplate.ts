/**
 * The chip dlib's face descriptor (and face-api's port of it) was trained on: dlib's mean face,
 * placed in a square with a quarter of its size as margin on every side (`get_face_chip_details`
 * with padding 0.25, the setting of dlib's face recognition example). Feeding that net our
 * ArcFace-framed crops instead cost it about ten points of LFW accuracy (models/README.md).
 */

import type { Point } from '../types';

/**
 * dlib's mean face shape, points 17–67 of its 68-point scheme, in a unit square: published numbers
 * (dlib, `get_face_chip_details`). Index i here is dlib point i + 17.
 */
const MEAN_FACE_X = [
  0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124, 0.904991, 0.98004,
  0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036, 0.490127, 0.554217, 0.613373, 0.121737, 0.187122,
  0.265825, 0.334606, 0.260918, 0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
  0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721, 0.490127, 0.423532,
  0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874, 0.553364, 0.490127, 0.42689,
];
const MEAN_FACE_Y = [
  0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915, 0.106454,
  0.203352, 0.307009, 0.409805, 0.515625, 0.587326, 0.609345, 0.628106, 0.609345, 0.587326, 0.216423,
  0.178758, 0.179852, 0.231733, 0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077,
  0.245099, 0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805, 0.902192,
  0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746, 0.784792, 0.824182, 0.831803,
  0.824182,
];

/** dlib point `i` (17 ≤ i ≤ 67) of the mean face. */
export function dlibMeanPoint(i: number): Point {
  if (!Number.isInteger(i) || i < 17 || i > 67) throw new Error(`dlib mean face: no point ${i}`);
  return [MEAN_FACE_X[i - 17], MEAN_FACE_Y[i - 17]];
}

function centroid(points: number[]): Point {
  const ps = points.map(dlibMeanPoint);
  return [ps.reduce((s, p) => s + p[0], 0) / ps.length, ps.reduce((s, p) => s + p[1], 0) / ps.length];
}

/** The margin dlib's recognition example cuts chips with, as a fraction of the mean face's size. */
export const DLIB_CHIP_PADDING = 0.25;

/**
 * Our five alignment points on dlib's mean face (unit square): the centres of the two eyes' six
 * contour points, the nose tip (30) and the mouth corners (48, 54), image-left first.
 */
const FIVE_POINTS_UNIT: readonly Point[] = [
  centroid([36, 37, 38, 39, 40, 41]),
  centroid([42, 43, 44, 45, 46, 47]),
  dlibMeanPoint(30),
  dlibMeanPoint(48),
  dlibMeanPoint(54),
];

/** Where the five points land in a `size`×`size` dlib chip (padding 0.25). */
export function dlibChipTemplate(size: number): Point[] {
  if (!Number.isInteger(size) || size <= 0) {
    throw new Error(`dlibChipTemplate: size must be a positive integer, got ${size}`);
  }
  const k = size / (1 + 2 * DLIB_CHIP_PADDING);
  return FIVE_POINTS_UNIT.map(([x, y]): Point => [(DLIB_CHIP_PADDING + x) * k, (DLIB_CHIP_PADDING + y) * k]);
}
