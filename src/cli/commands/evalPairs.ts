import { existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { cosine } from '../../models/embedder';
import type { ScoredPair } from '../../eval/metrics';
import { UsageError } from '../errors';
import type { CommandIO } from '../io';
import { MODEL_HELP, MODEL_OPTIONS, openFaceFlow, thresholdOf } from '../options';
import { mainFace, type PhotoFace } from '../photos';
import { checkFolds } from '../../eval/kfold';
import {
  foldedReport,
  formatFoldedReport,
  formatReport,
  verificationReport,
  writeCharts,
  type FoldedReport,
} from '../report';

export const EVAL_PAIRS_HELP = `Usage: faceflow eval pairs --pairs CSV --images DIR [options]

Verification accuracy on labelled pairs. CSV columns: file_x,file_y,decision where decision is
Yes (same person) or No; files are relative to DIR. Prints accuracy at the threshold, the best
threshold, and the similarity statistics; writes roc.png and similarity-histogram.png.
Images without a detectable face are counted and listed, and their pairs left out.

With a header naming a fourth column fold (file_x,file_y,decision,fold; folds are positive
integers, at least 2, each with same-person and different-people pairs), it also reports k-fold
accuracy as LFW results are published: each fold is scored at the threshold that maximises
accuracy on the other folds; mean ± sample standard deviation over folds and each fold's
threshold and accuracy. Beside it, over all pairs: accuracy, false-accept and false-reject rates
at the threshold, and the true-accept rate at false-accept rates 1% and 0.1%.

Options:
  --pairs CSV           the labelled pairs (required)
  --images DIR          folder the CSV's file names are relative to (required)
  --out DIR             where to write the charts (default: current folder)
  --json                print the report as JSON
${MODEL_HELP}`;

export interface LabelledPair {
  a: string;
  b: string;
  same: boolean;
  /** The pair's fold, when the CSV has a `fold` column. */
  fold?: number;
}

/**
 * Parse `file_x,file_y,decision` rows; a header row is recognised by its column names. A `fold`
 * column is read only when the header names it, so header-less files keep their three columns.
 */
export function parsePairsCsv(text: string, source = 'pairs'): LabelledPair[] {
  const rows = text
    .split(/\r?\n/)
    .map((line, i) => ({ line: line.trim(), n: i + 1 }))
    .filter((r) => r.line !== '' && !r.line.startsWith('#'));
  if (rows.length === 0) throw new Error(`${source}: no pairs`);
  const header = splitCsvLine(rows[0].line).map((c) => c.toLowerCase());
  let cols = { a: 0, b: 1, d: 2, fold: -1 };
  if (header.includes('decision') || header.includes('file_x')) {
    cols = {
      a: header.indexOf('file_x'),
      b: header.indexOf('file_y'),
      d: header.indexOf('decision'),
      fold: header.indexOf('fold'),
    };
    if (cols.a < 0 || cols.b < 0 || cols.d < 0) {
      throw new Error(`${source}: header must name the columns file_x, file_y and decision`);
    }
    rows.shift();
  }
  return rows.map(({ line, n }) => {
    const cells = splitCsvLine(line);
    const decision = (cells[cols.d] ?? '').toLowerCase();
    if (!cells[cols.a] || !cells[cols.b]) throw new Error(`${source} line ${n}: missing file name`);
    if (!['yes', 'no', '1', '0', 'true', 'false'].includes(decision)) {
      throw new Error(`${source} line ${n}: decision must be Yes or No, got '${cells[cols.d] ?? ''}'`);
    }
    const pair: LabelledPair = {
      a: cells[cols.a],
      b: cells[cols.b],
      same: ['yes', '1', 'true'].includes(decision),
    };
    if (cols.fold >= 0) pair.fold = parseFold(cells[cols.fold] ?? '', `${source} line ${n}`);
    return pair;
  });
}

function parseFold(cell: string, where: string): number {
  // Digits only: '1.0', '1e0' or ' ' are typos in a fold list, not fold 1.
  const fold = /^\d+$/.test(cell) ? Number(cell) : NaN;
  if (!Number.isSafeInteger(fold) || fold < 1) {
    throw new Error(`${where}: fold must be a positive integer, got '${cell}'`);
  }
  return fold;
}

function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      cells.push(cell.trim());
      cell = '';
    } else cell += ch;
  }
  cells.push(cell.trim());
  return cells;
}

/** Runs `check`, prefixing any error it throws with `where` (the CSV), the way parse errors read. */
function withSource<T>(where: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message.replace(/^k-fold: /, '')}`);
  }
}

export async function evalPairsCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...MODEL_OPTIONS,
      pairs: { type: 'string' },
      images: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (!values.pairs || !values.images) throw new UsageError('eval pairs needs --pairs CSV and --images DIR');
  if (!existsSync(values.pairs)) throw new Error(`${values.pairs}: no such file`);
  if (!existsSync(values.images) || !statSync(values.images).isDirectory()) {
    throw new Error(`${values.images}: no such folder`);
  }
  const labelled = parsePairsCsv(readFileSync(values.pairs, 'utf8'), values.pairs);
  const folded = labelled.some((p) => p.fold !== undefined);
  // A fold list that cannot work fails now, not after minutes of embedding.
  if (folded)
    withSource(values.pairs, () =>
      checkFolds(
        labelled.map((p) => p.same),
        labelled.map((p) => p.fold!),
      ),
    );
  const flow = await openFaceFlow(values);
  try {
    const threshold = thresholdOf(values, flow);
    const faces = new Map<string, PhotoFace | { error: string }>();
    for (const name of new Set(labelled.flatMap((p) => [p.a, p.b]))) {
      faces.set(name, await mainFace(flow, path.join(values.images, name)));
    }
    const failed = [...faces.entries()].filter(([, r]) => 'error' in r);
    for (const [, r] of failed) if ('error' in r) io.err(r.error);
    const scored: ScoredPair[] = [];
    const folds: number[] = [];
    for (const p of labelled) {
      const fa = faces.get(p.a);
      const fb = faces.get(p.b);
      if (!fa || !fb || 'error' in fa || 'error' in fb) continue;
      scored.push({ similarity: cosine(fa.face.embedding, fb.face.embedding), same: p.same });
      if (p.fold !== undefined) folds.push(p.fold);
    }
    if (scored.length === 0)
      throw new Error('no pair could be scored: every pair has an image without a face');
    const report = verificationReport(scored, threshold);
    const skipped = labelled.length - scored.length;
    let kfold: FoldedReport | undefined;
    if (folded) {
      const where = skipped
        ? `${values.pairs} (after leaving out ${skipped} pairs without a face)`
        : values.pairs;
      kfold = withSource(where, () => foldedReport(scored, folds, report));
    }
    const charts = await writeCharts(values.out ?? '.', scored, report);
    if (values.json) {
      io.out(
        JSON.stringify({
          ...report,
          ...kfold,
          imagesWithoutFace: failed.map(([f]) => f),
          skippedPairs: skipped,
          charts,
        }),
      );
    } else {
      for (const line of formatReport(report)) io.out(line);
      if (kfold) for (const line of formatFoldedReport(kfold, report)) io.out(line);
      io.out(
        `images without a usable face: ${failed.length}${failed.length ? ` (${failed.map(([f]) => f).join(', ')})` : ''}`,
      );
      io.out(`pairs left out for them: ${skipped}`);
      io.out(`charts: ${charts.join(', ')}`);
    }
    return 0;
  } finally {
    await flow.dispose();
  }
}
