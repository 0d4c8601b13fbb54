/**
 * Face-verification evaluation metrics over scored pairs.
 *
 * Every function here uses one decision rule: a pair is predicted "same identity"
 * exactly when `similarity >= threshold`. All scans sort once, so they run in
 * O(n log n) for n pairs. Inputs are validated: a non-finite similarity (NaN,
 * ±Infinity, or not a number at all) throws an Error that names its index.
 */

/** One comparison: the similarity of two faces and whether they are the same person. */
export interface ScoredPair {
  similarity: number;
  same: boolean;
}

/** Descriptive statistics of a list of numbers. */
export interface Summary {
  count: number;
  mean: number;
  /** Population standard deviation (divides by `count`, not `count - 1`). */
  std: number;
  min: number;
  max: number;
  /** Middle value; the mean of the two middle values when `count` is even. */
  median: number;
}

/** Confusion counts and accuracy at one threshold. */
export interface ThresholdAccuracy {
  threshold: number;
  /** (tp + tn) / pairs; NaN when there are no pairs. */
  accuracy: number;
  /** Genuine pairs accepted. */
  tp: number;
  /** Impostor pairs accepted. */
  fp: number;
  /** Impostor pairs rejected. */
  tn: number;
  /** Genuine pairs rejected. */
  fn: number;
}

/** One point of a ROC curve: accepting `similarity >= threshold` gives these rates. */
export interface RocPoint {
  threshold: number;
  /** False-accept rate: impostors accepted / impostors. */
  far: number;
  /** True-accept rate: genuine pairs accepted / genuine pairs. */
  tar: number;
}

/** The operating point chosen for a false-accept-rate target. */
export interface FarOperatingPoint {
  threshold: number;
  /** The false-accept rate actually reached (<= the target). */
  far: number;
  tar: number;
}

/** Equal error rate: where the false-accept rate equals the false-reject rate. */
export interface EqualError {
  /** The common error rate, interpolated linearly along the ROC curve. */
  eer: number;
  /** A threshold for that point, interpolated linearly between the two neighbouring ROC thresholds. */
  threshold: number;
}

/**
 * Count, mean, population standard deviation, min, max and median of `values`.
 * An empty list gives `count: 0` and NaN for every other field.
 */
export function summarize(values: readonly number[]): Summary {
  values.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new Error(`summarize: values[${i}] is not a finite number (${String(v)})`);
    }
  });
  const count = values.length;
  if (count === 0) {
    return { count: 0, mean: NaN, std: NaN, min: NaN, max: NaN, median: NaN };
  }
  return summarizeSorted([...values].sort((a, b) => a - b));
}

/** `summarize` for values already in ascending order (an array or a typed array), without a copy. */
export function summarizeSorted(sorted: ArrayLike<number>): Summary {
  const count = sorted.length;
  if (count === 0) return { count: 0, mean: NaN, std: NaN, min: NaN, max: NaN, median: NaN };
  let sum = 0;
  for (let i = 0; i < count; i++) sum += sorted[i];
  const mean = sum / count;
  let squares = 0;
  for (let i = 0; i < count; i++) squares += (sorted[i] - mean) * (sorted[i] - mean);
  const mid = count >> 1;
  return {
    count,
    mean,
    std: Math.sqrt(squares / count),
    min: sorted[0],
    max: sorted[count - 1],
    median: count % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2,
  };
}

/** Splits pairs into the similarities of genuine (same) and impostor (different) pairs. */
export function splitScores(pairs: readonly ScoredPair[]): { genuine: number[]; impostor: number[] } {
  validatePairs(pairs, 'splitScores');
  const genuine: number[] = [];
  const impostor: number[] = [];
  for (const p of pairs) (p.same ? genuine : impostor).push(p.similarity);
  return { genuine, impostor };
}

/** Accuracy and confusion counts when pairs with `similarity >= threshold` are predicted same. */
export function accuracyAt(pairs: readonly ScoredPair[], threshold: number): ThresholdAccuracy {
  validatePairs(pairs, 'accuracyAt');
  if (typeof threshold !== 'number' || Number.isNaN(threshold)) {
    throw new Error(`accuracyAt: threshold must be a number, got ${String(threshold)}`);
  }
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (const p of pairs) {
    const accepted = p.similarity >= threshold;
    if (p.same) {
      if (accepted) tp++;
      else fn++;
    } else if (accepted) fp++;
    else tn++;
  }
  const accuracy = pairs.length === 0 ? NaN : (tp + tn) / pairs.length;
  return { threshold, accuracy, tp, fp, tn, fn };
}

