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
