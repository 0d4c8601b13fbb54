import { OnnxGraphBuilder } from '../onnx/builder';
import type { LoadedWeight } from '../tfjs/weights';
import type { Box } from '../../types';
import { nonMaxSuppression } from '../nms';
import { faceApiModelDir, hwioToOihw, loadFaceApiWeights, weightOf } from './locate';
import type { OnnxTensorInfo } from './recognitionNet';

/** Side of the square network input. */
export const FACE_API_SSD_SIZE = 512;
/** Anchors (prior boxes) over the six feature maps: 32²·3 + (16² + 8² + 4² + 2² + 1²)·6. */
export const FACE_API_SSD_ANCHORS = 5118;

export interface FaceApiSsdOnnx {
  onnx: Buffer;
  /** `[N, 3, 512, 512]` float32, RGB, values 0..255 (scaled to -1..1 inside the graph). */
  input: OnnxTensorInfo;
  /** `[N, 5118, 4]`: per anchor (ty, tx, th, tw), box offsets relative to the anchor. */
  boxEncodings: OnnxTensorInfo;
  /** `[N, 5118, 3]`: per anchor logits (background, face, unused); the face score is sigmoid(logit 1). */
  classLogits: OnnxTensorInfo;
  /** `[5118, 4]`: the anchors (ymin, xmin, ymax, xmax, 0..1 of the input), a constant output so a saved ONNX file is self-contained. */
  anchors: OnnxTensorInfo;
  /** The same anchors, ready for `decodeSsdOutputs`. */
  anchorData: Float32Array;
}

// face-api's MobileNetV1 depthwise layers that stride by 2.
const STRIDE2_LAYERS = new Set([2, 4, 6, 12]);
const BN_EPSILON = 0.0010000000474974513;

/**
 * face-api's SSD-MobileNetV1 face detector as an ONNX graph, from the weights-only manifest in
 * `@vladmandic/face-api/model/`. Architecture (face-api's `SsdMobilenetv1`): x / 127.5 - 1; MobileNetV1
 * (a 3×3/2 conv, then 13 depthwise-separable pairs; depthwise convs with batch norm, pointwise convs
 * with a bias, all followed by ReLU6; TF 'same' padding); eight more convs (1×1 then 3×3/2, four
 * times) for the lower-resolution maps; box and class predictors (1×1 convs) on six maps: layer 11
 * (32², 3 anchors) and the backbone output and the four extra maps (16², 8², 4², 2², 1², 6 anchors
 * each). Batch norm is folded into the depthwise convs.
 *
 * Outputs are raw: decode, threshold and suppress them with `decodeSsdOutputs`.
 */
