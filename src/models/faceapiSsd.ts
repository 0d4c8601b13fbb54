import * as ort from 'onnxruntime-node';
import { letterbox } from '../image/letterbox';
import type { Face, Frame, Point } from '../types';
import { decodeSsdOutputs, FACE_API_SSD_SIZE } from './faceapi/ssdMobilenet';
import type { DetectOptions, Detector } from './roles';
import type { ModelSession } from './session';

/**
 * face-api's SSD-MobileNetV1 face detector. It finds boxes only: the five landmarks it reports are
 * estimated from the box (where eyes, nose and mouth sit in an average upright face), so pair it
 * with a landmarker before aligning.
 */
export class FaceApiSsdDetector implements Detector {
  readonly role = 'detector' as const;
  readonly inputBox = { width: FACE_API_SSD_SIZE, height: FACE_API_SSD_SIZE };

  constructor(
    readonly id: string,
    private readonly session: ModelSession,
  ) {}

  async detect(frame: Frame, options: DetectOptions = {}): Promise<Face[]> {
    const s = FACE_API_SSD_SIZE;
    // The graph scales 0..255 to [-1, 1] itself.
    const lb = await letterbox(frame, s, s, { mean: [0, 0, 0], std: [1, 1, 1] });
    const out = await this.session.run({ input: new ort.Tensor('float32', lb.data, [1, 3, s, s]) });
    const detections = decodeSsdOutputs(
      {
        boxEncodings: out.box_encodings.data as Float32Array,
        classLogits: out.class_logits.data as Float32Array,
        anchors: out.anchors.data as Float32Array,
      },
      { sourceWidth: frame.width, sourceHeight: frame.height, scaleX: lb.scaleX, scaleY: lb.scaleY },
      {
        minConfidence: options.scoreThreshold ?? 0.5,
        iouThreshold: options.nmsThreshold ?? 0.5,
        maxResults: options.maxFaces,
      },
    );
    return detections.map((d) => ({ box: d.box, score: d.score, landmarks: landmarksFromBox(d.box) }));
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/** The ArcFace template's points placed in a box, as a first guess for a landmarker to refine. */
export function landmarksFromBox([x1, y1, x2, y2]: [number, number, number, number]): Point[] {
  const w = x2 - x1;
  const h = y2 - y1;
  const rel: Point[] = [
    [0.34, 0.46],
    [0.66, 0.46],
    [0.5, 0.64],
    [0.37, 0.82],
    [0.63, 0.82],
  ];
  return rel.map(([u, v]): Point => [x1 + u * w, y1 + v * h]);
}
