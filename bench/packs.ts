/**
 * Accuracy and speed of every detector × landmarks × embedder combination: the table of
 * models/README.md. Run: `node dist/bench/packs.js [--lfw-folds 1,2,3,4,5,6] [--no-lfw]` (needs
 * ../shared/data; about 4 minutes without LFW, plus about a minute per combination for LFW folds 1–2).
 *
 * Detection: people found in the five bbt group photos. Identification on the bbt faces and on the
 * colour photos of face_recognition_examples: leave-one-out rank-1, ROC AUC and d′.
 */
import { mkdtempSync, readFileSync, symlinkSync, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parsePairsCsv } from '../src/cli/commands/evalPairs';
import { kFoldAccuracy } from '../src/eval/kfold';
import { accuracyAt, thresholdForFar } from '../src/eval/metrics';
import { cosine } from '../src/models/embedder';
import { peopleFolders } from '../src/cli/images';
import { allPairs, leaveOneOutRank1 } from '../src/cli/commands/evalIdentities';
import { auc, rocCurve, summarize } from '../src/eval/metrics';
import { FaceFlow } from '../src/faceflow';
import { decodeImage } from '../src/image/decode';
import type { Face } from '../src/types';
import { hasSharedData, shared } from '../test/helpers/shared';
import { machineInfo, rankPercentile } from './common';

const GROUP: Record<string, number> = { bbt1: 4, bbt2: 3, bbt3: 5, bbt4: 6, bbt5: 5 };

/** The colour photos of face_recognition_examples, one folder per person (links, in a temp folder). */
function colourSet(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-colour-'));
  const fr = (...p: string[]) => shared('face_recognition_examples', ...p);
  const people: Record<string, string[]> = {
    alex_lacamoire: [
      fr('knn/train/alex_lacamoire/img1.jpg'),
      fr('knn/test/alex_lacamoire1.jpg'),
      fr('misc/alex-lacamoire.png'),
    ],
    obama: ['obama.jpg', 'obama2.jpg']
      .map((f) => fr('knn/train/obama', f))
      .concat(fr('knn/test/obama1.jpg'), fr('misc/obama-240p.jpg'), fr('misc/obama-1080p.jpg')),
    biden: [fr('knn/train/biden/biden.jpg'), fr('knn/train/biden/biden2.jpg')],
    kit_harington: [
      fr('knn/train/kit_harington/john1.jpeg'),
      fr('knn/train/kit_harington/john2.jpeg'),
      fr('knn/test/johnsnow_test1.jpg'),
    ],
    rose_leslie: [fr('knn/train/rose_leslie/img1.jpg'), fr('knn/train/rose_leslie/img2.jpg')],
    lin_manuel_miranda: [fr('misc/lin-manuel-miranda.png')],
  };
  for (const [person, files] of Object.entries(people)) {
    mkdirSync(path.join(dir, person));
    files.forEach((f, i) => symlinkSync(f, path.join(dir, person, `${i}${path.extname(f)}`)));
  }
  return dir;
}

const area = (f: Face) => (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);

async function identification(flow: FaceFlow, dir: string): Promise<string> {
  const samples = [];
  let missed = 0;
  for (const [person, files] of peopleFolders(dir)) {
    for (const file of files) {
      const faces = await flow.analyzePortrait(await decodeImage(file));
      if (faces.length === 0) {
        missed++;
        continue;
      }
      const face = faces.reduce((a, b) => (area(b) > area(a) ? b : a));
      samples.push({ person, file, embedding: face.embedding as Float32Array });
    }
  }
  const rank1 = leaveOneOutRank1(samples).rank1;
  const pairs = allPairs(samples);
  const g = summarize(pairs.filter((p) => p.same).map((p) => p.similarity));
  const i = summarize(pairs.filter((p) => !p.same).map((p) => p.similarity));
  const dPrime = (g.mean - i.mean) / Math.sqrt((g.std ** 2 + i.std ** 2) / 2);
  const cell = `${(100 * rank1).toFixed(1)}% / ${auc(rocCurve(pairs)).toFixed(3)} / ${dPrime.toFixed(2)}`;
  return missed ? `${cell} (${missed} missed)` : cell;
}

/**
 * LFW View 2 pairs of the chosen folds (../shared/data/lfw): k-fold accuracy (mean ± sd over the
 * folds), true-accept rates at 1 % and 0.1 % false accepts, and false accepts at the embedder's own
 * threshold. Photos without a face count as a rejected pair: a pipeline that misses faces pays for it.
 */
