import type { Point } from '../src/types';

/**
 * dlib's mean face (points 17–67 of its 68-point scheme, unit square), the shape its
 * `get_face_chip_details` aligns to; published numbers.
 */
const MEAN_X = [
  0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124, 0.904991, 0.98004,
  0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036, 0.490127, 0.554217, 0.613373, 0.121737, 0.187122,
  0.265825, 0.334606, 0.260918, 0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
  0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721, 0.490127, 0.423532,
  0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874, 0.553364, 0.490127, 0.42689,
];
const MEAN_Y = [
  0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915, 0.106454,
  0.203352, 0.307009, 0.409805, 0.515625, 0.587326, 0.609345, 0.628106, 0.609345, 0.587326, 0.216423,
  0.178758, 0.179852, 0.231733, 0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077,
  0.245099, 0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805, 0.902192,
  0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746, 0.784792, 0.824182, 0.831803,
  0.824182,
];
const mean = (i: number): Point => [MEAN_X[i - 17], MEAN_Y[i - 17]];

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
