/**
 * Accuracy and speed of every detector × landmarks × embedder combination: the table of
 * models/README.md. Run: `node dist/bench/packs.js` (needs ../shared/data; about 4 minutes).
 *
 * Detection: people found in the five bbt group photos. Identification on the bbt faces and on the
 * colour photos of face_recognition_examples: leave-one-out rank-1, ROC AUC and d′.
 */
import { mkdtempSync, symlinkSync, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
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

async function measure(
  detector: string,
  landmarker: string,
  embedder: string,
  colour: string,
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
    return `| ${name(detector)} | ${landmarker} | ${name(embedder)} | ${found}/23 | ${median(detectMs).toFixed(1)} | ${median(embedMs).toFixed(1)} | ${bbt} | ${col} |`;
  } finally {
    await flow.dispose();
  }
}

async function main(): Promise<void> {
  if (!hasSharedData) {
    console.log('skipped: needs ../shared/data (real photos and the reference ONNX models)');
    return;
  }
  const colour = colourSet();
  const scrfd = shared('models', 'scrfd_500m_bnkps.onnx');
  const mobilefacenet = shared('models', 'mobilefacenet_128_b.onnx');
  const m = machineInfo();
  console.log(`${m.date}, ${m.cpu}, ${m.cores} cores, Node ${m.node}`);
  console.log(
    '| detector | landmarks | embedder | group photos | detect ms | embed ms/face | bbt faces | colour photos |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const detector of ['human-blazeface', 'faceapi-ssd', scrfd]) {
    for (const landmarker of ['none', 'human-facemesh']) {
      for (const embedder of ['human-faceres', 'faceapi-recognition', mobilefacenet]) {
        console.log(await measure(detector, landmarker, embedder, colour));
      }
    }
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exitCode = 1;
});
