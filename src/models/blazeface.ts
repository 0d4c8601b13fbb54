import * as ort from 'onnxruntime-node';
import { letterbox, type Normalization } from '../image/letterbox';
import type { Box, Face, Frame, Point } from '../types';
import { nonMaxSuppression } from './nms';
import type { DetectOptions, Detector } from './roles';
import type { ModelSession, ModelSignature } from './session';

// BlazeFace takes RGB scaled to [-1, 1], NHWC.
const BLAZEFACE_NORM: Normalization = { mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] };
/** Input tensors kept for reuse per detector: enough for the runs of a few cameras in flight together. */
const MAX_SPARE_INPUTS = 4;
/** Columns of a prediction row: logit, box centre offset (x, y), box size (w, h), 6 keypoints (x, y). */
const ROW = 17;

/**
 * Anchor centres in input pixels for a `width`×`height` input: a grid of `strides[0]` px with 2 anchors per
 * cell, then one of `strides[1]` px with 6, each anchor at its cell's centre, rows first (the order of the
 * model's flattened outputs). A 256×256 input has 896; its strides are 16 and 32 (size / 16 and size / 8).
 */
export function blazefaceAnchors(
  width: number,
  height = width,
  strides: [number, number] = [width / 16, width / 8],
): Point[] {
  const anchors: Point[] = [];
  for (const [stride, perCell] of [
    [strides[0], 2],
    [strides[1], 6],
  ]) {
    // A side that is not a multiple of the stride gets a partial last cell, as TF's 'SAME' padding makes.
    const rows = Math.ceil(height / stride);
    const cols = Math.ceil(width / stride);
    for (let gy = 0; gy < rows; gy++) {
      for (let gx = 0; gx < cols; gx++) {
        for (let a = 0; a < perCell; a++) anchors.push([stride * (gx + 0.5), stride * (gy + 0.5)]);
      }
    }
  }
  return anchors;
}

/**
 * Five alignment points from BlazeFace's six keypoints. BlazeFace marks the mouth's centre, not its
 * corners, so the corners are placed on the eye line's direction through the mouth centre, as far
 * apart as the ArcFace template puts them relative to the eyes (29.2 / 35.2 of the eye distance).
 */
export function fivePointsFromBlazeface(keypoints: Point[]): Point[] {
  const [a, b, nose, mouth] = keypoints;
  // BlazeFace lists the subject's right eye first; sort by x so "left" means the image's left.
  const [leftEye, rightEye] = a[0] <= b[0] ? [a, b] : [b, a];
  const half = 0.5 * (29.2 / 35.2);
  const dx = (rightEye[0] - leftEye[0]) * half;
  const dy = (rightEye[1] - leftEye[1]) * half;
  return [leftEye, rightEye, nose, [mouth[0] - dx, mouth[1] - dy], [mouth[0] + dx, mouth[1] + dy]];
}

/**
 * Predictions as one N×17 array in anchor order. The model either has one such output or four:
 * scores and regressors, each split by grid (16-px grid with 512 anchors first, then 32-px with 384).
 */
function joinPredictions(outputs: ort.Tensor[], id: string): Float32Array {
  const single = outputs.find((t) => t.dims[t.dims.length - 1] === ROW);
  if (single) return single.data as Float32Array;
  const rows = (t: ort.Tensor) => t.dims[t.dims.length - 2];
  const scores = outputs.filter((t) => t.dims[t.dims.length - 1] === 1).sort((a, b) => rows(b) - rows(a));
  const regs = outputs.filter((t) => t.dims[t.dims.length - 1] === ROW - 1).sort((a, b) => rows(b) - rows(a));
  if (scores.length !== 2 || regs.length !== 2 || scores.some((t, i) => rows(t) !== rows(regs[i]))) {
    throw new Error(`${id}: outputs are not BlazeFace's scores and regressors`);
  }
  const total = rows(scores[0]) + rows(scores[1]);
  const out = new Float32Array(total * ROW);
  let r = 0;
  for (let part = 0; part < 2; part++) {
    const s = scores[part].data as Float32Array;
    const g = regs[part].data as Float32Array;
    for (let i = 0; i < s.length; i++, r++) {
      out[r * ROW] = s[i];
      out.set(g.subarray(i * (ROW - 1), (i + 1) * (ROW - 1)), r * ROW + 1);
    }
  }
  return out;
}

/** The long side the "back" BlazeFace was trained at: a build with a free input size takes frames at it. */
const TRAINED_SIZE = 256;
/** Its grids' cells at that scale (px). Free-size inputs are multiples of the coarser, so no cell is partial. */
const TRAINED_STRIDES: [number, number] = [16, 32];

/**
 * MediaPipe BlazeFace (converted from the TFJS model in @vladmandic/human). A model with a fixed input
 * (256×256 as exported: 896 anchors) gets every frame letterboxed into it; one built with a free height and
 * width (the default pack's) gets the frame's own shape, long side 256, rounded up to whole 32-px cells, so a
 * 16:9 camera frame is 256×160 and 40 % of the network's work on padding is not done.
 */
