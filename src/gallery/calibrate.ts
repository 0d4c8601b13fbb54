/**
 * Threshold calibration from a gallery's own photos: every two embeddings of one person make a
 * genuine pair, every two of different people an impostor pair, and the similarity (the inner
 * product the vector index ranks by) of each pair is scored. The genuine and impostor score
 * distributions give the ROC curve, and from it the threshold that keeps the false-accept rate
 * (FAR) under each target.
 *
 * Scores live in Float32Arrays and the ROC statistics are computed from the two sorted arrays
 * directly, so a gallery of a few thousand photos (millions of pairs) needs no per-pair objects.
 * The decision rule and tie handling are exactly those of `eval/metrics.ts` (accept when
 * `similarity >= threshold`); the tests check that both agree.
 */
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import sharp from 'sharp';
import { summarizeSorted, type EqualError, type RocPoint, type Summary } from '../eval/metrics';
import { rocSvg, writeHistogramPng, type RocMark } from '../eval/plot';
import { seededRandom } from '../util/seededRandom';
import { rowDot } from '../util/vectors';
import { GalleryError, type Gallery } from './gallery';

export const DEFAULT_TARGET_FARS: readonly number[] = [1e-2, 1e-3, 1e-4];
export const DEFAULT_MAX_PAIRS = 2_000_000;
/** The FAR `suggestedThreshold` and `applyCalibration` aim at unless told otherwise. */
export const DEFAULT_FAR = 1e-3;

/**
 * By the rule of three, zero false accepts among N impostor pairs only bounds the FAR below 3/N
 * (95 % confidence), so a target FAR needs at least 3/FAR impostor pairs to be demonstrable.
 */
const RELIABILITY_FACTOR = 3;
/** Below this many genuine pairs the TAR at any threshold moves in steps too coarse to trust. */
const FEW_GENUINE_PAIRS = 30;
/** The PRNG seed for pair sampling: fixed, so the same gallery always calibrates the same way. */
const SAMPLING_SEED = 0x5eed;

export interface CalibrationOptions {
  /** False-accept rates to find thresholds for, each in (0, 1); default 1e-2, 1e-3, 1e-4. */
  targetFars?: number[];
  /**
   * Most pairs to score (genuine and impostor together); default 2,000,000. Beyond it pairs are
   * sampled without replacement by a seeded PRNG, so the result is the same on every run. All
   * genuine pairs are kept while they fit in half the budget, since they are the scarce kind.
   */
  maxPairs?: number;
  /**
   * The threshold the gallery matches with now (its calibrated one, else the model's): the
   * calibration then reports what it costs on this gallery's own pairs (`inUse`).
   */
  threshold?: number;
}

/** What the threshold in use means for this gallery, measured on its own pairs. */
export interface ThresholdInUse {
  threshold: number;
  /** Share of the gallery's impostor pairs (two different enrolled people) at or above it. */
  far: number;
  /** Share of its genuine pairs at or above it; null without genuine pairs. */
  tar: number | null;
  /**
   * The chance that a stranger's face is named, estimated as 1 − (1 − far)^embeddings: live
   * matching takes a person's best embedding, so every enrolled embedding is a chance to be wrong.
   */
  strangerNamed: number;
}

/** The operating point for one target false-accept rate. */
export interface FarThreshold {
  /** The target FAR. */
  far: number;
  /** The lowest threshold whose FAR on the scored pairs is at most `far`. */
  threshold: number | null;
  /** The FAR actually reached at `threshold` (at most `far`). */
  achievedFar: number | null;
  /** The share of genuine pairs accepted at `threshold`. */
  tar: number | null;
  /** False when there are fewer than 3/far impostor pairs: the FAR cannot be shown to be met. */
  reliable: boolean;
}

/** The raw similarities behind a calibration, for plots or further analysis. */
export interface CalibrationScores {
  genuine: Float32Array;
  impostor: Float32Array;
}

