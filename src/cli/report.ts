import * as path from 'node:path';
import {
  accuracyAt,
  auc,
  bestThreshold,
  equalErrorRate,
  rocCurve,
  splitScores,
  summarize,
  thresholdForFar,
  type ScoredPair,
  type Summary,
} from '../eval/metrics';
import { kFoldAccuracy } from '../eval/kfold';
import { writeHistogramPng, writeRocPng } from '../eval/plot';
import { round } from './options';

export interface VerificationReport {
  pairs: number;
  genuinePairs: number;
  impostorPairs: number;
  threshold: number;
  accuracy: number;
  falseAccepts: number;
  falseRejects: number;
  bestThreshold: number;
  bestAccuracy: number;
  auc: number;
  eer: number;
  genuine: Summary;
  impostor: Summary;
  thresholdAtFar: Record<string, { threshold: number; tar: number } | null>;
}

export function verificationReport(pairs: ScoredPair[], threshold: number): VerificationReport {
  const { genuine, impostor } = splitScores(pairs);
  const at = accuracyAt(pairs, threshold);
  const best = bestThreshold(pairs);
  const both = genuine.length > 0 && impostor.length > 0;
  const farTargets: Record<string, { threshold: number; tar: number } | null> = {};
  for (const far of [1e-2, 1e-3]) {
    const p = both ? thresholdForFar(pairs, far) : null;
    farTargets[String(far)] = p && { threshold: round(p.threshold), tar: round(p.tar) };
  }
  const stats = (s: Summary): Summary =>
    Object.fromEntries(Object.entries(s).map(([k, v]) => [k, round(v)])) as unknown as Summary;
  return {
    pairs: pairs.length,
    genuinePairs: genuine.length,
    impostorPairs: impostor.length,
    threshold,
    accuracy: round(at.accuracy),
    falseAccepts: at.fp,
    falseRejects: at.fn,
    bestThreshold: round(best.threshold),
    bestAccuracy: round(best.accuracy),
    auc: both ? round(auc(rocCurve(pairs))) : NaN,
    eer: both ? round(equalErrorRate(pairs).eer) : NaN,
    genuine: stats(summarize(genuine)),
    impostor: stats(summarize(impostor)),
    thresholdAtFar: farTargets,
  };
}

export function formatReport(r: VerificationReport): string[] {
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const s = (x: Summary) => `mean ${x.mean} ± ${x.std}, min ${x.min}, median ${x.median}, max ${x.max}`;
  const lines = [
    `pairs: ${r.pairs} (${r.genuinePairs} same person, ${r.impostorPairs} different)`,
    `accuracy at threshold ${r.threshold}: ${pct(r.accuracy)} (${r.falseAccepts} false accepts, ${r.falseRejects} false rejects)`,
    `best threshold ${r.bestThreshold}: ${pct(r.bestAccuracy)}`,
    `ROC AUC ${r.auc}, equal error rate ${pct(r.eer)}`,
    `same person similarity: ${s(r.genuine)}`,
    `different people similarity: ${s(r.impostor)}`,
  ];
  for (const [far, p] of Object.entries(r.thresholdAtFar)) {
    lines.push(
      `threshold for false-accept rate ${far}: ${p ? `${p.threshold} (true accepts ${pct(p.tar)})` : 'n/a'}`,
    );
  }
  return lines;
}

/** ROC curve and similarity histogram as PNG files in `dir`; returns their paths. */
export async function writeCharts(
  dir: string,
  pairs: ScoredPair[],
  report: VerificationReport,
): Promise<string[]> {
  const roc = path.join(dir, 'roc.png');
  const hist = path.join(dir, 'similarity-histogram.png');
  const points = rocCurve(pairs);
  const at = accuracyAt(pairs, report.threshold);
  const impostors = at.fp + at.tn;
  const genuines = at.tp + at.fn;
  await writeRocPng(roc, points, {
    auc: report.auc,
    markThreshold: {
      far: impostors ? at.fp / impostors : 0,
      tar: genuines ? at.tp / genuines : 0,
      label: `threshold ${report.threshold}`,
    },
  });
  await writeHistogramPng(hist, splitScores(pairs), { threshold: report.threshold });
  return [roc, hist];
}

/** What a pairs CSV with a `fold` column adds: LFW-style k-fold accuracy and rates at the shipped threshold. */
export interface FoldedReport {
  kfold: { mean: number; sd: number; folds: { fold: number; threshold: number; accuracy: number }[] };
  atThreshold: {
    threshold: number;
    accuracy: number;
    /** Impostor pairs accepted / impostor pairs. */
    falseAcceptRate: number;
    /** Genuine pairs rejected / genuine pairs. */
    falseRejectRate: number;
  };
}

/** The k-fold figures of `pairs` split by `folds` (parallel arrays), beside the rates of `report`'s threshold. */
export function foldedReport(
  pairs: readonly ScoredPair[],
  folds: readonly number[],
  report: VerificationReport,
): FoldedReport {
  const k = kFoldAccuracy(
    pairs.map((p) => p.similarity),
    pairs.map((p) => p.same),
    folds,
  );
  return {
    kfold: {
      mean: round(k.mean),
      sd: round(k.sd),
      folds: k.folds.map((f) => ({
        fold: f.fold,
        threshold: round(f.threshold),
        accuracy: round(f.accuracy),
      })),
    },
    atThreshold: {
      threshold: report.threshold,
      accuracy: report.accuracy,
      falseAcceptRate: round(report.falseAccepts / report.impostorPairs),
      falseRejectRate: round(report.falseRejects / report.genuinePairs),
    },
  };
}

export function formatFoldedReport(f: FoldedReport, r: VerificationReport): string[] {
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const a = f.atThreshold;
  const tar = (far: string) => {
    const p = r.thresholdAtFar[far];
    return p ? `${pct(p.tar)} (threshold ${p.threshold})` : 'n/a';
  };
  return [
    `k-fold accuracy over ${f.kfold.folds.length} folds (threshold chosen on the other folds): ` +
      `${pct(f.kfold.mean)} ± ${pct(f.kfold.sd)}`,
    ...f.kfold.folds.map((x) => `  fold ${x.fold}: threshold ${x.threshold}, accuracy ${pct(x.accuracy)}`),
    `at threshold ${a.threshold}: accuracy ${pct(a.accuracy)}, false-accept rate ${pct(a.falseAcceptRate)}, ` +
      `false-reject rate ${pct(a.falseRejectRate)}`,
    `true accepts at false-accept rate 1%: ${tar('0.01')}; at 0.1%: ${tar('0.001')}`,
  ];
}
