import type { Box } from '../types';
import { iou } from '../util/vectors';

export { iou };

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