export interface Calibration {
  modelId: string;
  /** Identities that have at least one embedding (the others take no part). */
  identities: number;
  embeddings: number;
  /** Genuine pairs scored (after sampling, when `sampled`). */
  genuinePairs: number;
  /** Impostor pairs scored (after sampling, when `sampled`). */
  impostorPairs: number;
  /** True when the gallery held more pairs than `maxPairs` and a sample was scored. */
  sampled: boolean;
  genuine: Summary;
  impostor: Summary;
  auc: number;
  eer: EqualError;
  /** One entry per target FAR, smallest FAR (strictest threshold) first. */
  thresholds: FarThreshold[];
  /** Present when `options.threshold` was given. */
  inUse?: ThresholdInUse;
  /** People enrolled with one photo only: they match less reliably and cannot be calibrated. */
  singlePhoto: string[];
  warnings: string[];
  /**
   * The scored similarities. Non-enumerable, so JSON output and copies (`{...c}`) leave them out;
   * a calibration read back from JSON has none, and plots then need the scores passed in.
   */
  readonly scores?: CalibrationScores;
}

/** Where `writeCalibrationPlots` puts its charts. */
export interface CalibrationPlotFiles {
  roc: string;
  histogram: string;
}

/**
 * Score all (or a sample of) genuine and impostor pairs of the gallery's embeddings and derive
 * thresholds for the target FARs. Throws a GalleryError when fewer than two identities have
 * embeddings or no identity has two (no genuine pair).
 */
export function calibrateGallery(gallery: Gallery, options: CalibrationOptions = {}): Calibration {
  const targets = checkTargets(options.targetFars ?? [...DEFAULT_TARGET_FARS]);
  const maxPairs = options.maxPairs ?? DEFAULT_MAX_PAIRS;
  if (!Number.isInteger(maxPairs) || maxPairs < 2) {
    throw new GalleryError(`maxPairs must be an integer of at least 2, got ${String(maxPairs)}`);
  }

  const packed = packEmbeddings(gallery);
  if (packed.identities < 2) {
    throw new GalleryError(
      `calibration needs at least 2 identities with embeddings, this gallery has ${packed.identities}`,
    );
  }
  const pairs = countPairs(packed.blockEnd);
  if (pairs.genuine === 0) {
    throw new GalleryError(
      'calibration needs genuine pairs: enrol at least two photos of some person (every identity has one)',
    );
  }

  const warnings: string[] = [];
  const sampled = pairs.genuine + pairs.impostor > maxPairs;
  let genuine: Float32Array;
  let impostor: Float32Array;
  if (!sampled) {
    ({ genuine, impostor } = scoreAllPairs(packed, pairs));
  } else {
    const rand = seededRandom(SAMPLING_SEED);
    const genuineCount = Math.min(pairs.genuine, Math.floor(maxPairs / 2));
    const impostorCount = Math.min(pairs.impostor, maxPairs - genuineCount);
    genuine = scoreSampledPairs(packed, 'genuine', pairs.genuine, genuineCount, rand);
    impostor = scoreSampledPairs(packed, 'impostor', pairs.impostor, impostorCount, rand);
    warnings.push(
      `the gallery has ${pairs.genuine + pairs.impostor} pairs; scored a fixed random sample of ` +
        `${genuine.length} genuine and ${impostor.length} impostor pairs (maxPairs ${maxPairs})`,
    );
  }
  genuine.sort();
  impostor.sort();

  if (packed.offNorm > 0) {
    warnings.push(`${packed.offNorm} embeddings are not L2-normalised; similarities are raw inner products`);
  }
  if (packed.singles.length > 0) {
    const shown = packed.singles.slice(0, 5).join(', ') + (packed.singles.length > 5 ? ', …' : '');
    warnings.push(
      `${packed.singles.length} identities have a single embedding (${shown}) and add impostor pairs only; ` +
        'enrol more photos of them: they match less reliably, and calibrate cannot measure them',
    );
  }
  if (genuine.length < FEW_GENUINE_PAIRS) {
    warnings.push(`only ${genuine.length} genuine pairs: the true-accept rates are rough estimates`);
  }

  const roc = scanRoc(genuine, impostor, targets);
  const thresholds = targets.map((far, i): FarThreshold => {
    const reliable = impostor.length >= minimumImpostors(far);
    const point = roc.atFar[i];
    return {
      far,
      threshold: point ? point.threshold : null,
      achievedFar: point ? point.far : null,
      tar: point ? point.tar : null,
      reliable,
    };
  });
  const unreliable = thresholds.filter((t) => !t.reliable);
  if (unreliable.length > 0) {
    const strictest = unreliable[0].far;
    warnings.push(
      `${impostor.length} impostor pairs are too few to estimate FAR ${unreliable.map((t) => formatFar(t.far)).join(', ')}: ` +
        `a FAR needs ${RELIABILITY_FACTOR}/FAR impostor pairs (${minimumImpostors(strictest)} for ${formatFar(strictest)}); ` +
        'enrol more people or photos',
    );
  }

  let inUse: ThresholdInUse | undefined;
  if (options.threshold !== undefined) {
    const t = options.threshold;
    if (!Number.isFinite(t)) throw new GalleryError(`threshold must be a number, got ${String(t)}`);
    const far = impostor.length ? countAtLeast(impostor, t) / impostor.length : 0;
    inUse = {
      threshold: t,
      far,
      tar: genuine.length ? countAtLeast(genuine, t) / genuine.length : null,
      strangerNamed: 1 - Math.pow(1 - far, packed.count),
    };
    if (impostor.length && far > 0) {
      warnings.push(
        `at the threshold in use (${t}) ${(100 * far).toFixed(2)} % of pairs of different enrolled people match: ` +
          `a stranger is named with a chance of about ${(100 * inUse.strangerNamed).toFixed(1)} %`,
      );
    }
  }

  const calibration: Calibration = {
    modelId: gallery.modelId,
    identities: packed.identities,
    embeddings: packed.count,
    genuinePairs: genuine.length,
    impostorPairs: impostor.length,
    sampled,
    genuine: summarizeSorted(genuine),
    impostor: summarizeSorted(impostor),
    auc: roc.auc,
    eer: roc.eer,
    thresholds,
    ...(inUse ? { inUse } : {}),
    singlePhoto: packed.singles,
    warnings,
  };
  Object.defineProperty(calibration, 'scores', {
    value: { genuine, impostor },
    enumerable: false,
    writable: false,
  });
  return calibration;
}

