import type { Box } from '../types';

export function iou(a: Box, b: Box): number {
  const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy;
  if (inter <= 0) return 0;
  const areaA = (a[2] - a[0]) * (a[3] - a[1]);
  const areaB = (b[2] - b[0]) * (b[3] - b[1]);
  return inter / (areaA + areaB - inter);
}

/**
 * Greedy non-maximum suppression: indices of the kept boxes, highest score first.
 * A box is dropped when it overlaps an already kept one by more than `threshold` IoU.
 */
export function nonMaxSuppression(
  boxes: Box[],
  scores: number[],
  threshold: number,
  limit = Infinity,
): number[] {
  const order = scores.map((_, i) => i).sort((i, j) => scores[j] - scores[i]);
  const kept: number[] = [];
  for (const i of order) {
    if (kept.length >= limit) break;
    if (kept.every((k) => iou(boxes[k], boxes[i]) <= threshold)) kept.push(i);
  }
  return kept;
}
