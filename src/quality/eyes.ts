import type { Point } from '../types';

/** Number of points of MediaPipe's face mesh, the only landmark set that outlines the eyelids. */
export const MESH_POINTS = 468;

/**
 * Six points per eye in the mesh's numbering, in the order of Soukupová and Čech's eye aspect
 * ratio: outer corner, two upper-lid points, inner corner, two lower-lid points (p1..p6).
 */
const EYES = [
  [33, 160, 158, 133, 153, 144],
  [263, 387, 385, 362, 380, 373],
];

const dist = (a: Point, b: Point) => Math.hypot(a[0] - b[0], a[1] - b[1]);

/**
 * Eye aspect ratio `(|p2−p6| + |p3−p5|) / (2·|p1−p4|)`, averaged over both eyes: lid opening over
 * eye width, so it does not depend on the face's size. Both eyes, since a blink closes both and a
 * turned head foreshortens one.
 */
export function eyeAspectRatio(mesh: readonly Point[]): number {
  if (mesh.length !== MESH_POINTS) {
    throw new Error(`eyeAspectRatio: expected a ${MESH_POINTS}-point face mesh, got ${mesh.length} points`);
  }
  let total = 0;
  for (const [p1, p2, p3, p4, p5, p6] of EYES) {
    const width = dist(mesh[p1], mesh[p4]);
    total += width > 0 ? (dist(mesh[p2], mesh[p6]) + dist(mesh[p3], mesh[p5])) / (2 * width) : 0;
  }
  return total / EYES.length;
}