/**
 * The threshold to use for a target FAR: the calibrated one when it is reliable, else the one of
 * the nearest larger FAR that is (a looser but trustworthy operating point), else null. A FAR that
 * was not among the calibration's targets is served the same way by the next larger target.
 */
export function suggestedThreshold(c: Calibration, far = DEFAULT_FAR): number | null {
  const candidates = c.thresholds
    .filter((t) => t.far >= far * (1 - 1e-9) && t.reliable && t.threshold !== null)
    .sort((a, b) => a.far - b.far);
  return candidates.length > 0 ? (candidates[0].threshold as number) : null;
}

/** Set the gallery's threshold to the suggested one for `far` and return it. */
export function applyCalibration(gallery: Gallery, c: Calibration, far = DEFAULT_FAR): number {
  gallery.checkModel(c.modelId);
  const threshold = suggestedThreshold(c, far);
  if (threshold === null) {
    throw new GalleryError(
      `no reliable threshold for FAR ${formatFar(far)} or any larger target ` +
        `(${c.impostorPairs} impostor pairs); enrol more people or photos, or accept a larger FAR`,
    );
  }
  gallery.threshold = threshold;
  return threshold;
}

/** The ROC curve of a calibration's scores, in the form of `metrics.rocCurve`. */
export function calibrationRoc(scores: CalibrationScores): RocPoint[] {
  const genuine = sortedCopy(scores.genuine);
  const impostor = sortedCopy(scores.impostor);
  const points: RocPoint[] = [];
  walkRoc(genuine, impostor, (threshold, far, tar) => points.push({ threshold, far, tar }));
  return points;
}

/**
 * The SVG of a calibration's ROC chart: log FAR axis, one marker per target FAR (hollow when that
 * FAR is unreliable), guide lines to the suggested operating point.
 *
 * plot.ts draws one marker per chart, so each target's marker is taken from a chart drawn for that
 * target alone. Every chart gets the same legend, so all share one layout and the markers line up;
 * if plot.ts ever draws its marker differently, the chart keeps the suggested marker only.
 */