export class BlazeFaceDetector implements Detector {
  readonly role = 'detector' as const;
  /** Fixed input size (width, height), or undefined for a free one. */
  private readonly fixedSize?: [number, number];
  /** Anchors per input size ("w×h"): one or two shapes in practice (the cameras' aspect ratios). */
  private readonly anchorsBySize = new Map<string, Point[]>();
  private readonly inputName: string;
  /** Input tensors no run holds any more, by length, for the next frames (runs of several cameras overlap). */
  private readonly spareInputs = new Map<number, Float32Array[]>();

  constructor(
    readonly id: string,
    private readonly session: ModelSession,
    signature: ModelSignature,
  ) {
    const shape = signature.inputs[0]?.shape ?? [];
    const [, h, w, c] = shape;
    const bothFixed = typeof h === 'number' && typeof w === 'number';
    const bothFree = typeof h !== 'number' && typeof w !== 'number';
    if (shape.length !== 4 || c !== 3 || !(bothFree || (bothFixed && h === w))) {
      throw new Error(
        `${id}: expected an N×S×S×3 BlazeFace input (or N×H×W×3 with H and W free), got [${shape.join(',')}]`,
      );
    }
    if (bothFixed) this.fixedSize = [w, h];
    this.inputName = signature.inputs[0].name;
  }

  /** The network input (width, height) a frame of this size is given. */
  inputSizeFor(frame: Pick<Frame, 'width' | 'height'>): [number, number] {
    if (this.fixedSize) return this.fixedSize;
    const scale = TRAINED_SIZE / Math.max(frame.width, frame.height);
    const cell = TRAINED_STRIDES[1];
    const side = (n: number) => Math.min(TRAINED_SIZE, Math.max(cell, Math.ceil((n * scale) / cell) * cell));
    return [side(frame.width), side(frame.height)];
  }

  private anchorsFor(width: number, height: number): Point[] {
    const key = `${width}x${height}`;
    let anchors = this.anchorsBySize.get(key);
    if (!anchors) {
      anchors = blazefaceAnchors(width, height, this.fixedSize ? undefined : TRAINED_STRIDES);
      this.anchorsBySize.set(key, anchors);
    }
    return anchors;
  }

  async detect(frame: Frame, options: DetectOptions = {}): Promise<Face[]> {
    // 0.6, not 0.5: on the shared photos every real face scored ≥ 0.63, while beside a face filling
    // much of the frame BlazeFace also reports ghost faces at 0.52-0.55.
    const scoreThreshold = options.scoreThreshold ?? 0.6;
    const nmsThreshold = options.nmsThreshold ?? 0.3;
    const [w, h] = this.inputSizeFor(frame);
    const spares = this.spareInputs.get(w * h * 3) ?? [];
    this.spareInputs.set(w * h * 3, spares);
    const lb = await letterbox(frame, w, h, BLAZEFACE_NORM, 'nhwc', spares.pop());
    let result: ort.InferenceSession.ReturnType;
    try {
      result = await this.session.run({
        [this.inputName]: new ort.Tensor('float32', lb.data, [1, h, w, 3]),
      });
    } finally {
      // ONNX Runtime is done with the input once run settles: the next frame reuses it (a 786 KB tensor per
      // frame was a good part of the garbage collector's work with many cameras, bench/RESULTS.md).
      if (spares.length < MAX_SPARE_INPUTS) spares.push(lb.data);
    }
    const raw = joinPredictions(Object.values(result) as ort.Tensor[], this.id);
    const n = raw.length / ROW;
    const anchors = this.anchorsFor(w, h);
    if (n !== anchors.length) throw new Error(`${this.id}: ${n} predictions for ${anchors.length} anchors`);
    // The score is a logit: compare in logit space, no sigmoid for the rejected majority.
    const minLogit = Math.log(scoreThreshold / (1 - scoreThreshold));
    const boxes: Box[] = [];
    const scores: number[] = [];
    const points: Point[][] = [];
    const toSource = (x: number, y: number): Point => [x / lb.scaleX, y / lb.scaleY];
    for (let i = 0; i < n; i++) {
      const r = i * ROW;
      if (!(raw[r] >= minLogit)) continue;
      const [ax, ay] = anchors[i];
      const cx = ax + raw[r + 1];
      const cy = ay + raw[r + 2];
      const w = raw[r + 3];
      const h = raw[r + 4];
      const [x1, y1] = toSource(cx - w / 2, cy - h / 2);
      const [x2, y2] = toSource(cx + w / 2, cy + h / 2);
      const box: Box = [
        Math.max(0, x1),
        Math.max(0, y1),
        Math.min(frame.width, x2),
        Math.min(frame.height, y2),
      ];
      if (box[2] <= box[0] || box[3] <= box[1]) continue;
      const kps: Point[] = [];
      for (let k = 0; k < 6; k++) kps.push(toSource(ax + raw[r + 5 + 2 * k], ay + raw[r + 6 + 2 * k]));
      boxes.push(box);
      scores.push(1 / (1 + Math.exp(-raw[r])));
      points.push(kps);
    }
    return nonMaxSuppression(boxes, scores, nmsThreshold, options.maxFaces).map((i) => ({
      box: boxes[i],
      score: scores[i],
      landmarks: fivePointsFromBlazeface(points[i]),
    }));
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
