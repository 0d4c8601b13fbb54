import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { convertTfjsGraph, type ConvertedModel } from '../src/models/tfjs/convert';
import type { WeightGroup } from '../src/models/tfjs/weights';
import { seededRandom } from '../src/util/seededRandom';
import { PROJECT_ROOT } from './helpers/shared';

type Tf = typeof import('@tensorflow/tfjs');

const HUMAN_MODELS = path.join(PROJECT_ROOT, 'node_modules', '@vladmandic', 'human', 'models');
const PHOTO = path.join(PROJECT_ROOT, 'node_modules', '@vladmandic', 'face-api', 'demo', 'sample1.jpg');
const TOLERANCE = 1e-3;

interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

// Regions of sample1.jpg (1920×1280): the three people; the middle woman's face; her left eye.
const SCENE: Region = { left: 320, top: 0, width: 1280, height: 1280 };
const FACE: Region = { left: 790, top: 380, width: 300, height: 300 };
const EYE: Region = { left: 915, top: 455, width: 90, height: 90 };

/** A region of the photo resized to size×size, RGB bytes mapped per value by `norm`. */
async function crop(region: Region, size: number, norm: (v: number) => number): Promise<Float32Array> {
  const rgb = await sharp(PHOTO).extract(region).resize(size, size).removeAlpha().raw().toBuffer();
  return Float32Array.from(rgb, norm);
}

/**
 * Each model with its input prepared as @vladmandic/human prepares it (src/face/*.ts): blazeface
 * takes pixels/127.5 − 1; the face crop handed on from the detector is pixels/255, which facemesh,
 * iris, antispoof and liveness take as is, faceres multiplies back by 255, and emotion turns into
 * grey (0.2989 R + 0.587 G + 0.114 B) mapped to [-1, 1].
 */
const CASES: { name: string; photo: () => Promise<Float32Array> }[] = [
  { name: 'blazeface', photo: () => crop(SCENE, 256, (v) => v / 127.5 - 1) },
  { name: 'facemesh', photo: () => crop(FACE, 192, (v) => v / 255) },
  { name: 'faceres', photo: () => crop(FACE, 224, (v) => v) },
  { name: 'antispoof', photo: () => crop(FACE, 128, (v) => v / 255) },
  { name: 'liveness', photo: () => crop(FACE, 32, (v) => v / 255) },
  {
    name: 'emotion',
    photo: async () => {
      const rgb = await crop(FACE, 64, (v) => v / 255);
      return Float32Array.from({ length: rgb.length / 3 }, (_, i) => {
        const grey = 0.2989 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2];
        return (grey - 0.5) * 2;
      });
    },
  },
  { name: 'iris', photo: () => crop(EYE, 64, (v) => v / 255) },
];

interface ModelJson {
  modelTopology: object;
  weightsManifest: WeightGroup[];
}

/** Load a graph model into tfjs from files (tfjs's own loader would fetch, which Node can't from disk). */
async function loadTfjs(tf: Tf, modelJson: string) {
  const json = JSON.parse(readFileSync(modelJson, 'utf8')) as ModelJson;
  const dir = path.dirname(modelJson);
  const bin = Buffer.concat(
    json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(path.join(dir, p)))),
  );
  const weightData = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) as ArrayBuffer;
  const weightSpecs = json.weightsManifest.flatMap(
    (g) => g.weights,
  ) as import('@tensorflow/tfjs').io.WeightsManifestEntry[];
  return tf.loadGraphModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData }));
}

async function runTfjs(
  tf: Tf,
  model: Awaited<ReturnType<typeof loadTfjs>>,
  data: Float32Array,
  shape: number[],
  outputs: string[],
) {
  const input = tf.tensor(data, shape);
  const result = model.execute(input, outputs);
  const tensors = Array.isArray(result) ? result : [result];
  const out = await Promise.all(
    tensors.map(async (t) => ({ shape: t.shape, data: (await t.data()) as Float32Array })),
  );
  tf.dispose([input, ...tensors]);
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'output sizes differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = d; // NaN counts as a failure
  }
  return worst;
}