export function buildFaceApiSsdOnnx(modelDir = faceApiModelDir()): FaceApiSsdOnnx {
  const weights = loadFaceApiWeights(modelDir, 'ssd_mobilenetv1_model');
  const g = new OnnxGraphBuilder('faceapi_ssd_mobilenetv1');
  const S = FACE_API_SSD_SIZE;
  const input = g.input('input', ['N', 3, S, S]);
  const scaled = g.node('Div', [input, g.constant('127.5', [127.5], [])]);
  const x = g.node('Sub', [scaled, g.constant('one', [1], [])], {}, 'normalized');

  const net = new SsdNet(g, weights);
  let t: Tensor = { name: x, channels: 3, size: S };
  t = net.pointwise(t, 'MobilenetV1/Conv2d_0_pointwise', 2);
  let conv11: Tensor | undefined;
  for (let i = 1; i <= 13; i++) {
    t = net.depthwise(t, `MobilenetV1/Conv2d_${i}_depthwise`, STRIDE2_LAYERS.has(i) ? 2 : 1);
    t = net.pointwise(t, `MobilenetV1/Conv2d_${i}_pointwise`, 1);
    if (i === 11) conv11 = t;
  }
  if (!conv11) throw new Error('unreachable');
  const extra: Tensor[] = [];
  let e = t;
  for (let i = 0; i < 8; i++) {
    e = net.pointwise(e, `Prediction/Conv2d_${i}_pointwise`, i % 2 === 1 ? 2 : 1);
    if (i % 2 === 1) extra.push(e);
  }
  const maps = [conv11, t, ...extra];
  const boxes: string[] = [];
  const classes: string[] = [];
  let anchorCount = 0;
  maps.forEach((m, i) => {
    const p = `Prediction/BoxPredictor_${i}`;
    const box = net.head(m, `${p}/BoxEncodingPredictor`, 4);
    const cls = net.head(m, `${p}/ClassPredictor`, 3);
    if (box.perCell !== cls.perCell) throw new Error(`${p}: box and class predictors disagree on anchors`);
    boxes.push(box.name);
    classes.push(cls.name);
    anchorCount += m.size * m.size * box.perCell;
  });
  const anchorData = weightOf(weights, 'Output/extra_dim', [1, anchorCount, 4]);
  g.alias(g.node('Concat', boxes, { axis: 1 }), 'box_encodings');
  g.alias(g.node('Concat', classes, { axis: 1 }), 'class_logits');
  g.alias(g.constant('anchor_data', anchorData, [anchorCount, 4]), 'anchors');
  const boxShape = ['N', anchorCount, 4];
  const classShape = ['N', anchorCount, 3];
  g.output('box_encodings', boxShape);
  g.output('class_logits', classShape);
  g.output('anchors', [anchorCount, 4]);

  const onnx = g.toBuffer({
    source: '@vladmandic/face-api ssd_mobilenetv1_model',
    input:
      'NCHW float32 RGB 0..255, 512x512; image scaled to fit and placed top-left, black padding; ' +
      '/127.5 - 1 inside the graph',
    output:
      'raw SSD box encodings (ty, tx, th, tw; scales 10, 10, 5, 5) and class logits; anchors ymin, xmin, ymax, xmax',
  });
  return {
    onnx,
    input: { name: input, shape: ['N', 3, S, S] },
    boxEncodings: { name: 'box_encodings', shape: boxShape },
    classLogits: { name: 'class_logits', shape: classShape },
    anchors: { name: 'anchors', shape: [anchorCount, 4] },
    anchorData: Float32Array.from(anchorData),
  };
}

interface Tensor {
  name: string;
  channels: number;
  size: number;
}

