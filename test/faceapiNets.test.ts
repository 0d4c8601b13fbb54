import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { decodeImage } from '../src/image/decode';
import { letterbox } from '../src/image/letterbox';
import { faceApiModelDir } from '../src/models/faceapi/locate';
import { buildFaceApiRecognitionOnnx, FACE_API_RECOGNITION_SIZE } from '../src/models/faceapi/recognitionNet';
import {
  buildFaceApiSsdOnnx,
  decodeSsdBoxes,
  decodeSsdOutputs,
  FACE_API_SSD_ANCHORS,
  FACE_API_SSD_SIZE,
  ssdScores,
  type SsdDetection,
} from '../src/models/faceapi/ssdMobilenet';
import type { WeightGroup } from '../src/models/tfjs/weights';
import type { Box, Frame } from '../src/types';
import { seededRandom } from '../src/util/seededRandom';

// The slice of face-api (and of the tfjs it runs on) that the reference needs.
interface TfTensor {
  shape: number[];
  dataSync(): Float32Array;
  dispose(): void;
}
interface Tf {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  getBackend(): string;
  tensor3d(values: Float32Array, shape: [number, number, number], dtype: 'float32'): TfTensor;
  io: { decodeWeights(data: ArrayBuffer, specs: unknown[]): Record<string, TfTensor> };
}
interface FaceApiNet {
  loadFromWeightMap(map: Record<string, TfTensor>): void;
}
interface FaceApi {
  tf: Tf;
  nets: {
    faceRecognitionNet: FaceApiNet & { computeFaceDescriptor(input: TfTensor): Promise<Float32Array> };
    ssdMobilenetv1: FaceApiNet & {
      forward(input: TfTensor): Promise<{ boxes: TfTensor[]; scores: TfTensor[] }>;
      locateFaces(
        input: TfTensor,
        options: { minConfidence?: number; maxResults?: number },
      ): Promise<{ score: number; box: { x: number; y: number; width: number; height: number } }[]>;
    };
  };
}

/**
 * face-api's Node build, on pure-JS tfjs. The build requires `@tensorflow/tfjs-node` (native, not
 * installed); `@tensorflow/tfjs` has the same API, so the require is redirected for the load only.
 * (The ESM builds do not load in Node: the bundled one trips on Node's `util`, the unbundled one
 * imports the WASM backend, which is not installed.)
 */
function loadFaceApi(): FaceApi {
  const loader = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const original = loader._resolveFilename;
  loader._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
    return original.call(this, request === '@tensorflow/tfjs-node' ? '@tensorflow/tfjs' : request, ...rest);
  };
  try {
    return createRequire(__filename)('@vladmandic/face-api') as FaceApi;
  } finally {
    loader._resolveFilename = original;
  }
}

/** A face-api weight map straight from the manifest, through tfjs's own dequantisation. */
function faceApiWeightMap(tf: Tf, name: string): Record<string, TfTensor> {
  const dir = faceApiModelDir();
  const groups = JSON.parse(
    readFileSync(path.join(dir, `${name}-weights_manifest.json`), 'utf8'),
  ) as WeightGroup[];
  const bytes = Buffer.concat(groups.flatMap((g) => g.paths.map((p) => readFileSync(path.join(dir, p)))));
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
  return tf.io.decodeWeights(
    buffer,
    groups.flatMap((g) => g.weights),
  );
}

const SAMPLES = [1, 2, 3, 4, 5, 6].map((i) =>
  path.join(path.dirname(faceApiModelDir()), 'demo', `sample${i}.jpg`),
);
// Faces a person counts in each sample photo (all frontal or three-quarter but one profile in sample 2).
const PEOPLE = [3, 3, 3, 4, 5, 4];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function distance(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
  return Math.sqrt(sum);
}

/** Planar CHW (ONNX) to interleaved HWC (tfjs), one image. */
function chwToHwc(chw: Float32Array, size: number): Float32Array {
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    out[3 * i] = chw[i];
    out[3 * i + 1] = chw[plane + i];
    out[3 * i + 2] = chw[2 * plane + i];
  }
  return out;
}

function rgbToChw(rgb: Buffer, size: number): Float32Array {
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    out[i] = rgb[3 * i];
    out[plane + i] = rgb[3 * i + 1];
    out[2 * plane + i] = rgb[3 * i + 2];
  }
  return out;
}