/**
 * The threshold that maximises accuracy. Candidates are a threshold just below the
 * smallest similarity (accept everything), the midpoints between consecutive distinct
 * similarities, and a threshold just above the largest (reject everything). When several
 * candidates tie, the lowest one wins. Throws on an empty list.
 */
export function bestThreshold(pairs: readonly ScoredPair[]): { threshold: number; accuracy: number } {
  validatePairs(pairs, 'bestThreshold');
  if (pairs.length === 0) throw new Error('bestThreshold: no pairs given');
  const groups = groupBySimilarity(pairs, 'ascending');
  const genuineTotal = groups.reduce((n, g) => n + g.genuine, 0);

  // Below every similarity everything is accepted: the genuine pairs are the correct ones.
  let bestCorrect = genuineTotal;
  let best = below(groups[0].similarity);
  let acceptedGenuine = genuineTotal;
  let rejectedImpostor = 0;
  for (let i = 0; i < groups.length; i++) {
    // Moving the threshold past this group rejects it.
    acceptedGenuine -= groups[i].genuine;
    rejectedImpostor += groups[i].impostor;
    const correct = acceptedGenuine + rejectedImpostor;
    if (correct > bestCorrect) {
      bestCorrect = correct;
      best =
        i + 1 < groups.length
          ? midpoint(groups[i].similarity, groups[i + 1].similarity)
          : above(groups[i].similarity);
    }
  }
  return { threshold: best, accuracy: bestCorrect / pairs.length };
}

/**
 * The ROC curve: one point per distinct threshold, sorted by FAR (then TAR) ascending.
 * The first point uses a threshold just above the largest similarity and is (0, 0);
 * each further point lowers the threshold to the next distinct similarity, down to the
 * smallest, which accepts everything and is (1, 1). Pairs with equal similarity enter
 * together, so ties give a single (possibly diagonal) step.
 * Throws unless there is at least one genuine and one impostor pair.
 */
export function rocCurve(pairs: readonly ScoredPair[]): RocPoint[] {
  validatePairs(pairs, 'rocCurve');
  const groups = groupBySimilarity(pairs, 'descending');
  const genuineTotal = groups.reduce((n, g) => n + g.genuine, 0);
  const impostorTotal = pairs.length - genuineTotal;
  requireBothClasses(genuineTotal, impostorTotal, 'rocCurve');

  const points: RocPoint[] = [{ threshold: above(groups[0].similarity), far: 0, tar: 0 }];
  let genuine = 0;
  let impostor = 0;
  for (const g of groups) {
    genuine += g.genuine;
    impostor += g.impostor;
    points.push({ threshold: g.similarity, far: impostor / impostorTotal, tar: genuine / genuineTotal });
  }
  return points;
}

/**
 * Area under a ROC curve by the trapezoid rule. The points are sorted by FAR (then TAR)
 * first, so any order is accepted; fewer than two points give 0. Ties counted as a diagonal
 * step make this equal to the probability that a random genuine pair scores above a random
 * impostor pair, with ties counting one half.
 */
export function auc(points: readonly RocPoint[]): number {
  points.forEach((p, i) => {
    if (!Number.isFinite(p.far) || !Number.isFinite(p.tar)) {
      throw new Error(`auc: points[${i}] has a non-finite far or tar (${String(p.far)}, ${String(p.tar)})`);
    }
  });
  const sorted = [...points].sort((a, b) => a.far - b.far || a.tar - b.tar);
  let area = 0;
  for (let i = 1; i < sorted.length; i++) {
    area += ((sorted[i].far - sorted[i - 1].far) * (sorted[i].tar + sorted[i - 1].tar)) / 2;
  }
  return area;
}

/**
 * The lowest threshold (among the ROC thresholds, i.e. the observed similarities and one
 * just above the largest) whose false-accept rate is at most `targetFar`, with the TAR
 * there. This is the point of highest TAR that meets the target.
 * Returns `null` when there are no impostor pairs, since FAR is then undefined.
 * Throws if `targetFar` is outside [0, 1] or there are no genuine pairs.
 */