/**
 * The largest difference measured against max(1, |reference|): absolute up to magnitude 1, relative
 * beyond. Blazeface's logits on a photo reach ±213, where float32 rounding alone moves the last
 * digits by ~1e-3 (ONNX Runtime with and without its graph optimisations differs by 3.5e-4 there).
 */
function scaledDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'output sizes differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(d <= worst)) worst = d;
  }
  return worst;
}

const batchOne = (conv: ConvertedModel) => conv.input.shape.map((d) => (typeof d === 'number' ? d : 1));

describe('models/tfjs/convert: TFJS graph models to ONNX', function () {
  this.timeout(120000);
  let tf: Tf;

  before(async () => {
    tf = await import('@tensorflow/tfjs');
    await tf.setBackend('cpu');
  });

  for (const c of CASES) {
    it(`${c.name}: ONNX Runtime matches tfjs on random input and on a photo`, async () => {
      const file = path.join(HUMAN_MODELS, `${c.name}.json`);
      const conv = convertTfjsGraph(file);
      const shape = batchOne(conv);
      const size = shape.reduce((a, b) => a * b, 1);
      const random = seededRandom(7);
      const inputs = { random: Float32Array.from({ length: size }, () => random()), photo: await c.photo() };
      assert.equal(inputs.photo.length, size);

      const model = await loadTfjs(tf, file);
      const session = await ort.InferenceSession.create(conv.onnx, { intraOpNumThreads: 2 });
      const report: string[] = [];
      const expected: Float32Array[][] = [];
      try {
        for (const [label, data] of Object.entries(inputs)) {
          const want = await runTfjs(
            tf,
            model,
            data,
            shape,
            conv.outputs.map((o) => o.tfName),
          );
          expected.push(want.map((w) => w.data));
          const got = await session.run({ [conv.input.name]: new ort.Tensor('float32', data, shape) });
          let worst = 0;
          let worstScaled = 0;
          conv.outputs.forEach((o, i) => {
            assert.deepEqual(got[o.name].dims, want[i].shape, `${o.name}: shape`);
            assert.deepEqual(
              o.shape?.map((d) => (typeof d === 'number' ? d : 1)),
              want[i].shape,
            );
            const got32 = got[o.name].data as Float32Array;
            const scaled = scaledDiff(got32, want[i].data);
            assert.ok(scaled <= TOLERANCE, `${c.name} ${label} ${o.name}: max |diff|/max(1,|ref|) ${scaled}`);
            worst = Math.max(worst, maxDiff(got32, want[i].data));
            worstScaled = Math.max(worstScaled, scaled);
          });
          report.push(`${label} ${worst.toExponential(2)} (scaled ${worstScaled.toExponential(2)})`);
        }
        // A dynamic batch: both inputs at once give what each gave alone.
        if (typeof conv.input.shape[0] === 'string') {
          const both = new Float32Array(2 * size);
          both.set(inputs.random);
          both.set(inputs.photo, size);
          const got = await session.run({
            [conv.input.name]: new ort.Tensor('float32', both, [2, ...shape.slice(1)]),
          });
          conv.outputs.forEach((o, i) => {
            const data = got[o.name].data as Float32Array;
            const half = data.length / 2;
            assert.equal(got[o.name].dims[0], 2);
            assert.ok(
              scaledDiff(data.subarray(0, half), expected[0][i]) <= TOLERANCE,
              `${o.name}: batch item 0`,
            );
            assert.ok(
              scaledDiff(data.subarray(half), expected[1][i]) <= TOLERANCE,
              `${o.name}: batch item 1`,
            );
          });
          report.push('batch 2 ok');
        }
      } finally {
        await session.release();
        model.dispose();
      }
      console.log(`      ${c.name}: max |diff| ${report.join(', ')}`);
    });
  }

  describe('hand-made graphs', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-tfjs-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const str = (s: string) => ({ s: Buffer.from(s).toString('base64') });
    const ints = (v: number[]) => ({ list: { i: v.map(String) } });
    const strs = (v: string[]) => ({ list: { s: v.map((s) => Buffer.from(s).toString('base64')) } });
    const float = { type: 'DT_FLOAT' };

    interface W {
      name: string;
      shape: number[];
      values: number[] | Float32Array;
      dtype?: 'int32';
    }

    /** Write model.json + weights.bin for `nodes`, with a Const node per weight. */
    function writeModel(name: string, nodes: object[], weights: W[], extra: object = {}): string {
      const bytes = Buffer.concat(
        weights.map((w) =>
          Buffer.from(
            w.dtype === 'int32' ? Int32Array.from(w.values).buffer : Float32Array.from(w.values).buffer,
          ),
        ),
      );
      writeFileSync(path.join(dir, `${name}.bin`), bytes);
      const consts = weights.map((w) => ({
        name: w.name,
        op: 'Const',
        attr: { dtype: { type: w.dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT' } },
      }));
      const json = {
        format: 'graph-model',
        modelTopology: { node: [...consts, ...nodes], versions: { producer: 1 } },
        weightsManifest: [
          {
            paths: [`${name}.bin`],
            weights: weights.map((w) => ({ name: w.name, shape: w.shape, dtype: w.dtype ?? 'float32' })),
          },
        ],
        ...extra,
      };
      const file = path.join(dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(json));
      return file;
    }

    const placeholder = (shape: number[]) => ({
      name: 'x',
      op: 'Placeholder',
      attr: { dtype: float, shape: { shape: { dim: shape.map((s) => ({ size: String(s) })) } } },
    });

    it('matches tfjs on odd sizes, SAME strides, Relu6, pads, pools, reductions, concat and MatMul', async () => {
      const r = seededRandom(3);
      const rand = (n: number) => Float32Array.from({ length: n }, () => r() - 0.5);
      const nhwc = (stride: number) => ints([1, stride, stride, 1]);
      const file = writeModel(
        'mixed',
        [
          placeholder([-1, 7, 7, 3]),
          {
            name: 'c1',
            op: '_FusedConv2D',
            input: ['x', 'w1', 'b1'],
            attr: {
              strides: nhwc(2),
              dilations: nhwc(1),
              padding: str('SAME'),
              fused_ops: strs(['BiasAdd', 'Relu6']),
              num_args: { i: '1' },
            },
          },
          {
            name: 'd1',
            op: 'DepthwiseConv2dNative',
            input: ['c1', 'dw'],
            attr: { strides: nhwc(1), dilations: nhwc(1), padding: str('SAME') },
          },
          { name: 'p1', op: 'Pad', input: ['d1', 'pads'] },
          {
            name: 'mp',
            op: 'MaxPool',
            input: ['p1'],
            attr: { ksize: nhwc(3), strides: nhwc(2), padding: str('SAME') },
          },
          {
            name: 'ap',
            op: 'AvgPool',
            input: ['p1'],
            attr: { ksize: nhwc(2), strides: nhwc(2), padding: str('SAME') },
          },
          { name: 'sum', op: 'AddV2', input: ['mp', 'ap'] },
          { name: 'rows', op: 'Mean', input: ['sum', 'axis1'], attr: { keep_dims: { b: false } } },
          { name: 'gap', op: 'Mean', input: ['sum', 'axes12'], attr: { keep_dims: { b: true } } },
          { name: 'scaled', op: 'Mul', input: ['sum', 'gap'] },
          { name: 'leaky', op: 'Prelu', input: ['scaled', 'alpha'] },
          { name: 'cat', op: 'ConcatV2', input: ['sum', 'leaky', 'axisLast'], attr: { N: { i: '2' } } },
          { name: 'flat', op: 'Reshape', input: ['cat', 'flatShape'] },
          {
            name: 'fc',
            op: '_FusedMatMul',
            input: ['flat', 'wm', 'bm'],
            attr: { transpose_b: { b: true }, fused_ops: strs(['BiasAdd']), num_args: { i: '1' } },
          },
          { name: 'probs', op: 'Softmax', input: ['fc'] },
        ],
        [
          { name: 'w1', shape: [3, 3, 3, 4], values: rand(108) },
          { name: 'b1', shape: [4], values: [0.1, -0.2, 3, 7] },
          { name: 'dw', shape: [3, 3, 4, 2], values: rand(72) },
          { name: 'pads', shape: [4, 2], values: [0, 0, 1, 0, 0, 1, 0, 0], dtype: 'int32' },
          { name: 'axis1', shape: [1], values: [1], dtype: 'int32' },
          { name: 'axes12', shape: [2], values: [1, 2], dtype: 'int32' },
          { name: 'alpha', shape: [8], values: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8] },
          { name: 'axisLast', shape: [], values: [-1], dtype: 'int32' },
          { name: 'flatShape', shape: [2], values: [-1, 144], dtype: 'int32' },
          { name: 'wm', shape: [5, 144], values: rand(720) },
          { name: 'bm', shape: [5], values: [0, 1, 2, 3, 4] },
        ],
      );
      const conv = convertTfjsGraph(file, { outputNames: { probs: 'p' } });
      assert.deepEqual(conv.input, { name: 'x', shape: ['N', 7, 7, 3] });
      assert.deepEqual(
        conv.outputs.map((o) => [o.name, o.tfName, o.shape]),
        [
          ['p', 'probs', ['N', 5]],
          ['rows', 'rows', ['N', 3, 8]],
        ],
      );
      const data = Float32Array.from({ length: 2 * 7 * 7 * 3 }, () => 4 * r() - 2);
      const shape = [2, 7, 7, 3];
      const model = await loadTfjs(tf, file);
      const want = await runTfjs(tf, model, data, shape, ['probs', 'rows']);
      model.dispose();
      const session = await ort.InferenceSession.create(conv.onnx);
      const got = await session.run({ x: new ort.Tensor('float32', data, shape) });
      await session.release();
      assert.deepEqual(got.p.dims, want[0].shape);
      assert.deepEqual(got.rows.dims, want[1].shape);
      assert.ok(maxDiff(got.p.data as Float32Array, want[0].data) <= 1e-5);
      assert.ok(maxDiff(got.rows.data as Float32Array, want[1].data) <= 1e-5);
    });

    it('fixes a dynamic batch on request and refuses to change a fixed dimension', () => {
      const file = path.join(HUMAN_MODELS, 'emotion.json');
      const conv = convertTfjsGraph(file, {
        inputShape: [1, 64, 64, 1],
        outputNames: { Identity: 'scores' },
      });
      assert.deepEqual(conv.input.shape, [1, 64, 64, 1]);
      assert.deepEqual(conv.outputs, [{ name: 'scores', tfName: 'Identity', shape: [1, 7] }]);
      assert.throws(
        () => convertTfjsGraph(file, { inputShape: [1, 48, 48, 1] }),
        /fixes that dimension at 64/,
      );
      assert.throws(() => convertTfjsGraph(file, { inputShape: [1, 64, 64] }), /inputShape has 3 dims/);
    });

    it('explains a missing file, bad JSON, a layers model and an unsupported op', () => {
      assert.throws(
        () => convertTfjsGraph(path.join(dir, 'nope.json')),
        /TFJS model not found: .*nope\.json/,
      );
      const corrupt = path.join(dir, 'corrupt.json');
      writeFileSync(corrupt, '{"format": "graph-model", "modelTopology": {');
      assert.throws(() => convertTfjsGraph(corrupt), /corrupt\.json is not valid JSON/);
      const layers = path.join(dir, 'layers.json');
      writeFileSync(
        layers,
        JSON.stringify({ format: 'layers-model', modelTopology: { class_name: 'Sequential' } }),
      );
      assert.throws(() => convertTfjsGraph(layers), /is a layers model/);
      const file = writeModel(
        'unsupported',
        [placeholder([1, 4]), { name: 'angle', op: 'Atan2', input: ['x', 'y'] }],
        [{ name: 'y', shape: [1, 4], values: [1, 2, 3, 4] }],
      );
      assert.throws(() => convertTfjsGraph(file), /unsupported TensorFlow op 'Atan2' \(node 'angle'\)/);
      const missingBin = writeModel(
        'nobin',
        [placeholder([1, 4]), { name: 'r', op: 'Relu', input: ['x'] }],
        [],
      );
      writeFileSync(
        missingBin,
        JSON.stringify({
          format: 'graph-model',
          modelTopology: { node: [placeholder([1, 4]), { name: 'r', op: 'Relu', input: ['x'] }] },
          weightsManifest: [{ paths: ['gone.bin'], weights: [] }],
        }),
      );
      assert.throws(() => convertTfjsGraph(missingBin), /weights file gone\.bin not found/);
    });
  });
});