export function calibrationRocSvg(c: Calibration, scores = c.scores, far = DEFAULT_FAR): string {
  const s = requireScores(scores);
  const points = calibrationRoc(s);
  const marked = c.thresholds.filter((t) => t.tar !== null && t.achievedFar !== null);
  const minFar = logAxisStart(c.thresholds.map((t) => t.far));
  const label =
    marked.length > 0
      ? `targets: FAR ${marked.map((t) => formatFar(t.far) + (t.reliable ? '' : '*')).join(', ')}` +
        (marked.some((t) => !t.reliable) ? ' (* unreliable, hollow)' : '')
      : '';
  const title = `ROC of ${c.modelId} on ${c.identities} identities, ${c.embeddings} embeddings`;
  const options = { title, auc: c.auc, logFar: true, minFar };
  if (marked.length === 0) return rocSvg(points, options);

  const suggested = suggestedThreshold(c, far);
  const main = marked.find((t) => t.threshold === suggested) ?? marked[0];
  const markOf = (t: FarThreshold): RocMark => ({
    far: t.achievedFar as number,
    tar: t.tar as number,
    label,
  });
  const base = rocSvg(points, { ...options, markThreshold: markOf(main) });
  const markerLine = /^<circle [^\n]*\/>$/m;
  if (!markerLine.test(base)) return base;

  // Targets that share an operating point share one marker and one label.
  const spots = new Map<
    string,
    { circle: string; x: number; y: number; reliable: boolean; fars: string[] }
  >();
  for (const t of marked) {
    const svg = t === main ? base : rocSvg(points, { ...options, markThreshold: markOf(t) });
    const circle = svg.match(markerLine)?.[0];
    const cx = circle?.match(/ cx="([-\d.]+)"/)?.[1];
    const cy = circle?.match(/ cy="([-\d.]+)"/)?.[1];
    if (circle === undefined || cx === undefined || cy === undefined) return base;
    const spot = spots.get(`${cx},${cy}`) ?? {
      circle,
      x: Number(cx),
      y: Number(cy),
      reliable: false,
      fars: [],
    };
    spot.reliable ||= t.reliable;
    spot.fars.push(formatFar(t.far));
    spots.set(`${cx},${cy}`, spot);
  }
  const markers = [...spots.values()].flatMap((spot) => [
    spot.reliable ? spot.circle : hollow(spot.circle),
    `<text x="${spot.x + 8}" y="${spot.y + 15}" font-size="11" fill="#222222">${spot.fars.join(', ')}</text>`,
  ]);
  return base.replace(markerLine, markers.join('\n'));
}

/**
 * Write the ROC chart (marked at each target FAR) and the genuine/impostor histogram (with the
 * suggested threshold for `far`) as PNG files. `out` is a folder (files `roc.png` and
 * `histogram.png` in it) or the two file paths. The scores default to the ones the calibration
 * carries; pass them for a calibration read back from JSON.
 */
export async function writeCalibrationPlots(
  c: Calibration,
  out: string | CalibrationPlotFiles,
  options: { scores?: CalibrationScores; far?: number } = {},
): Promise<CalibrationPlotFiles> {
  const scores = requireScores(options.scores ?? c.scores);
  const files =
    typeof out === 'string'
      ? { roc: path.join(out, 'roc.png'), histogram: path.join(out, 'histogram.png') }
      : out;
  const far = options.far ?? DEFAULT_FAR;
  const svg = calibrationRocSvg(c, scores, far);
  await mkdir(path.dirname(files.roc), { recursive: true });
  await sharp(Buffer.from(svg, 'utf8')).png().toFile(files.roc);
  await writeHistogramPng(
    files.histogram,
    { genuine: Array.from(scores.genuine), impostor: Array.from(scores.impostor) },
    {
      title: `Similarities of ${c.genuinePairs} genuine and ${c.impostorPairs} impostor pairs`,
      threshold: suggestedThreshold(c, far) ?? undefined,
    },
  );
  return files;
}

// ---------------------------------------------------------------------------------------------
// Embeddings and pairs

interface Packed {
  /** Row-major embeddings, grouped by identity. */
  matrix: Float32Array;
  dimension: number;
  count: number;
  identities: number;
  /** For each row, the end (exclusive) of its identity's block: rows [i+1, end) pair genuinely. */
  blockEnd: Int32Array;
  /** Names of the identities with one embedding. */
  singles: string[];
  offNorm: number;
}

/** Lay every embedding out in one matrix, one identity after another, so pairs are row ranges. */
function packEmbeddings(gallery: Gallery): Packed {
  const d = gallery.dimension;
  const people = gallery.list({ limit: gallery.size }).items.filter((p) => p.embeddings > 0);
  const count = people.reduce((n, p) => n + p.embeddings, 0);
  const matrix = new Float32Array(count * d);
  const blockEnd = new Int32Array(count);
  let row = 0;
  const singles: string[] = [];
  let offNorm = 0;
  for (const person of people) {
    const vectors = gallery.vectorsOf(person.name);
    const end = row + vectors.length;
    if (vectors.length === 1) singles.push(person.name);
    for (const { vector } of vectors) {
      matrix.set(vector, row * d);
      let norm = 0;
      for (let k = 0; k < d; k++) norm += vector[k] * vector[k];
      if (Math.abs(norm - 1) > 1e-3) offNorm++;
      blockEnd[row++] = end;
    }
  }
  return { matrix, dimension: d, count, identities: people.length, blockEnd, singles, offNorm };
}

