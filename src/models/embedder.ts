import * as ort from 'onnxruntime-node';
import type { Framing } from '../align/template';
import type { Embedder } from './roles';
import { TensorPool } from './tensorPool';
import { fixedDim, type ModelSession, type ModelSignature } from './session';
import { dot } from '../util/vectors';

export interface EmbedderNormalization {
  /** Channel order the network expects. */
  channels: 'rgb' | 'bgr';
  /** Subtracted from each 0..255 value, in the network's channel order. */
  mean: [number, number, number];
  /** Divides each value after the mean is taken off. */
  std: [number, number, number];
}

export interface EmbedderConfig {
  normalization: EmbedderNormalization;
  defaultThreshold: number;
  /** Add the embedding of the mirrored crop: costs a second pass, usually gains accuracy. */
  flip?: boolean;
  /** Largest batch sent to the network at once (models with a fixed batch of 1 always get 1). */
  maxBatch?: number;
  /** Tensor layout of the input: N×3×S×S (default) or N×S×S×3 (TensorFlow models). */
  layout?: 'nchw' | 'nhwc';
  /** Which output holds the embedding, for models with several (default: the first). */
  output?: string;
  /** Crop framing; default the ArcFace framing at the model's input size. */
  framing?: Omit<Framing, 'size'>;
  /**
   * The mean of many people's L2-normalised embeddings, taken off every embedding before it is
   * normalised again. Some nets (face-api's) put every face in one narrow cone, where cosines of
   * strangers run 0.8–0.9; centring spreads them so thresholds and margins mean what they say.
   */
  center?: number[];
}

/** N×3×S×S float input (N×S×S×3 for `nhwc`), N×D output: the ArcFace / MobileFaceNet family. */
export function isEmbedderSignature(
  sig: ModelSignature,
  layout: 'nchw' | 'nhwc' = 'nchw',
  output?: string,
): boolean {
  if (sig.inputs.length !== 1 || sig.outputs.length < 1) return false;
  const inp = sig.inputs[0].shape;
  const out = (output ? sig.outputs.find((o) => o.name === output) : sig.outputs[0])?.shape ?? [];
  if (inp.length !== 4 || out.length !== 2) return false;
  const [c, h, w] = layout === 'nchw' ? [inp[1], inp[2], inp[3]] : [inp[3], inp[1], inp[2]];
  return fixedDim(c) === 3 && fixedDim(h) !== undefined && h === w && fixedDim(out[1]) !== undefined;
}

/** Input tensors kept for reuse: two per batch size, within 12 MB (a batch of 16 faces of 224² takes 9.6 MB). */
const SPARES_PER_SIZE = 2;
const SPARE_BYTES = 12 * 1024 * 1024;

export class OnnxEmbedder implements Embedder {
  readonly role = 'embedder' as const;
  readonly dimension: number;
  readonly inputSize: number;
  readonly defaultThreshold: number;
  readonly framing: Framing;
  private readonly inputName: string;
  private readonly outputName: string;
  private readonly maxBatch: number;
  private readonly center: Float32Array | undefined;
  private readonly spareInputs = new TensorPool(SPARES_PER_SIZE, SPARE_BYTES);

  constructor(
    readonly id: string,
    private readonly session: ModelSession,
    signature: ModelSignature,
    private readonly config: EmbedderConfig,
  ) {
    const layout = config.layout ?? 'nchw';
    if (!isEmbedderSignature(signature, layout, config.output)) {
      throw new Error(`${id}: not an ${layout === 'nchw' ? 'N×3×S×S' : 'N×S×S×3'} → N×D embedding model`);
    }
    const inp = signature.inputs[0];
    const out = signature.outputs.find((o) => o.name === config.output) ?? signature.outputs[0];
    this.inputName = inp.name;
    this.outputName = out.name;
    this.inputSize = fixedDim(inp.shape[2]) as number;
    this.dimension = fixedDim(out.shape[1]) as number;
    this.framing = {
      size: this.inputSize,
      zoom: config.framing?.zoom ?? 1,
      shiftY: config.framing?.shiftY ?? 0,
      template: config.framing?.template ?? 'arcface',
    };
    const fixedBatch = fixedDim(inp.shape[0]);
    this.maxBatch = fixedBatch ?? Math.max(1, config.maxBatch ?? 16);
    this.defaultThreshold = config.defaultThreshold;
    if (config.center !== undefined) {
      const c = config.center;
      if (!Array.isArray(c) || c.length !== this.dimension || !c.every(Number.isFinite)) {
        throw new Error(`${id}: center must be ${this.dimension} finite numbers`);
      }
      this.center = Float32Array.from(c);
    }
  }

