/**
 * k-fold verification accuracy, the protocol LFW results are published with: for each fold the
 * threshold is chosen on the other folds only and accuracy is measured on the held fold, so no
 * fold ever picks its own threshold. The decision rule is the one of `./metrics`: a pair is
 * "same" exactly when `similarity >= threshold`.
 */
import { accuracyAt, bestThreshold, type ScoredPair } from './metrics';

/** One held fold: the threshold the other folds chose and the accuracy it gives on this fold. */
export interface FoldAccuracy {
  fold: number;
  threshold: number;
  accuracy: number;
  pairs: number;
}

export interface KFoldResult {
  /** Mean of the folds' accuracies (each fold weighs the same, as in published LFW tables). */
  mean: number;
  /** Sample standard deviation (divides by k - 1) of the folds' accuracies. */
  sd: number;
  /** One entry per fold, in ascending fold order. */
  folds: FoldAccuracy[];
}

/**
 * Checks that `folds` can drive a k-fold run over pairs labelled `labels` (true = same person):
 * every fold a positive integer, at least two folds, each with genuine and impostor pairs.
 * Throws an Error naming the first problem. Exported so callers can fail before slow work.
 */
export function checkFolds(labels: readonly boolean[], folds: readonly number[]): void {
  if (labels.length !== folds.length) {
    throw new Error(`k-fold: ${labels.length} labels but ${folds.length} fold numbers`);
  }
  const counts = new Map<number, { genuine: number; impostor: number }>();
  folds.forEach((fold, i) => {
    if (!Number.isSafeInteger(fold) || fold < 1) {
      throw new Error(`k-fold: fold of pair ${i} must be a positive integer, got ${String(fold)}`);
    }
    const count = counts.get(fold) ?? { genuine: 0, impostor: 0 };
    if (labels[i]) count.genuine++;
    else count.impostor++;
    counts.set(fold, count);
  });
  if (counts.size < 2) {
    const only = counts.size === 1 ? `only fold ${[...counts.keys()][0]}` : 'no pairs';
    throw new Error(`k-fold: needs at least 2 folds, got ${only}`);
  }
  for (const fold of [...counts.keys()].sort((a, b) => a - b)) {
    const { genuine, impostor } = counts.get(fold)!;
    if (genuine === 0) throw new Error(`k-fold: fold ${fold} has no genuine (same person) pairs`);
    if (impostor === 0) throw new Error(`k-fold: fold ${fold} has no impostor (different people) pairs`);
  }
}

/**
 * k-fold accuracy of the similarities `scores` with labels `labels` (true = same person) split by
 * `folds` (positive integers, one per pair). The arrays run in parallel. For each fold, the
 * threshold maximising accuracy on all the other folds (`bestThreshold`: the lowest of tied
 * candidates) is applied to the held fold.
 */
export function kFoldAccuracy(
  scores: readonly number[],
  labels: readonly boolean[],
  folds: readonly number[],
): KFoldResult {
  if (scores.length !== labels.length) {
    throw new Error(`k-fold: ${scores.length} scores but ${labels.length} labels`);
  }
  checkFolds(labels, folds);
  const pairs: ScoredPair[] = scores.map((similarity, i) => ({ similarity, same: labels[i] }));
  const foldNumbers = [...new Set(folds)].sort((a, b) => a - b);
  const results = foldNumbers.map((fold): FoldAccuracy => {
    const held = pairs.filter((_, i) => folds[i] === fold);
    const others = pairs.filter((_, i) => folds[i] !== fold);
    const { threshold } = bestThreshold(others);
    return { fold, threshold, accuracy: accuracyAt(held, threshold).accuracy, pairs: held.length };
  });
  const k = results.length;
  const mean = results.reduce((sum, r) => sum + r.accuracy, 0) / k;
  const squares = results.reduce((sum, r) => sum + (r.accuracy - mean) ** 2, 0);
  return { mean, sd: Math.sqrt(squares / (k - 1)), folds: results };
}
