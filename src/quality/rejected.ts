import type { Face } from '../types';

/**
 * True for a face the quality gate turned down ('mark' mode leaves it in the frame with its
 * reasons in `rejected`). Such a face is shown but never named: matching and events pass it over,
 * since a blurred or turned-away face matches strangers far more often than a good view does.
 */
export function failedQualityGate(face: Face): boolean {
  const rejected = (face as Face & { rejected?: unknown }).rejected;
  return Array.isArray(rejected) && rejected.length > 0;
}