  async embed(crops: Buffer[]): Promise<Float32Array[]> {
    const size = this.inputSize;
    const expected = size * size * 3;
    crops.forEach((c, i) => {
      if (!Buffer.isBuffer(c) || c.length !== expected) {
        throw new Error(`crop ${i}: expected a ${size}×${size} RGB buffer of ${expected} bytes`);
      }
    });
    const out: Float32Array[] = [];
    for (let start = 0; start < crops.length; start += this.maxBatch) {
      const batch = crops.slice(start, start + this.maxBatch);
      const vectors = await this.run(batch, false);
      if (this.config.flip) {
        const mirrored = await this.run(batch, true);
        vectors.forEach((v, i) => v.forEach((_, j) => (v[j] += mirrored[i][j])));
      }
      out.push(...vectors.map((v) => this.centred(l2Normalize(v))));
    }
    return out;
  }

  private async run(batch: Buffer[], mirror: boolean): Promise<Float32Array[]> {
    const size = this.inputSize;
    const plane = size * size;
    const length = batch.length * 3 * plane;
    // Every element is written below, so a tensor a finished run left behind serves as it is.
    const data = this.spareInputs.take(length) ?? new Float32Array(length);
    const { channels, mean, std } = this.config.normalization;
    // Network channel c reads source channel order[c].
    const order = channels === 'rgb' ? [0, 1, 2] : [2, 1, 0];
    // Element strides of a pixel step and a channel step in the network's layout.
    const nhwc = this.config.layout === 'nhwc';
    const px = nhwc ? 3 : 1;
    const ch = nhwc ? 1 : plane;
    const [m0, m1, m2] = [mean[0], mean[1], mean[2]];
    const [k0, k1, k2] = [1 / std[0], 1 / std[1], 1 / std[2]];
    const [o0, o1, o2] = order;
    // Source pixels in reading order, each written to its three channels: one pass over the crop.
    const step = mirror ? -3 : 3;
    batch.forEach((crop, n) => {
      let d = n * 3 * plane;
      for (let y = 0; y < size; y++) {
        let i = (y * size + (mirror ? size - 1 : 0)) * 3;
        for (let x = 0; x < size; x++, i += step, d += px) {
          data[d] = (crop[i + o0] - m0) * k0;
          data[d + ch] = (crop[i + o1] - m1) * k1;
          data[d + 2 * ch] = (crop[i + o2] - m2) * k2;
        }
      }
    });
    const dims = nhwc ? [batch.length, size, size, 3] : [batch.length, 3, size, size];
    const tensor = new ort.Tensor('float32', data, dims);
    let result: ort.InferenceSession.ReturnType;
    try {
      result = await this.session.run({ [this.inputName]: tensor });
    } finally {
      // ONNX Runtime is done with the input once run settles.
      this.spareInputs.give(data);
    }
    const flat = result[this.outputName].data as Float32Array;
    const d = this.dimension;
    return batch.map((_, n) => Float32Array.from(flat.subarray(n * d, (n + 1) * d)));
  }

  private centred(v: Float32Array): Float32Array {
    if (!this.center) return v;
    for (let i = 0; i < v.length; i++) v[i] -= this.center[i];
    return l2Normalize(v);
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

export function l2Normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i] * v[i];
  const norm = Math.sqrt(sum);
  if (!(norm > 0)) throw new Error('embedding has zero length (the model produced no signal)');
  for (let i = 0; i < v.length; i++) v[i] /= norm;
  return v;
}

/** Cosine similarity of two L2-normalised embeddings: their inner product. */
export const cosine: (a: Float32Array, b: Float32Array) => number = dot;