export function thresholdForFar(pairs: readonly ScoredPair[], targetFar: number): FarOperatingPoint | null {
  validatePairs(pairs, 'thresholdForFar');
  if (typeof targetFar !== 'number' || !(targetFar >= 0 && targetFar <= 1)) {
    throw new Error(`thresholdForFar: targetFar must be within [0, 1], got ${String(targetFar)}`);
  }
  if (!pairs.some((p) => !p.same)) return null;
  const points = rocCurve(pairs);
  // Points run from the highest threshold down; FAR never decreases along them.
  let chosen = points[0];
  for (const p of points) {
    if (p.far > targetFar) break;
    chosen = p;
  }
  return { threshold: chosen.threshold, far: chosen.far, tar: chosen.tar };
}

/**
 * The equal error rate: where FAR equals FRR (= 1 - TAR), found by linear interpolation
 * between the two ROC points that bracket it. Throws unless both classes are present.
 */
export function equalErrorRate(pairs: readonly ScoredPair[]): EqualError {
  const points = rocCurve(pairs);
  // d = FAR - FRR runs from -1 at (0, 0) to +1 at (1, 1) and never decreases.
  const gap = (p: RocPoint): number => p.far + p.tar - 1;
  for (let i = 1; i < points.length; i++) {
    const d = gap(points[i]);
    if (d < 0) continue;
    const prev = points[i - 1];
    const dPrev = gap(prev);
    const t = dPrev === d ? 0 : -dPrev / (d - dPrev);
    const far = prev.far + t * (points[i].far - prev.far);
    return { eer: far, threshold: prev.threshold + t * (points[i].threshold - prev.threshold) };
  }
  // Unreachable: the last point is (1, 1), where the gap is +1.
  throw new Error('equalErrorRate: ROC curve does not reach (1, 1)');
}

interface SimilarityGroup {
  similarity: number;
  genuine: number;
  impostor: number;
}

function validatePairs(pairs: readonly ScoredPair[], fn: string): void {
  if (!Array.isArray(pairs)) throw new Error(`${fn}: pairs must be an array`);
  pairs.forEach((p, i) => {
    if (p === null || typeof p !== 'object') {
      throw new Error(`${fn}: pairs[${i}] is not an object`);
    }
    if (typeof p.similarity !== 'number' || !Number.isFinite(p.similarity)) {
      throw new Error(`${fn}: pairs[${i}].similarity is not a finite number (${String(p.similarity)})`);
    }
    if (typeof p.same !== 'boolean') {
      throw new Error(`${fn}: pairs[${i}].same must be a boolean, got ${String(p.same)}`);
    }
  });
}

function requireBothClasses(genuine: number, impostor: number, fn: string): void {
  if (genuine === 0 || impostor === 0) {
    throw new Error(
      `${fn}: needs at least one genuine and one impostor pair (got ${genuine} genuine, ${impostor} impostor)`,
    );
  }
}

/** Sorts the similarities once and merges equal values into one group with class counts. */
function groupBySimilarity(
  pairs: readonly ScoredPair[],
  order: 'ascending' | 'descending',
): SimilarityGroup[] {
  const sign = order === 'ascending' ? 1 : -1;
  const sorted = [...pairs].sort((a, b) => sign * (a.similarity - b.similarity));
  const groups: SimilarityGroup[] = [];
  for (const p of sorted) {
    let group = groups[groups.length - 1];
    if (group === undefined || group.similarity !== p.similarity) {
      group = { similarity: p.similarity, genuine: 0, impostor: 0 };
      groups.push(group);
    }
    if (p.same) group.genuine++;
    else group.impostor++;
  }
  return groups;
}

/** A small step that is still visible after adding it to `x`. */
function margin(x: number): number {
  return Math.max(1e-6, Math.abs(x) * 1e-6);
}

/** A threshold just above `x`: rejects x itself. */
function above(x: number): number {
  return x + margin(x);
}

/** A threshold just below `x`: accepts x itself. */
function below(x: number): number {
  return x - margin(x);
}

/** A threshold strictly above `lo` and at most `hi`, so it rejects lo and accepts hi. */
function midpoint(lo: number, hi: number): number {
  const mid = lo + (hi - lo) / 2;
  return mid > lo && mid <= hi ? mid : hi;
}