function countPairs(blockEnd: Int32Array): { genuine: number; impostor: number } {
  const n = blockEnd.length;
  let genuine = 0;
  let impostor = 0;
  for (let i = 0; i < n; i++) {
    genuine += blockEnd[i] - i - 1;
    impostor += n - blockEnd[i];
  }
  return { genuine, impostor };
}

function scoreAllPairs(
  p: Packed,
  counts: { genuine: number; impostor: number },
): { genuine: Float32Array; impostor: Float32Array } {
  const genuine = new Float32Array(counts.genuine);
  const impostor = new Float32Array(counts.impostor);
  let g = 0;
  let m = 0;
  for (let i = 0; i < p.count; i++) {
    const end = p.blockEnd[i];
    for (let j = i + 1; j < end; j++) genuine[g++] = rowDot(p.matrix, p.dimension, i, j);
    for (let j = end; j < p.count; j++) impostor[m++] = rowDot(p.matrix, p.dimension, i, j);
  }
  return { genuine, impostor };
}

/**
 * Score `k` of the `total` pairs of one kind, drawn without replacement. Pairs of a kind are
 * numbered row by row (row i owns its pairs with later rows), so sorted pair numbers are turned
 * into (i, j) in one sweep over the rows.
 */
function scoreSampledPairs(
  p: Packed,
  kind: 'genuine' | 'impostor',
  total: number,
  k: number,
  rand: () => number,
): Float32Array {
  const picks = sampleSorted(total, k, rand);
  const scores = new Float32Array(picks.length);
  let row = 0;
  let rowStart = 0;
  const rowSize = (i: number): number =>
    kind === 'genuine' ? p.blockEnd[i] - i - 1 : p.count - p.blockEnd[i];
  for (let s = 0; s < picks.length; s++) {
    while (picks[s] >= rowStart + rowSize(row)) rowStart += rowSize(row++);
    const offset = picks[s] - rowStart;
    const j = (kind === 'genuine' ? row + 1 : p.blockEnd[row]) + offset;
    scores[s] = rowDot(p.matrix, p.dimension, row, j);
  }
  return scores;
}

/** `k` distinct integers from [0, n), ascending, chosen uniformly by `rand`. */
function sampleSorted(n: number, k: number, rand: () => number): Float64Array {
  if (k >= n) return Float64Array.from({ length: n }, (_, i) => i);
  if (k * 4 >= n) {
    // Selection sampling (one pass, exact count): cheap when k is a good share of n.
    const out = new Float64Array(k);
    let chosen = 0;
    for (let i = 0; i < n && chosen < k; i++) {
      if ((n - i) * rand() < k - chosen) out[chosen++] = i;
    }
    return out;
  }
  // Sparse case: draw with replacement, drop repeats, top up; few repeats when n >= 4k.
  let have = new Float64Array(0);
  while (have.length < k) {
    const draws = new Float64Array(have.length + Math.ceil((k - have.length) * 1.15) + 16);
    draws.set(have);
    for (let i = have.length; i < draws.length; i++) draws[i] = Math.floor(rand() * n);
    draws.sort();
    let unique = 0;
    for (let i = 0; i < draws.length; i++)
      if (i === 0 || draws[i] !== draws[i - 1]) draws[unique++] = draws[i];
    have = draws.slice(0, unique);
  }
  if (have.length === k) return have;
  // Too many: keep a uniform k of them (a partial shuffle), then restore the order.
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (have.length - i));
    [have[i], have[j]] = [have[j], have[i]];
  }
  return have.slice(0, k).sort();
}

// ---------------------------------------------------------------------------------------------
// Statistics on sorted scores

/**
 * Visit the ROC points of ascending-sorted scores from the highest threshold down, as
 * `metrics.rocCurve` lists them: first (0, 0) just above the top score, then one point per
 * distinct score, with equal scores of both kinds entering together.
 */
