import * as ort from 'onnxruntime-node';
import { letterbox, type Normalization } from '../image/letterbox';
import type { Box, Face, Frame, Point } from '../types';
import { nonMaxSuppression } from './nms';
import type { DetectOptions, Detector } from './roles';
import { fixedDim, type ModelSession, type ModelSignature } from './session';

export interface ScrfdOptions {
  /** Network input size for models with a dynamic input; fixed-size models use their own. */
  inputSize?: number;
  scoreThreshold?: number;
  nmsThreshold?: number;
}

const STRIDES = [8, 16, 32];
// SCRFD was trained on RGB scaled to roughly [-1, 1].
const SCRFD_NORM: Normalization = { mean: [127.5, 127.5, 127.5], std: [128, 128, 128] };

/** SCRFD's nine outputs: scores, box distances and keypoint offsets for strides 8, 16 and 32. */
export function isScrfdSignature(sig: ModelSignature): boolean {
  if (sig.inputs.length !== 1 || sig.outputs.length !== 9) return false;
  const input = sig.inputs[0].shape;
  if (input.length !== 4 || (fixedDim(input[1]) !== undefined && input[1] !== 3)) return false;
  const widths = sig.outputs.map((o) => o.shape[o.shape.length - 1]);
  return [1, 4, 10].every((w) => widths.filter((x) => x === w).length === 3);
}

/**
 * SCRFD face detector (InsightFace), any size, with 5 keypoints. Anchor-free: each cell of each
 * stride predicts, per anchor, distances from the cell centre to the four box sides and offsets
 * of the five keypoints, all in units of the stride.
 */
export class ScrfdDetector implements Detector {
  readonly role = 'detector' as const;
  private readonly inputName: string;
  private readonly inputW: number;
  private readonly inputH: number;
  private readonly dynamicInput: boolean;

  constructor(
    readonly id: string,
    private readonly session: ModelSession,
    signature: ModelSignature,
    private readonly options: ScrfdOptions = {},
  ) {
    if (!isScrfdSignature(signature)) throw new Error(`${id}: not an SCRFD model with keypoints`);
    const shape = signature.inputs[0].shape;
    this.inputName = signature.inputs[0].name;
    const h = fixedDim(shape[2]);
    const w = fixedDim(shape[3]);
    this.dynamicInput = h === undefined || w === undefined;
    const size = options.inputSize ?? 640;
    if (this.dynamicInput && (size % 32 !== 0 || size < 32)) {
      throw new Error(`inputSize must be a positive multiple of 32, got ${size}`);
    }
    this.inputW = w ?? size;
    this.inputH = h ?? size;
  }

  get inputBox(): { width: number; height: number } {
    return { width: this.inputW, height: this.inputH };
  }

  /** Network input for a frame: fixed models take their size, dynamic ones the frame's aspect. */
  inputSizeFor(frame: Pick<Frame, 'width' | 'height'>): [number, number] {
    if (!this.dynamicInput) return [this.inputW, this.inputH];
    // Only as many rows or columns as the frame needs, rounded up to the coarsest stride: less work.
    const scale = Math.min(this.inputW / frame.width, this.inputH / frame.height);
    const w = Math.min(this.inputW, Math.ceil((frame.width * scale) / 32) * 32);
    const h = Math.min(this.inputH, Math.ceil((frame.height * scale) / 32) * 32);
    return [w, h];
  }

  async detect(frame: Frame, options: DetectOptions = {}): Promise<Face[]> {
    const scoreThreshold = options.scoreThreshold ?? this.options.scoreThreshold ?? 0.5;
    const nmsThreshold = options.nmsThreshold ?? this.options.nmsThreshold ?? 0.4;
    const maxFaces = options.maxFaces ?? Infinity;
    const [inW, inH] = this.inputSizeFor(frame);
    const lb = await letterbox(frame, inW, inH, SCRFD_NORM);
    const input = new ort.Tensor('float32', lb.data, [1, 3, inH, inW]);
    const results = await this.session.run({ [this.inputName]: input });
    const outputs = Object.values(results);
    const byWidth = (width: number) =>
      outputs
        .filter((t) => t.dims[t.dims.length - 1] === width)
        .sort((a, b) => rowsOf(b) - rowsOf(a)) as ort.Tensor[];
    const scores = byWidth(1);
    const boxes = byWidth(4);
    const kps = byWidth(10);

    const candBoxes: Box[] = [];
    const candScores: number[] = [];
    const candKps: Point[][] = [];
    STRIDES.forEach((stride, level) => {
      const cols = Math.ceil(inW / stride);
      const rows = Math.ceil(inH / stride);
      const cells = cols * rows;
      const n = rowsOf(scores[level]);
      const anchors = Math.round(n / cells);
      if (anchors < 1 || anchors * cells !== n) {
        throw new Error(`${this.id}: stride ${stride} has ${n} predictions for a ${cols}×${rows} grid`);
      }
      const s = scores[level].data as Float32Array;
      const b = boxes[level].data as Float32Array;
      const k = kps[level].data as Float32Array;
      for (let i = 0; i < n; i++) {
        const score = s[i];
        if (!(score >= scoreThreshold)) continue;
        const cell = Math.floor(i / anchors);
        const cx = (cell % cols) * stride;
        const cy = Math.floor(cell / cols) * stride;
        // Back from network pixels to source pixels, clipped to the frame.
        const x1 = clamp((cx - b[4 * i] * stride) / lb.scaleX, frame.width);
        const y1 = clamp((cy - b[4 * i + 1] * stride) / lb.scaleY, frame.height);
        const x2 = clamp((cx + b[4 * i + 2] * stride) / lb.scaleX, frame.width);
        const y2 = clamp((cy + b[4 * i + 3] * stride) / lb.scaleY, frame.height);
        if (x2 <= x1 || y2 <= y1) continue;
        const points: Point[] = [];
        for (let p = 0; p < 5; p++) {
          points.push([
            (cx + k[10 * i + 2 * p] * stride) / lb.scaleX,
            (cy + k[10 * i + 2 * p + 1] * stride) / lb.scaleY,
          ]);
        }
        candBoxes.push([x1, y1, x2, y2]);
        candScores.push(score);
        candKps.push(points);
      }
    });
    return nonMaxSuppression(candBoxes, candScores, nmsThreshold, maxFaces).map((i) => ({
      box: candBoxes[i],
      score: candScores[i],
      landmarks: candKps[i],
    }));
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

function rowsOf(t: ort.Tensor): number {
  // [1, N, C] or [N, C]: N is the second-to-last dimension.
  return t.dims[t.dims.length - 2];
}

function clamp(v: number, max: number): number {
  return v < 0 ? 0 : v > max ? max : v;
}
