/**
 * Which face chip (alignment template, landmarks) and which embedder verify best on LFW View 2
 * folds 1–6 (../shared/data/lfw). Every photo is detected once (BlazeFace, with the portrait
 * retry), refined by FaceMesh, then aligned and embedded once per variant; each variant's pairs are
 * scored with the k-fold protocol and true-accept rates at fixed false-accept rates.
 *
 * Run: `node dist/bench/lfwChips.js [--folds 1,2] [--variants a,b]` (about 10 minutes for all folds on 2 cores).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { estimateSimilarity } from '../src/align/similarity';
import { framedTemplate } from '../src/align/template';
import { warpAffineRgb } from '../src/align/warp';
import { parsePairsCsv } from '../src/cli/commands/evalPairs';
import { kFoldAccuracy } from '../src/eval/kfold';
import { auc, bestThreshold, rocCurve, thresholdForFar, type ScoredPair } from '../src/eval/metrics';
import { FaceFlow } from '../src/faceflow';
import { decodeImage } from '../src/image/decode';
import { resizeRgb } from '../src/image/letterbox';
import type { Embedder } from '../src/models/roles';
import { loadPackModel } from '../src/models/pack/load';
import type { Face, Frame, Point } from '../src/types';
import { shared } from '../test/helpers/shared';
import { dlibChipTemplate, DLIB_MESH_POINTS } from './lfwDlib';

interface Variant {
  name: string;
  embedder: 'faceres' | 'faceapi';
  template: (size: number) => Point[];
  points: (p: PhotoPoints) => Point[] | undefined;
  flip?: boolean;
}

interface PhotoPoints {
  blaze: Point[];
  mesh5?: Point[];
  mesh?: Point[];
}

const arcface = (zoom: number) => (size: number) => framedTemplate({ size, zoom, shiftY: 0 });

const VARIANTS: Variant[] = [
  ...[0.15].map((pad): Variant => ({
    name: `faceapi-blaze-dlib5c-${pad}`,
    embedder: 'faceapi',
    template: (s) => dlibChipTemplate('centres', s, pad),
    points: (p) => p.blaze,
  })),
  {
    name: 'faceapi-blaze-dlib5c-0.2-flip',
    embedder: 'faceapi',
    flip: true,
    template: (s) => dlibChipTemplate('centres', s, 0.2),
    points: (p) => p.blaze,
  },
  { name: 'faceres-blaze-arc1.1', embedder: 'faceres', template: arcface(1.1), points: (p) => p.blaze },
  { name: 'faceres-mesh-arc1.1', embedder: 'faceres', template: arcface(1.1), points: (p) => p.mesh5 },
  { name: 'faceapi-mesh-arc1.0', embedder: 'faceapi', template: arcface(1.0), points: (p) => p.mesh5 },
  ...[0.2, 0.25, 0.3].flatMap((pad): Variant[] => [
    {
      name: `faceapi-blaze-dlib5c-${pad}`,
      embedder: 'faceapi',
      template: (s) => dlibChipTemplate('centres', s, pad),
      points: (p) => p.blaze,
    },
    {
      name: `faceapi-mesh-dlib5c-${pad}`,
      embedder: 'faceapi',
      template: (s) => dlibChipTemplate('centres', s, pad),
      points: (p) => p.mesh5,
    },
    {
      name: `faceapi-mesh-dlib33-${pad}`,
      embedder: 'faceapi',
      template: (s) => dlibChipTemplate('dlib33', s, pad),
      points: (p) => p.mesh && DLIB_MESH_POINTS.map((i) => p.mesh![i]),
    },
  ]),
  {
    name: 'faceapi-mesh-dlib33-0.25-flip',
    embedder: 'faceapi',
    flip: true,
    template: (s) => dlibChipTemplate('dlib33', s, 0.25),
    points: (p) => p.mesh && DLIB_MESH_POINTS.map((i) => p.mesh![i]),
  },
];

async function meshOf(landmarker: unknown, frame: Frame, face: Face): Promise<Point[] | undefined> {
  // The experiment needs every mesh vertex, which the landmarker keeps to itself.
  const lm = landmarker as {
    session: { run(feeds: unknown): Promise<Record<string, { dims: number[]; data: Float32Array }>> };
    size: number;
    inputName: string;
    minConfidence: number;
  };
  const s = lm.size;
  const cx = (face.box[0] + face.box[2]) / 2;
  const cy = (face.box[1] + face.box[3]) / 2;
  const side = Math.max(face.box[2] - face.box[0], face.box[3] - face.box[1]) * 1.5;
  const x0 = cx - side / 2;
  const y0 = cy - side / 2;
  const k = s / side;
  const rgb = warpAffineRgb(frame, { m: [k, 0, -x0 * k, 0, k, -y0 * k] }, s, s);
  const data = new Float32Array(s * s * 3);
  for (let i = 0; i < rgb.length; i++) data[i] = rgb[i] / 255;
  const ort = await import('onnxruntime-node');
  const out = await lm.session.run({ [lm.inputName]: new ort.Tensor('float32', data, [1, s, s, 3]) });
  const tensors = Object.values(out);
  const mesh = tensors.find((t) => t.dims[t.dims.length - 1] === 468 * 3)!.data;
  const flag = tensors.find((t) => t.dims[t.dims.length - 1] === 1)!.data;
  if (!(flag[0] >= lm.minConfidence)) return undefined;
  return Array.from({ length: 468 }, (_, v): Point => [
    x0 + (mesh[v * 3] * side) / s,
    y0 + (mesh[v * 3 + 1] * side) / s,
  ]);
}

async function embedWith(
  embedder: Embedder,
  frame: Frame,
  pts: Point[],
  template: Point[],
  flip: boolean,
): Promise<Float32Array> {
  const t = estimateSimilarity(pts, template);
  const crop = warpAffineRgb(frame, t, embedder.inputSize, embedder.inputSize);
  const [v] = await embedder.embed([crop]);
  if (!flip) return v;
  const s = embedder.inputSize;
  const mirrored = Buffer.alloc(crop.length);
  for (let y = 0; y < s; y++)
    for (let x = 0; x < s; x++)
      for (let c = 0; c < 3; c++) mirrored[(y * s + x) * 3 + c] = crop[(y * s + (s - 1 - x)) * 3 + c];
  const [m] = await embedder.embed([mirrored]);
  const sum = v.map((a, i) => a + m[i]);
  const n = Math.hypot(...sum);
  return sum.map((a) => a / n);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string' },
      'no-centre': { type: 'boolean' },
      folds: { type: 'string' },
      variants: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const lfw = shared('lfw');
  let pairs = parsePairsCsv(readFileSync(path.join(lfw, 'pairs.csv'), 'utf8'));
  if (values.folds) {
    const keep = new Set(values.folds.split(',').map(Number));
    pairs = pairs.filter((p) => keep.has(p.fold ?? 0));
  }
  const variants = values.variants
    ? VARIANTS.filter((v) => values.variants!.split(',').some((n) => v.name.includes(n)))
    : VARIANTS;
  const flow = await FaceFlow.open({ pack: 'default' });
  const landmarker = await loadPackModel('human-facemesh');
  const embedders = {
    faceres: flow.embedder,
    faceapi: (await loadPackModel('faceapi-recognition')) as Embedder,
  };
  const files = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
  const vectors = new Map<string, (Float32Array | undefined)[]>();
  const started = Date.now();
  let meshMissing = 0;
  for (const [i, file] of files.entries()) {
    let frame = await decodeImage(path.join(lfw, 'images', file));
    if (values.scale) {
      // Small faces, as a camera sees people across a room: the photo shrunk, face and all.
      const k = Number(values.scale);
      const w = Math.round(frame.width * k);
      const h = Math.round(frame.height * k);
      frame = { ...frame, width: w, height: h, rgb: await resizeRgb(frame, w, h) };
    }
    const faces = await flow.analyzePortrait(frame);
    if (faces.length === 0) {
      vectors.set(
        file,
        variants.map(() => undefined),
      );
      continue;
    }
    const face = faces.reduce((a, b) =>
      (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]) > (a.box[2] - a.box[0]) * (a.box[3] - a.box[1]) ? b : a,
    );
    const [refined] = await (landmarker as { refine(f: Frame, faces: Face[]): Promise<Face[]> }).refine(
      frame,
      [face],
    );
    const mesh = await meshOf(landmarker, frame, face);
    if (!mesh) meshMissing++;
    const points: PhotoPoints = { blaze: face.landmarks, mesh5: mesh ? refined.landmarks : undefined, mesh };
    const row: (Float32Array | undefined)[] = [];
    for (const v of variants) {
      const pts = v.points(points) ?? points.blaze;
      const emb = embedders[v.embedder];
      const template = v.template(emb.inputSize);
      const fits = pts.length === template.length;
      const usable = fits ? pts : points.blaze;
      const tpl = fits ? template : dlibChipTemplate('centres', emb.inputSize, 0.25);
      row.push(await embedWith(emb, frame, usable, tpl, v.flip ?? false));
    }
    vectors.set(file, row);
    if (i % 500 === 0)
      console.error(`${i}/${files.length} photos, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  console.error(`mesh not confident on ${meshMissing} photos`);
  const report: Record<string, unknown>[] = [];
  const scoresOf = (k: number) => {
    const scored: (ScoredPair & { fold: number })[] = [];
    for (const p of pairs) {
      const a = vectors.get(p.a)![k];
      const b = vectors.get(p.b)![k];
      if (!a || !b) continue;
      let dot = 0;
      for (let j = 0; j < a.length; j++) dot += a[j] * b[j];
      scored.push({ similarity: dot, same: p.same, fold: p.fold ?? 1 });
    }
    return scored;
  };
  // Centring: the mean of every photo's embedding, taken off and normalised again.
  const centres = variants.map((_, k) => {
    const vs = [...vectors.values()].map((row) => row[k]).filter((v): v is Float32Array => !!v);
    const c = new Float64Array(vs[0].length);
    for (const v of vs) v.forEach((x, j) => (c[j] += x / vs.length));
    return c;
  });
  const baseCount = variants.length;
  if (!values['no-centre']) {
    variants.slice(0, baseCount).forEach((v, k) => {
      variants.push({ ...v, name: `${v.name}-centred` });
      for (const row of vectors.values()) {
        const x = row[k];
        if (!x) {
          row.push(undefined);
          continue;
        }
        const y = x.map((a, j) => a - centres[k][j]);
        const n = Math.hypot(...y);
        row.push(y.map((a) => a / n));
      }
    });
  }
  if (values.out)
    writeFileSync(
      values.out + '.centres.json',
      JSON.stringify(
        variants
          .slice(0, baseCount)
          .map((v, k) => ({ name: v.name, center: Array.from(centres[k], (x) => Number(x.toFixed(6))) })),
      ),
    );
  const all = variants.map((_, k) => scoresOf(k));
  const named = variants.map((v, k) => ({ name: v.name, scored: all[k] }));
  const base = variants.findIndex((v) => v.name === 'faceres-blaze-arc1.1');
  if (base >= 0) {
    variants.forEach((v, k) => {
      if (v.embedder !== 'faceapi' || v.name.endsWith('centred') || all[k].length !== all[base].length)
        return;
      for (const w of [0.2, 0.35, 0.5]) {
        // FaceRes and face-api similarities live on different scales: standardise each on its impostors first.
        const z = (xs: { similarity: number; same: boolean }[]) => {
          const imp = xs.filter((x) => !x.same).map((x) => x.similarity);
          const m = imp.reduce((a, b) => a + b, 0) / imp.length;
          const sd = Math.sqrt(imp.reduce((a, b) => a + (b - m) ** 2, 0) / imp.length);
          return xs.map((x) => (x.similarity - m) / sd);
        };
        const za = z(all[base]);
        const zb = z(all[k]);
        named.push({
          name: `fusion-${w}-${v.name}`,
          scored: all[k].map((x, i) => ({ ...x, similarity: w * za[i] + (1 - w) * zb[i] })),
        });
      }
    });
  }
  if (values.out)
    writeFileSync(
      values.out + '.scores.json',
      JSON.stringify(
        named.map((n) => ({
          name: n.name,
          s: n.scored.map((x) => [Number(x.similarity.toFixed(5)), x.same ? 1 : 0, x.fold]),
        })),
      ),
    );
  named.forEach(({ name, scored }) => {
    const v = { name };
    const oneFold = new Set(scored.map((s) => s.fold)).size < 2;
    const kf = oneFold
      ? { mean: bestThreshold(scored).accuracy, sd: 0 }
      : kFoldAccuracy(
          scored.map((s) => s.similarity),
          scored.map((s) => s.same),
          scored.map((s) => s.fold),
        );
    const row = {
      variant: v.name,
      pairs: scored.length,
      kfold: `${(kf.mean * 100).toFixed(2)} ± ${(kf.sd * 100).toFixed(2)}`,
      tar1: thresholdForFar(scored, 0.01)?.tar,
      tar01: thresholdForFar(scored, 0.001)?.tar,
      thr01: thresholdForFar(scored, 0.001)?.threshold,
      auc: auc(rocCurve(scored)),
    };
    report.push(row);
    console.log(JSON.stringify(row));
  });
  void all;
  if (values.out) writeFileSync(values.out, JSON.stringify(report, null, 2));
  await flow.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
