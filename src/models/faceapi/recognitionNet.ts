import { OnnxGraphBuilder } from '../onnx/builder';
import type { LoadedWeight } from '../tfjs/weights';
import { faceApiModelDir, hwioToOihw, loadFaceApiWeights, weightOf } from './locate';

/** Face side the recognition net takes, in pixels. */
export const FACE_API_RECOGNITION_SIZE = 150;
/** Length of its descriptor. */
export const FACE_API_DESCRIPTOR_SIZE = 128;
/** Per-channel (R, G, B) means face-api subtracts before dividing by 255. */
export const FACE_API_RECOGNITION_MEAN: [number, number, number] = [122.782, 117.001, 104.298];

export interface OnnxTensorInfo {
  name: string;
  /** A string dimension is dynamic. */
  shape: (number | string)[];
}

export interface FaceApiRecognitionOnnx {
  onnx: Buffer;
  /** `[N, 3, 150, 150]` float32, RGB, values 0..255: normalisation is inside the graph. */
  input: OnnxTensorInfo;
  /** `[N, 128]` float32 descriptor, not normalised (face-api compares them by Euclidean distance, 0.6 for "same"). */
  output: OnnxTensorInfo;
}

/**
 * face-api's face recognition net (a port of dlib's ResNet-34-like face descriptor, 29 conv layers)
 * as an ONNX graph, built from the weights-only manifest in `@vladmandic/face-api/model/`.
 *
 * Architecture, from face-api's `FaceRecognitionNet`: (x - mean) / 255; 7×7/2 conv (valid) + ReLU;
 * 3×3/2 max pool (valid); residual blocks of two 3×3 convs at 32, 64, 128 and 256 channels, where a
 * "down" block's first conv is 3×3/2 (valid) and its shortcut is a 2×2/2 average pool, zero-padded in
 * channels (and the main path zero-padded by a row and column where it comes out smaller); global
 * average pool; a 256×128 fully connected layer without bias. Every conv has a bias and is followed
 * by a per-channel scale and offset, which are folded into the conv here.
 */
export function buildFaceApiRecognitionOnnx(modelDir = faceApiModelDir()): FaceApiRecognitionOnnx {
  const weights = loadFaceApiWeights(modelDir, 'face_recognition_model');
  const g = new OnnxGraphBuilder('faceapi_recognition');
  const S = FACE_API_RECOGNITION_SIZE;
  const input = g.input('input', ['N', 3, S, S]);

  const mean = g.constant('mean', FACE_API_RECOGNITION_MEAN, [1, 3, 1, 1]);
  const centred = g.node('Sub', [input, mean]);
  let x = g.node('Div', [centred, g.constant('255', [255], [])], {}, 'normalized');

  const net = new Net(g, weights);
  let t: Tensor = { name: x, channels: 3, size: S };
  t = net.conv(t, 'conv32_down', 2, true);
  x = g.node('MaxPool', [t.name], { kernel_shape: [3, 3], strides: [2, 2] }, 'pool');
  t = { ...t, name: x, size: Math.floor((t.size - 3) / 2) + 1 };

  const blocks: [string, boolean][] = [
    ['conv32_1', false],
    ['conv32_2', false],
    ['conv32_3', false],
    ['conv64_down', true],
    ['conv64_1', false],
    ['conv64_2', false],
    ['conv64_3', false],
    ['conv128_down', true],
    ['conv128_1', false],
    ['conv128_2', false],
    ['conv256_down', true],
    ['conv256_1', false],
    ['conv256_2', false],
    ['conv256_down_out', true],
  ];
  for (const [prefix, down] of blocks) t = down ? net.residualDown(t, prefix) : net.residual(t, prefix);

  const pooled = g.node('GlobalAveragePool', [t.name]);
  const flat = g.node('Flatten', [pooled], { axis: 1 });
  const fc = g.constant('fc', weightOf(weights, 'fc', [t.channels, FACE_API_DESCRIPTOR_SIZE]), [
    t.channels,
    FACE_API_DESCRIPTOR_SIZE,
  ]);
  g.alias(g.node('MatMul', [flat, fc]), 'descriptor');
  const outputShape = ['N', FACE_API_DESCRIPTOR_SIZE];
  g.output('descriptor', outputShape);

  const onnx = g.toBuffer({
    source: '@vladmandic/face-api face_recognition_model',
    input: 'NCHW float32 RGB 0..255, 150x150; mean subtraction and /255 inside the graph',
    output: '128-d descriptor, not normalised; same person when Euclidean distance < 0.6',
  });
  return {
    onnx,
    input: { name: input, shape: ['N', 3, S, S] },
    output: { name: 'descriptor', shape: outputShape },
  };
}