/** TF 'same' padding for one axis: the odd pixel goes after. */
function samePads(size: number, k: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max(0, (out - 1) * stride + k - size);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

class SsdNet {
  private zero?: string;
  private six?: string;

  constructor(
    private readonly g: OnnxGraphBuilder,
    private readonly weights: Map<string, LoadedWeight>,
  ) {}

  private shapeOf(name: string): number[] {
    const w = this.weights.get(name);
    if (!w) throw new Error(`face-api weights: '${name}' is missing`);
    return w.shape;
  }

  private conv(
    x: Tensor,
    w: string,
    b: string,
    k: number,
    stride: number,
    group: number,
    hint: string,
  ): string {
    const [p0, p1] = samePads(x.size, k, stride);
    return this.g.node(
      'Conv',
      [x.name, w, b],
      { kernel_shape: [k, k], strides: [stride, stride], pads: [p0, p0, p1, p1], group },
      hint,
    );
  }

  private relu6(x: string): string {
    this.zero ??= this.g.constant('zero', [0], []);
    this.six ??= this.g.constant('six', [6], []);
    return this.g.node('Clip', [x, this.zero, this.six]);
  }

  /** A full conv ("pointwise" in face-api's names, though some are 3×3) with a bias, then ReLU6. */
  pointwise(x: Tensor, prefix: string, stride: number): Tensor {
    const shape = this.shapeOf(`${prefix}/weights`);
    const [k, , cin, cout] = shape;
    if (cin !== x.channels) throw new Error(`${prefix}: takes ${cin} channels, gets ${x.channels}`);
    const w = this.g.constant(`${prefix}/w`, hwioToOihw(weightOf(this.weights, `${prefix}/weights`), shape), [
      cout,
      cin,
      k,
      k,
    ]);
    const b = this.g.constant(
      `${prefix}/b`,
      weightOf(this.weights, `${prefix}/convolution_bn_offset`, [cout]),
      [cout],
    );
    const out = this.relu6(this.conv(x, w, b, k, stride, 1, prefix));
    return { name: out, channels: cout, size: Math.ceil(x.size / stride) };
  }

  /** A depthwise conv with batch norm folded in, then ReLU6. */
  depthwise(x: Tensor, prefix: string, stride: number): Tensor {
    const shape = this.shapeOf(`${prefix}/depthwise_weights`);
    const [k, , c, mult] = shape;
    if (c !== x.channels || mult !== 1) throw new Error(`${prefix}: shape [${shape.join(',')}]`);
    const gamma = weightOf(this.weights, `${prefix}/BatchNorm/gamma`, [c]);
    const beta = weightOf(this.weights, `${prefix}/BatchNorm/beta`, [c]);
    const mean = weightOf(this.weights, `${prefix}/BatchNorm/moving_mean`, [c]);
    const variance = weightOf(this.weights, `${prefix}/BatchNorm/moving_variance`, [c]);
    const scale = Float32Array.from(gamma, (v, i) => v / Math.sqrt(variance[i] + BN_EPSILON));
    // [k, k, C, 1] is laid out as [k, k, 1, C] with one input channel per group.
    const filters = hwioToOihw(weightOf(this.weights, `${prefix}/depthwise_weights`), [k, k, 1, c], scale);
    const w = this.g.constant(`${prefix}/w`, filters, [c, 1, k, k]);
    const b = this.g.constant(
      `${prefix}/b`,
      Float32Array.from(beta, (v, i) => v - mean[i] * scale[i]),
      [c],
    );
    const out = this.relu6(this.conv(x, w, b, k, stride, c, prefix));
    return { name: out, channels: c, size: Math.ceil(x.size / stride) };
  }

  /** A predictor: 1×1 conv with bias, as [N, H·W·anchors, width] in TF's (row, column, anchor) order. */
  head(x: Tensor, prefix: string, width: number): { name: string; perCell: number } {
    const shape = this.shapeOf(`${prefix}/weights`);
    const [k, , cin, cout] = shape;
    if (k !== 1 || cin !== x.channels || cout % width !== 0) {
      throw new Error(`${prefix}: shape [${shape.join(',')}] on ${x.channels} channels`);
    }
    const w = this.g.constant(`${prefix}/w`, hwioToOihw(weightOf(this.weights, `${prefix}/weights`), shape), [
      cout,
      cin,
      1,
      1,
    ]);
    const b = this.g.constant(`${prefix}/b`, weightOf(this.weights, `${prefix}/biases`, [cout]), [cout]);
    const conv = this.conv(x, w, b, 1, 1, 1, prefix);
    const nhwc = this.g.node('Transpose', [conv], { perm: [0, 2, 3, 1] });
    const name = this.g.node('Reshape', [nhwc, this.g.int64(`${prefix}/shape`, [0, -1, width])]);
    return { name, perCell: cout / width };
  }
}

export interface SsdDetection {
  /** x1, y1, x2, y2 in source pixels, clipped to the image. */
  box: Box;
  score: number;
}

/** How the source image sits in the network input: scaled, at the top-left corner (face-api's and `letterbox`'s placement). */
export interface SsdInputGeometry {
  sourceWidth: number;
  sourceHeight: number;
  /** Network pixels per source pixel, per axis. */
  scaleX: number;
  scaleY: number;
  /** Network input side; 512 unless told. */
  inputSize?: number;
}

export interface SsdDecodeOptions {
  /** Keep boxes scoring above this (face-api's default 0.5). */
  minConfidence?: number;
  /** At most this many boxes (face-api's default 100). */
  maxResults?: number;
  /** Drop a box overlapping a better one by more than this IoU (face-api uses 0.5). */
  iouThreshold?: number;
}

/**
 * The SSD box decoding face-api does (TF Object Detection API's faster-R-CNN box coder, scales 10,
 * 10, 5, 5): boxes as (ymin, xmin, ymax, xmax), 0..1 of the network input, one row per anchor.
 */
export function decodeSsdBoxes(boxEncodings: Float32Array, anchors: Float32Array): Float32Array {
  if (boxEncodings.length !== anchors.length) {
    throw new Error(`${boxEncodings.length / 4} box encodings for ${anchors.length / 4} anchors`);
  }
  const out = new Float32Array(anchors.length);
  for (let i = 0; i < anchors.length; i += 4) {
    const ah = anchors[i + 2] - anchors[i];
    const aw = anchors[i + 3] - anchors[i + 1];
    const acy = anchors[i] + ah / 2;
    const acx = anchors[i + 1] + aw / 2;
    const cy = (boxEncodings[i] / 10) * ah + acy;
    const cx = (boxEncodings[i + 1] / 10) * aw + acx;
    const halfH = (Math.exp(boxEncodings[i + 2] / 5) * ah) / 2;
    const halfW = (Math.exp(boxEncodings[i + 3] / 5) * aw) / 2;
    out[i] = cy - halfH;
    out[i + 1] = cx - halfW;
    out[i + 2] = cy + halfH;
    out[i + 3] = cx + halfW;
  }
  return out;
}

/** Face score per anchor: sigmoid of the second of the three class logits. */
export function ssdScores(classLogits: Float32Array): Float32Array {
  const n = classLogits.length / 3;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 1 / (1 + Math.exp(-classLogits[3 * i + 1]));
  return out;
}

/**
 * face-api's SSD post-processing for one image: decode the boxes against the anchors, keep those
 * scoring above `minConfidence`, suppress overlaps greedily (IoU > 0.5, in network coordinates), and
 * map the survivors to source pixels. Pass one image's slice of each output (`[5118·4]`, `[5118·3]`).
 * Best first.
 */
export function decodeSsdOutputs(
  outputs: { boxEncodings: Float32Array; classLogits: Float32Array; anchors: Float32Array },
  geometry: SsdInputGeometry,
  options: SsdDecodeOptions = {},
): SsdDetection[] {
  const minConfidence = options.minConfidence ?? 0.5;
  const maxResults = options.maxResults ?? 100;
  const iouThreshold = options.iouThreshold ?? 0.5;
  const count = outputs.anchors.length / 4;
  if (outputs.classLogits.length !== count * 3) {
    throw new Error(`${outputs.classLogits.length / 3} class predictions for ${count} anchors`);
  }
  const scores = ssdScores(outputs.classLogits);
  const decoded = decodeSsdBoxes(outputs.boxEncodings, outputs.anchors);
  const candidates: number[] = [];
  for (let i = 0; i < count; i++) if (scores[i] > minConfidence) candidates.push(i);
  const boxes = candidates.map((i): Box => [
    decoded[4 * i],
    decoded[4 * i + 1],
    decoded[4 * i + 2],
    decoded[4 * i + 3],
  ]);
  const kept = nonMaxSuppression(
    boxes,
    candidates.map((i) => scores[i]),
    iouThreshold,
    maxResults,
  );
  const size = geometry.inputSize ?? FACE_API_SSD_SIZE;
  const toX = (v: number) => clamp((v * size) / geometry.scaleX, geometry.sourceWidth);
  const toY = (v: number) => clamp((v * size) / geometry.scaleY, geometry.sourceHeight);
  return kept.map((k) => {
    const [ymin, xmin, ymax, xmax] = boxes[k];
    return { box: [toX(xmin), toY(ymin), toX(xmax), toY(ymax)], score: scores[candidates[k]] };
  });
}

function clamp(v: number, max: number): number {
  return v < 0 ? 0 : v > max ? max : v;
}