function walkRoc(
  genuine: Float32Array,
  impostor: Float32Array,
  visit: (threshold: number, far: number, tar: number) => void,
): void {
  let g = genuine.length - 1;
  let m = impostor.length - 1;
  const top = Math.max(genuine[g] ?? -Infinity, impostor[m] ?? -Infinity);
  visit(top + Math.max(1e-6, Math.abs(top) * 1e-6), 0, 0);
  while (g >= 0 || m >= 0) {
    const s = Math.max(g >= 0 ? genuine[g] : -Infinity, m >= 0 ? impostor[m] : -Infinity);
    while (g >= 0 && genuine[g] === s) g--;
    while (m >= 0 && impostor[m] === s) m--;
    visit(s, (impostor.length - 1 - m) / impostor.length, (genuine.length - 1 - g) / genuine.length);
  }
}

/** AUC, EER and the operating point per target FAR, in one pass over the ROC points. */
function scanRoc(
  genuine: Float32Array,
  impostor: Float32Array,
  targets: number[],
): { auc: number; eer: EqualError; atFar: (RocPoint | undefined)[] } {
  const atFar: (RocPoint | undefined)[] = targets.map(() => undefined);
  let area = 0;
  let prev: RocPoint | undefined;
  let eer: EqualError | undefined;
  walkRoc(genuine, impostor, (threshold, far, tar) => {
    const point = { threshold, far, tar };
    if (prev) area += ((far - prev.far) * (tar + prev.tar)) / 2;
    // FAR never decreases along the walk, so the last point within a target is its lowest threshold.
    targets.forEach((t, i) => {
      if (far <= t) atFar[i] = point;
    });
    // The gap FAR - FRR runs from -1 to +1; interpolate where it crosses zero, as metrics.ts does.
    const gap = far + tar - 1;
    if (eer === undefined && prev && gap >= 0) {
      const prevGap = prev.far + prev.tar - 1;
      const t = prevGap === gap ? 0 : -prevGap / (gap - prevGap);
      eer = {
        eer: prev.far + t * (far - prev.far),
        threshold: prev.threshold + t * (threshold - prev.threshold),
      };
    }
    prev = point;
  });
  return { auc: area, eer: eer as EqualError, atFar };
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function checkTargets(targets: number[]): number[] {
  if (!Array.isArray(targets) || targets.length === 0) {
    throw new GalleryError('targetFars must be a non-empty array of rates in (0, 1)');
  }
  for (const far of targets) {
    if (typeof far !== 'number' || !(far > 0 && far < 1)) {
      throw new GalleryError(`each target FAR must be within (0, 1), got ${String(far)}`);
    }
  }
  return [...new Set(targets)].sort((a, b) => a - b);
}

/** The impostor pairs needed before `far` can be estimated (the tolerance absorbs 3/1e-3 = 3000.0000000000005). */
function minimumImpostors(far: number): number {
  return Math.ceil(RELIABILITY_FACTOR / far - 1e-6);
}

function requireScores(scores: CalibrationScores | undefined): CalibrationScores {
  if (!scores || !(scores.genuine instanceof Float32Array) || !(scores.impostor instanceof Float32Array)) {
    throw new GalleryError(
      'this calibration carries no scores (read back from JSON?); pass the scores to plot it',
    );
  }
  if (scores.genuine.length === 0 || scores.impostor.length === 0) {
    throw new GalleryError('plots need at least one genuine and one impostor score');
  }
  return scores;
}

/** A filled marker redrawn as a ring of its fill colour, for operating points not to be trusted. */
function hollow(circle: string): string {
  const color = circle.match(/ fill="([^"]*)"/)?.[1] ?? '#d62728';
  return circle
    .replace(/ fill="[^"]*"/, ' fill="#ffffff"')
    .replace(/ stroke="[^"]*"/, ` stroke="${color}"`)
    .replace(/ stroke-width="[^"]*"/, ' stroke-width="2"');
}

function sortedCopy(values: Float32Array): Float32Array {
  return Float32Array.from(values).sort();
}

/** The decade at or below the smallest target, so every target sits inside the log axis. */
function logAxisStart(fars: number[]): number {
  const smallest = Math.min(...fars);
  return Math.min(0.1, Math.max(1e-6, Math.pow(10, Math.floor(Math.log10(smallest) + 1e-9))));
}

function formatFar(far: number): string {
  const e = Math.log10(far);
  return Math.abs(e - Math.round(e)) < 1e-9 ? `1e${Math.round(e)}` : String(far);
}

/** How many values of the ascending `sorted` are at least `t`. */
function countAtLeast(sorted: Float32Array, t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] >= t) hi = mid;
    else lo = mid + 1;
  }
  return sorted.length - lo;
}