interface Tensor {
  name: string;
  channels: number;
  /** Height and width (always square here). */
  size: number;
}

class Net {
  constructor(
    private readonly g: OnnxGraphBuilder,
    private readonly weights: Map<string, LoadedWeight>,
  ) {}

  /** conv + bias, then the per-channel scale layer (folded in), then optionally ReLU. */
  conv(x: Tensor, prefix: string, stride: 1 | 2, relu: boolean): Tensor {
    const filters = this.weights.get(`${prefix}/conv/filters`);
    if (!filters) throw new Error(`face-api weights: '${prefix}/conv/filters' is missing`);
    const [k, kw, cin, cout] = filters.shape;
    if (k !== kw || cin !== x.channels) {
      throw new Error(`face-api weights: '${prefix}/conv/filters' has shape [${filters.shape.join(',')}]`);
    }
    const bias = weightOf(this.weights, `${prefix}/conv/bias`, [cout]);
    const scale = weightOf(this.weights, `${prefix}/scale/weights`, [cout]);
    const offset = weightOf(this.weights, `${prefix}/scale/biases`, [cout]);
    const w = this.g.constant(
      `${prefix}/w`,
      hwioToOihw(weightOf(this.weights, `${prefix}/conv/filters`), filters.shape, scale),
      [cout, cin, k, k],
    );
    const b = this.g.constant(
      `${prefix}/b`,
      Float32Array.from(bias, (v, o) => v * scale[o] + offset[o]),
      [cout],
    );
    // Stride 1 convs are TF 'same' (odd kernels: symmetric padding); stride 2 convs are 'valid'.
    const pad = stride === 1 ? (k - 1) / 2 : 0;
    let out = this.g.node(
      'Conv',
      [x.name, w, b],
      { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad] },
      prefix,
    );
    if (relu) out = this.g.node('Relu', [out]);
    return { name: out, channels: cout, size: Math.floor((x.size + 2 * pad - k) / stride) + 1 };
  }

  residual(x: Tensor, prefix: string): Tensor {
    const a = this.conv(x, `${prefix}/conv1`, 1, true);
    const b = this.conv(a, `${prefix}/conv2`, 1, false);
    const sum = this.g.node('Add', [b.name, x.name]);
    return { ...b, name: this.g.node('Relu', [sum], {}, `${prefix}/out`) };
  }

  residualDown(x: Tensor, prefix: string): Tensor {
    const a = this.conv(x, `${prefix}/conv1`, 2, true);
    let b = this.conv(a, `${prefix}/conv2`, 1, false);
    let shortcut = this.g.node('AveragePool', [x.name], { kernel_shape: [2, 2], strides: [2, 2] });
    const pooledSize = Math.floor(x.size / 2);
    const extraChannels = b.channels - x.channels;
    if (extraChannels < 0) throw new Error(`${prefix}: a down block cannot reduce channels`);
    if (extraChannels > 0) {
      // The shortcut gets zero channels after its own.
      const pads = this.g.int64(`${prefix}/cpad`, [0, 0, 0, 0, 0, extraChannels, 0, 0]);
      shortcut = this.g.node('Pad', [shortcut, pads]);
    }
    const extra = pooledSize - b.size;
    if (extra < 0 || extra > 1) throw new Error(`${prefix}: main path ${b.size}, shortcut ${pooledSize}`);
    if (extra > 0) {
      // A valid 3×3/2 conv on an even size comes out one short of the 2×2/2 pool: face-api appends a
      // zero row at the bottom and a zero column at the right.
      const pads = this.g.int64(`${prefix}/spad`, [0, 0, 0, 0, 0, 0, extra, extra]);
      b = { ...b, name: this.g.node('Pad', [b.name, pads]), size: pooledSize };
    }
    const sum = this.g.node('Add', [shortcut, b.name]);
    return { ...b, name: this.g.node('Relu', [sum], {}, `${prefix}/out`) };
  }
}
