import * as ort from 'onnxruntime-node';
import { letterbox, type Normalization } from '../image/letterbox';
import type { Box, Face, Frame, Point } from '../types';
import { nonMaxSuppression } from './nms';
import type { DetectOptions, Detector } from './roles';
import type { ModelSession, ModelSignature } from './session';
import { TensorPool } from './tensorPool';

// BlazeFace takes RGB scaled to [-1, 1], NHWC.
const BLAZEFACE_NORM: Normalization = { mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] };
/** Input tensors kept for reuse per detector: enough for the runs of a few cameras in flight together. */
const SPARE_INPUTS = 4;
/** Columns of a prediction row: logit, box centre offset (x, y), box size (w, h), 6 keypoints (x, y). */
const ROW = 17;

/**
 * Anchor centres in input pixels: a 16-px grid with 2 anchors per cell, then a 32-px grid with 6,
 * each anchor at its cell's centre (896 anchors for a 256 input).
 */
export function blazefaceAnchors(size: number): Point[] {
  const anchors: Point[] = [];
  for (const [stride, perCell] of [
    [size / 16, 2],
    [size / 8, 6],
  ]) {
    const cells = Math.ceil(size / stride);
    for (let gy = 0; gy < cells; gy++) {
      for (let gx = 0; gx < cells; gx++) {
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

/** MediaPipe BlazeFace (converted from the TFJS model in @vladmandic/human): square input, 896 anchors. */
export class BlazeFaceDetector implements Detector {
  readonly role = 'detector' as const;
  readonly inputBox: { width: number; height: number };
  private readonly layout: 'nchw' | 'nhwc';
  private readonly anchors: Point[];
  private readonly inputName: string;
  private readonly spareInputs = new TensorPool(SPARE_INPUTS, Infinity);

  constructor(
    readonly id: string,
    private readonly session: ModelSession,
    signature: ModelSignature,
  ) {
    const shape = signature.inputs[0]?.shape ?? [];
    // NHWC as TF had it, or NCHW where the build took the transpose out of the graph (`nchwInput`).
    const nchw = shape[1] === 3 && typeof shape[2] === 'number' && shape[3] === shape[2];
    const size = nchw ? shape[2] : shape[1];
    if (typeof size !== 'number' || (!nchw && (shape[2] !== size || shape[3] !== 3))) {
      throw new Error(`${id}: expected an N×S×S×3 or N×3×S×S BlazeFace input, got [${shape.join(',')}]`);
    }
    this.inputBox = { width: size, height: size };
    this.layout = nchw ? 'nchw' : 'nhwc';
    this.anchors = blazefaceAnchors(size);
    this.inputName = signature.inputs[0].name;
  }

  async detect(frame: Frame, options: DetectOptions = {}): Promise<Face[]> {
    // 0.6, not 0.5: on the shared photos every real face scored ≥ 0.63, while beside a face filling
    // much of the frame BlazeFace also reports ghost faces at 0.52-0.55.
    const scoreThreshold = options.scoreThreshold ?? 0.6;
    const nmsThreshold = options.nmsThreshold ?? 0.3;
    const s = this.inputBox.width;
    const lb = await letterbox(frame, s, s, BLAZEFACE_NORM, this.layout, this.spareInputs.take(s * s * 3));
    let result: ort.InferenceSession.ReturnType;
    try {
      result = await this.session.run({
        [this.inputName]: new ort.Tensor(
          'float32',
          lb.data,
          this.layout === 'nchw' ? [1, 3, s, s] : [1, s, s, 3],
        ),
      });
    } finally {
      // ONNX Runtime is done with the input once run settles: the next frame reuses it.
      this.spareInputs.give(lb.data);
    }
    const raw = joinPredictions(Object.values(result) as ort.Tensor[], this.id);
    const n = raw.length / ROW;
    if (n !== this.anchors.length)
      throw new Error(`${this.id}: ${n} predictions for ${this.anchors.length} anchors`);
    // The score is a logit: compare in logit space, no sigmoid for the rejected majority.
    const minLogit = Math.log(scoreThreshold / (1 - scoreThreshold));
    const boxes: Box[] = [];
    const scores: number[] = [];
    const points: Point[][] = [];
    const toSource = (x: number, y: number): Point => [x / lb.scaleX, y / lb.scaleY];
    for (let i = 0; i < n; i++) {
      const r = i * ROW;
      if (!(raw[r] >= minLogit)) continue;
      const [ax, ay] = this.anchors[i];
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