async function lfw(flow: FaceFlow, folds: Set<number>): Promise<string> {
  const root = shared('lfw');
  const pairs = parsePairsCsv(readFileSync(path.join(root, 'pairs.csv'), 'utf8')).filter((p) =>
    folds.has(p.fold ?? 0),
  );
  const vectors = new Map<string, Float32Array | undefined>();
  for (const file of new Set(pairs.flatMap((p) => [p.a, p.b]))) {
    const faces = await flow.analyzePortrait(await decodeImage(path.join(root, 'images', file)));
    const face = faces.length ? faces.reduce((a, b) => (area(b) > area(a) ? b : a)) : undefined;
    vectors.set(file, face?.embedding);
  }
  const scored = pairs.map((p) => {
    const a = vectors.get(p.a);
    const b = vectors.get(p.b);
    return { similarity: a && b ? cosine(a, b) : -1, same: p.same, fold: p.fold ?? 0 };
  });
  const pct = (x: number | undefined) => (x === undefined ? '–' : `${(100 * x).toFixed(1)}%`);
  const kfold =
    folds.size > 1
      ? kFoldAccuracy(
          scored.map((x) => x.similarity),
          scored.map((x) => x.same),
          scored.map((x) => x.fold),
        )
      : undefined;
  const at = accuracyAt(scored, flow.threshold);
  const impostors = scored.filter((x) => !x.same).length;
  return [
    kfold ? `${(100 * kfold.mean).toFixed(2)} ± ${(100 * kfold.sd).toFixed(2)}%` : '–',
    pct(thresholdForFar(scored, 0.01)?.tar),
    pct(thresholdForFar(scored, 0.001)?.tar),
    `${at.fp}/${impostors} at ${flow.threshold}`,
  ].join(' | ');
}

async function measure(
  detector: string,
  landmarker: string,
  embedder: string,
  colour: string,
  lfwFolds: Set<number> | undefined,
): Promise<string> {
  const flow = await FaceFlow.open({ detector, landmarker, embedder, threads: 2 });
  try {
    let found = 0;
    const detectMs: number[] = [];
    for (const [photo, count] of Object.entries(GROUP)) {
      const frame = await decodeImage(shared('bbt', 'group', `${photo}.jpg`));
      const t = performance.now();
      found += Math.min(count, (await flow.detect(frame)).length);
      detectMs.push(performance.now() - t);
    }
    const frame = await decodeImage(shared('bbt', 'group', 'bbt1.jpg'));
    const faces = await flow.detect(frame);
    const embedMs: number[] = [];
    for (let k = 0; k < 11; k++) {
      const copy = faces.map((f) => ({ ...f }));
      const t = performance.now();
      await flow.embedFaces(frame, copy);
      if (k > 0) embedMs.push((performance.now() - t) / copy.length);
    }
    const median = (v: number[]) =>
      rankPercentile(
        [...v].sort((a, b) => a - b),
        50,
      );
    const bbt = await identification(flow, shared('bbt', 'faces'));
    const col = await identification(flow, colour);
    const name = (ref: string) => path.basename(ref).replace(/\.onnx$/, '');
    const lfwCells = lfwFolds ? ` ${await lfw(flow, lfwFolds)} |` : '';
    return `| ${name(detector)} | ${landmarker} | ${name(embedder)} | ${found}/23 | ${median(detectMs).toFixed(1)} | ${median(embedMs).toFixed(1)} | ${bbt} | ${col} |${lfwCells}`;
  } finally {
    await flow.dispose();
  }
}

async function main(): Promise<void> {
  if (!hasSharedData) {
    console.log('skipped: needs ../shared/data (real photos and the reference ONNX models)');
    return;
  }
  const { values } = parseArgs({
    options: { 'lfw-folds': { type: 'string', default: '1,2' }, 'no-lfw': { type: 'boolean' } },
  });
  const lfwFolds = values['no-lfw']
    ? undefined
    : new Set((values['lfw-folds'] ?? '').split(',').map(Number).filter(Number.isInteger));
  const colour = colourSet();
  const scrfd = shared('models', 'scrfd_500m_bnkps.onnx');
  const mobilefacenet = shared('models', 'mobilefacenet_128_b.onnx');
  const m = machineInfo();
  console.log(`${m.date}, ${m.cpu}, ${m.cores} cores, Node ${m.node}`);
  const lfwHead = lfwFolds
    ? ` LFW folds ${[...lfwFolds].join(',')}: k-fold | TAR @1% FAR | TAR @0.1% FAR | false accepts at threshold |`
    : '';
  console.log(
    `| detector | landmarks | embedder | group photos | detect ms | embed ms/face | bbt faces | colour photos |${lfwHead}`,
  );
  console.log(`|---|---|---|---|---|---|---|---|${lfwFolds ? '---|---|---|---|' : ''}`);
  for (const detector of ['human-blazeface', 'faceapi-ssd', scrfd]) {
    for (const landmarker of ['none', 'human-facemesh']) {
      for (const embedder of ['human-faceres', 'faceapi-recognition', mobilefacenet]) {
        console.log(await measure(detector, landmarker, embedder, colour, lfwFolds));
      }
    }
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exitCode = 1;
});