/** A square 150×150 crop around `box`, its side `scale` × the box's longer side, its centre moved by `shift` × that side. */
async function faceCrop(
  frame: Frame,
  box: Box,
  scale = 1,
  shift: [number, number] = [0, 0],
): Promise<Buffer> {
  const side0 = Math.max(box[2] - box[0], box[3] - box[1]);
  const side = Math.min(Math.round(side0 * scale), frame.width, frame.height);
  const cx = (box[0] + box[2]) / 2 + shift[0] * side0;
  const cy = (box[1] + box[3]) / 2 + shift[1] * side0;
  const left = Math.min(Math.max(0, Math.round(cx - side / 2)), frame.width - side);
  const top = Math.min(Math.max(0, Math.round(cy - side / 2)), frame.height - side);
  return sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .extract({ left, top, width: side, height: side })
    .resize(FACE_API_RECOGNITION_SIZE, FACE_API_RECOGNITION_SIZE, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();
}

/** Crops (packed RGB, 150×150) as one planar batch. */
function stack(crops: Buffer[]): Float32Array {
  const out = new Float32Array(crops.length * 3 * FACE_API_RECOGNITION_SIZE ** 2);
  crops.forEach((c, i) =>
    out.set(rgbToChw(c, FACE_API_RECOGNITION_SIZE), i * 3 * FACE_API_RECOGNITION_SIZE ** 2),
  );
  return out;
}

/** The frame at half size, through JPEG quality 50: a second, worse photo of the same scene. */
async function retake(frame: Frame): Promise<Frame> {
  const width = Math.round(frame.width / 2);
  const height = Math.round(frame.height / 2);
  const jpeg = await sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .resize(width, height)
    .jpeg({ quality: 50 })
    .toBuffer();
  return { ...frame, width, height, rgb: await sharp(jpeg).raw().toBuffer() };
}

describe('models/faceapi: ONNX graphs built from face-api weights', function () {
  this.timeout(300_000);
  let faceapi: FaceApi;
  let recognition: ort.InferenceSession;
  let ssd: ort.InferenceSession;
  let anchors: Float32Array;
  let frames: Frame[];
  const S = FACE_API_RECOGNITION_SIZE;
  const D = FACE_API_SSD_SIZE;

  before(async () => {
    const rec = buildFaceApiRecognitionOnnx();
    const det = buildFaceApiSsdOnnx();
    anchors = det.anchorData;
    recognition = await ort.InferenceSession.create(rec.onnx, { intraOpNumThreads: 2 });
    ssd = await ort.InferenceSession.create(det.onnx, { intraOpNumThreads: 2 });
    faceapi = loadFaceApi();
    await faceapi.tf.setBackend('cpu');
    await faceapi.tf.ready();
    faceapi.nets.faceRecognitionNet.loadFromWeightMap(faceApiWeightMap(faceapi.tf, 'face_recognition_model'));
    faceapi.nets.ssdMobilenetv1.loadFromWeightMap(faceApiWeightMap(faceapi.tf, 'ssd_mobilenetv1_model'));
    frames = await Promise.all(SAMPLES.map((f) => decodeImage(f)));
  });

  after(async () => {
    await recognition?.release();
    await ssd?.release();
  });

  async function describeOnnx(chw: Float32Array, n: number): Promise<Float32Array[]> {
    const { descriptor } = await recognition.run({ input: new ort.Tensor('float32', chw, [n, 3, S, S]) });
    assert.deepEqual(descriptor.dims, [n, 128]);
    const flat = descriptor.data as Float32Array;
    return Array.from({ length: n }, (_, i) => flat.slice(128 * i, 128 * (i + 1)));
  }

  async function describeFaceApi(chw: Float32Array): Promise<Float32Array> {
    const t = faceapi.tf.tensor3d(chwToHwc(chw, S), [S, S, 3], 'float32');
    try {
      return await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(t);
    } finally {
      t.dispose();
    }
  }

  async function detectOnnx(chw: Float32Array) {
    const out = await ssd.run({ input: new ort.Tensor('float32', chw, [1, 3, D, D]) });
    assert.deepEqual(out.box_encodings.dims, [1, FACE_API_SSD_ANCHORS, 4]);
    assert.deepEqual(out.class_logits.dims, [1, FACE_API_SSD_ANCHORS, 3]);
    assert.deepEqual(out.anchors.dims, [FACE_API_SSD_ANCHORS, 4]);
    return {
      boxEncodings: out.box_encodings.data as Float32Array,
      classLogits: out.class_logits.data as Float32Array,
      anchors: out.anchors.data as Float32Array,
    };
  }

  /** face-api's decoded boxes and scores for all anchors, and (when asked) its final detections in input pixels. */
  async function detectFaceApi(chw: Float32Array, locate = false) {
    const t = faceapi.tf.tensor3d(chwToHwc(chw, D), [D, D, 3], 'float32');
    try {
      const raw = await faceapi.nets.ssdMobilenetv1.forward(t);
      const boxes = raw.boxes[0].dataSync().slice();
      const scores = raw.scores[0].dataSync().slice();
      [...raw.boxes, ...raw.scores].forEach((x) => x.dispose());
      // locateFaces runs the net again (tfjs on the CPU: seconds), so only when asked.
      const located = locate ? await faceapi.nets.ssdMobilenetv1.locateFaces(t, { minConfidence: 0.5 }) : [];
      const detections = located.map(({ score, box }) => ({
        score,
        box: [box.x, box.y, box.x + box.width, box.y + box.height] as Box,
      }));
      return { boxes, scores, detections };
    } finally {
      t.dispose();
    }
  }

  // Detections on each sample photo by the ONNX detector, in source pixels (computed once).
  let found: SsdDetection[][] | undefined;
  async function sampleFaces(): Promise<SsdDetection[][]> {
    found ??= await Promise.all(
      frames.map(async (frame) => {
        // The photo scaled to fit 512×512, top-left, black padding: what face-api does to its input.
        const lb = await letterbox(frame, D, D, { mean: [0, 0, 0], std: [1, 1, 1] });
        const geometry = {
          sourceWidth: frame.width,
          sourceHeight: frame.height,
          scaleX: lb.scaleX,
          scaleY: lb.scaleY,
        };
        return decodeSsdOutputs(await detectOnnx(lb.data), geometry);
      }),
    );
    return found;
  }

  it('finds the face-api model folder in node_modules', () => {
    assert.match(faceApiModelDir(), /@vladmandic[\\/]face-api[\\/]model$/);
    assert.equal(faceapi.tf.getBackend(), 'cpu');
  });

  it('recognition net: matches face-api on random input, batch of 2', async () => {
    const rand = seededRandom(7);
    const chw = Float32Array.from({ length: 2 * 3 * S * S }, () => rand() * 255);
    const ours = await describeOnnx(chw, 2);
    let worst = 0;
    for (let i = 0; i < 2; i++) {
      const ref = await describeFaceApi(chw.subarray(i * 3 * S * S, (i + 1) * 3 * S * S));
      worst = Math.max(worst, maxAbsDiff(ours[i], ref));
    }
    console.log(`      recognition, random input: max |diff| ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-3, `max |diff| ${worst}`);
  });

  it('SSD: matches face-api on random input (all 5118 decoded boxes and scores)', async () => {
    const rand = seededRandom(11);
    const chw = Float32Array.from({ length: 3 * D * D }, () => rand() * 255);
    const ours = await detectOnnx(chw);
    assert.deepEqual([...ours.anchors], [...anchors]);
    const ref = await detectFaceApi(chw);
    const boxDiff = maxAbsDiff(decodeSsdBoxes(ours.boxEncodings, ours.anchors), ref.boxes);
    const scoreDiff = maxAbsDiff(ssdScores(ours.classLogits), ref.scores);
    console.log(
      `      SSD, random input: boxes max |diff| ${boxDiff.toExponential(2)}, scores ${scoreDiff.toExponential(2)}`,
    );
    assert.ok(boxDiff <= 1e-3 && scoreDiff <= 1e-3, `boxes ${boxDiff}, scores ${scoreDiff}`);
  });

  it('SSD: finds the faces in the six sample photos', async () => {
    const all = await sampleFaces();
    const counts = all.map((faces) => faces.length);
    for (const [i, frame] of frames.entries()) {
      for (const f of all[i]) {
        const [x1, y1, x2, y2] = f.box;
        assert.ok(x1 >= 0 && y1 >= 0 && x2 <= frame.width && y2 <= frame.height && x2 > x1 && y2 > y1);
        // Faces in these 1920-pixel-wide group photos are 150 to 220 pixels wide.
        assert.ok(x2 - x1 > 100 && x2 - x1 < 300, `sample${i + 1}: face ${Math.round(x2 - x1)} px wide`);
        assert.ok(f.score > 0.5 && f.score <= 1);
      }
    }
    console.log(`      SSD: faces found ${counts.join(', ')} (people in the photos: ${PEOPLE.join(', ')})`);
    counts.forEach((n, i) => assert.ok(n >= PEOPLE[i] - 1 && n <= PEOPLE[i], `sample${i + 1}: ${n} faces`));
  });

  it('SSD: matches face-api on sample photos (decoded boxes, scores, final detections)', async () => {
    let boxDiff = 0;
    let scoreDiff = 0;
    let detDiff = 0;
    // Two photos, 8 faces: each face-api pass takes seconds on pure-JS tfjs.
    for (const i of [0, 4]) {
      const lb = await letterbox(frames[i], D, D, { mean: [0, 0, 0], std: [1, 1, 1] });
      const ours = await detectOnnx(lb.data);
      const ref = await detectFaceApi(lb.data, true);
      boxDiff = Math.max(boxDiff, maxAbsDiff(decodeSsdBoxes(ours.boxEncodings, ours.anchors), ref.boxes));
      scoreDiff = Math.max(scoreDiff, maxAbsDiff(ssdScores(ours.classLogits), ref.scores));
      // face-api's locateFaces on a 512×512 input reports network pixels.
      const inNet = decodeSsdOutputs(ours, { sourceWidth: D, sourceHeight: D, scaleX: 1, scaleY: 1 });
      assert.equal(inNet.length, ref.detections.length, `sample${i + 1}: detections`);
      assert.equal(inNet.length, PEOPLE[i]);
      inNet.forEach((d, k) => {
        detDiff = Math.max(
          detDiff,
          maxAbsDiff(d.box, ref.detections[k].box),
          Math.abs(d.score - ref.detections[k].score),
        );
      });
    }
    console.log(
      `      SSD, sample photos: decoded boxes (0..1) max |diff| ${boxDiff.toExponential(2)}, ` +
        `scores ${scoreDiff.toExponential(2)}, detections (pixels, scores) ${detDiff.toExponential(2)}`,
    );
    assert.ok(
      boxDiff <= 1e-3 && scoreDiff <= 1e-3 && detDiff <= 1e-2,
      `${boxDiff}, ${scoreDiff}, ${detDiff}`,
    );
  });

  it('recognition net: matches face-api on face crops from the sample photos', async () => {
    const found = await sampleFaces();
    let worst = 0;
    let crops = 0;
    for (const [i, frame] of frames.entries()) {
      for (const face of found[i]) {
        const chw = rgbToChw(await faceCrop(frame, face.box), S);
        const [ours] = await describeOnnx(chw, 1);
        worst = Math.max(worst, maxAbsDiff(ours, await describeFaceApi(chw)));
        crops++;
      }
    }
    console.log(`      recognition, ${crops} face crops: max |diff| ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-3, `max |diff| ${worst}`);
  });

  it('recognition net: the same face photographed again is nearer to itself than to any other face', async () => {
    const faces: { frame: Frame; box: Box }[] = [];
    const found = await sampleFaces();
    frames.forEach((frame, i) => found[i].forEach((f) => faces.push({ frame, box: f.box })));
    assert.ok(faces.length >= 15);
    // "Again": the photo at half size through JPEG quality 50, the crop 5 % larger and a little off centre.
    const again = await Promise.all(frames.map((f) => retake(f)));
    const plain = await describeOnnx(
      stack(await Promise.all(faces.map((f) => faceCrop(f.frame, f.box)))),
      faces.length,
    );
    const moved = await describeOnnx(
      stack(
        await Promise.all(
          faces.map((f) => {
            const half = again[frames.indexOf(f.frame)];
            return faceCrop(half, f.box.map((v) => v / 2) as Box, 1.05, [0.02, -0.02]);
          }),
        ),
      ),
      faces.length,
    );
    let same = 0;
    let other = Infinity;
    for (let i = 0; i < faces.length; i++) {
      same = Math.max(same, distance(plain[i], moved[i]));
      for (let j = i + 1; j < faces.length; j++) other = Math.min(other, distance(plain[i], plain[j]));
    }
    console.log(
      `      recognition, ${faces.length} faces: same face retaken ≤ ${same.toFixed(3)}, ` +
        `two different faces ≥ ${other.toFixed(3)} (face-api's threshold: 0.6)`,
    );
    assert.ok(same < other && same < 0.6, `same ${same}, other ${other}`);
  });
});
