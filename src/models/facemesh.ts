import * as ort from 'onnxruntime-node';
import { warpAffineRgb } from '../align/warp';
import type { Box, Face, Frame, Point } from '../types';
import type { ModelSession, ModelSignature } from './session';

/** Finds precise landmarks of faces a detector has boxed, replacing the detector's own. */
export interface Landmarker {
  readonly role: 'landmarker';
  readonly id: string;
  refine(frame: Frame, faces: Face[]): Promise<Face[]>;
  dispose(): Promise<void>;
}

/**
 * Mesh vertices (MediaPipe's canonical face mesh numbering) for the five alignment points: the two
 * corners of each eye (averaged into its centre), the nose tip and the mouth corners. The mesh
 * numbers the subject's right side first; which one is the image's left is decided by x.
 */
const EYE_A = [33, 133];
const EYE_B = [362, 263];
const NOSE_TIP = 1;
const MOUTH_A = 61;
const MOUTH_B = 291;

/** The crop is the detector's box grown by this much and made square, as the mesh model expects. */
const CROP_SCALE = 1.5;

function squareCrop(box: Box): { x0: number; y0: number; side: number } {
  const cx = (box[0] + box[2]) / 2;
  const cy = (box[1] + box[3]) / 2;
  const side = Math.max(box[2] - box[0], box[3] - box[1]) * CROP_SCALE;
  return { x0: cx - side / 2, y0: cy - side / 2, side };
}

/** FaceMesh (converted from @vladmandic/human): 468 landmarks of a 192×192 face crop in 0..1. */
export class FaceMeshLandmarker implements Landmarker {
  readonly role = 'landmarker' as const;
  private readonly size: number;
  private readonly inputName: string;

  constructor(
    readonly id: string,
    private readonly session: ModelSession,
    signature: ModelSignature,
    /** Faces whose mesh confidence falls below this keep the detector's landmarks. */
    private readonly minConfidence = 0.5,
  ) {
    const shape = signature.inputs[0]?.shape ?? [];
    if (typeof shape[1] !== 'number' || shape[1] !== shape[2] || shape[3] !== 3) {
      throw new Error(`${id}: expected an N×S×S×3 face mesh input, got [${shape.join(',')}]`);
    }
    this.size = shape[1];
    this.inputName = signature.inputs[0].name;
  }

  async refine(frame: Frame, faces: Face[]): Promise<Face[]> {
    if (faces.length === 0) return faces;
    const s = this.size;
    const crops = faces.map((f) => squareCrop(f.box));
    const data = new Float32Array(faces.length * s * s * 3);
    crops.forEach(({ x0, y0, side }, n) => {
      const k = s / side;
      const rgb = warpAffineRgb(frame, { m: [k, 0, -x0 * k, 0, k, -y0 * k] }, s, s);
      for (let i = 0; i < rgb.length; i++) data[n * s * s * 3 + i] = rgb[i] / 255;
    });
    const out = await this.session.run({
      [this.inputName]: new ort.Tensor('float32', data, [faces.length, s, s, 3]),
    });
    const tensors = Object.values(out) as ort.Tensor[];
    const mesh = tensors.find((t) => t.dims[t.dims.length - 1] === 468 * 3)?.data as Float32Array | undefined;
    const flag = tensors.find((t) => t.dims[t.dims.length - 1] === 1)?.data as Float32Array | undefined;
    if (!mesh || !flag) throw new Error(`${this.id}: outputs are not a 468-point mesh and a face flag`);
    return faces.map((face, n) => {
      if (!(flag[n] >= this.minConfidence)) return face;
      const { x0, y0, side } = crops[n];
      const at = (v: number): Point => {
        const o = n * 468 * 3 + v * 3;
        return [x0 + (mesh[o] * side) / s, y0 + (mesh[o + 1] * side) / s];
      };
      const mid = ([a, b]: number[]): Point => {
        const [p, q] = [at(a), at(b)];
        return [(p[0] + q[0]) / 2, (p[1] + q[1]) / 2];
      };
      const byX = (p: Point, q: Point): [Point, Point] => (p[0] <= q[0] ? [p, q] : [q, p]);
      const [leftEye, rightEye] = byX(mid(EYE_A), mid(EYE_B));
      const [leftMouth, rightMouth] = byX(at(MOUTH_A), at(MOUTH_B));
      return { ...face, landmarks: [leftEye, rightEye, at(NOSE_TIP), leftMouth, rightMouth] };
    });
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
