import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { float, OnnxGraphBuilder } from '../src/models/onnx/builder';

async function run(model: Buffer, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(model);
  try {
    return (await session.run(feeds)) as Record<string, ort.Tensor>;
  } finally {
    await session.release();
  }
}

describe('models/onnx/builder', () => {
  it('writes a model that ONNX Runtime runs: Conv with bias, LeakyRelu, Reshape', async () => {
    const g = new OnnxGraphBuilder('t');
    const x = g.input('x', ['n', 1, 3, 3]);
    // A 2-output 2×2 convolution: the first filter sums its window, the second takes the top-left pixel.
    const w = g.constant('w', [1, 1, 1, 1, 1, 0, 0, 0], [2, 1, 2, 2]);
    const b = g.constant('b', [0.5, -10], [2]);
    const conv = g.node('Conv', [x, w, b], { kernel_shape: [2, 2], strides: [1, 1] });
    const act = g.node('LeakyRelu', [conv], { alpha: float(0.5) });
    const flat = g.node('Reshape', [act, g.int64('shape', [0, -1])]);
    g.alias(flat, 'y');
    g.output('y', ['n', 8]);
    const input = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const { y } = await run(g.toBuffer({ source: 'test' }), {
      x: new ort.Tensor('float32', input, [1, 1, 3, 3]),
    });
    assert.deepEqual(y.dims, [1, 8]);
    // Sums: 12, 16, 24, 28 (+0.5). Top-left: 1, 2, 4, 5 (-10, then halved by LeakyRelu).
    assert.deepEqual([...(y.data as Float32Array)], [12.5, 16.5, 24.5, 28.5, -4.5, -4, -3, -2.5]);
  });

  it('keeps names unique and refuses clashes and wrong constant sizes', () => {
    const g = new OnnxGraphBuilder('t');
    assert.equal(g.unique('a'), 'a');
    assert.equal(g.unique('a'), 'a_1');
    assert.equal(g.unique('bad name!'), 'bad_name_');
    g.input('x', [1]);
    assert.throws(() => g.input('x', [1]), /already used/);
    assert.throws(() => g.constant('c', [1, 2, 3], [2, 2]), /3 values for shape \[2,2\]/);
  });

  it('stores int64 and int32 constants and model metadata', async () => {
    const g = new OnnxGraphBuilder('t');
    const x = g.input('x', [2, 3]);
    const idx = g.constant('idx', Int32Array.from([2, 0]), [2]);
    const picked = g.node('Gather', [x, idx], { axis: 1 });
    g.alias(picked, 'y');
    g.output('y', [2, 2]);
    const session = await ort.InferenceSession.create(g.toBuffer({ faceflow_role: 'test' }));
    const { y } = await session.run({
      x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]),
    });
    assert.deepEqual([...(y.data as Float32Array)], [3, 1, 6, 4]);
    await session.release();
  });
});
