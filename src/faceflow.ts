import { alignFace, framedTemplate } from './align';
import { resizeRgb } from './image/letterbox';
import { padFrame } from './image/pad';
import { loadModel, loadModelDir, type LoadOptions } from './models/registry';
import type { DetectOptions, Detector, Embedder } from './models/roles';
import { ModelLoadError } from './models/session';
import type { Face, Frame } from './types';

export interface FaceFlowOptions extends LoadOptions {
  /** A folder of .onnx files holding a detector and an embedder. */
  models?: string;
  /** Explicit model files; each overrides the folder's pick for its role. */
  detector?: string;
  embedder?: string;
  detect?: DetectOptions;
}

/** Long side of a portrait retried inside a border: 320 px plus the border fills SCRFD's 640 input. */
const PORTRAIT_RETRY_SIDE = 320;

/** Why a photo could not give exactly one usable face for enrolment or verification. */
export class NoSingleFaceError extends Error {
  constructor(
    message: string,
    readonly faceCount: number,
  ) {
    super(message);
    this.name = 'NoSingleFaceError';
  }
}

/**
 * A detector and an embedder working together: the convenient entry point for scripts and the
 * CLI. The RxJS operators in `pipeline/` do the same work stage by stage.
 */
export class FaceFlow {
  private constructor(
    readonly detector: Detector,
    readonly embedder: Embedder,
    private readonly detectOptions: DetectOptions = {},
  ) {}

  static async open(options: FaceFlowOptions): Promise<FaceFlow> {
    let detector: Detector | undefined;
    let embedder: Embedder | undefined;
    if (options.models && (!options.detector || !options.embedder)) {
      const pair = await loadModelDir(options.models, options);
      detector = pair.detector;
      embedder = pair.embedder;
    }
    if (options.detector) {
      await detector?.dispose();
      const m = (await loadModel(options.detector, options)).model;
      if (m.role !== 'detector')
        throw new ModelLoadError(`${options.detector}: is an embedder, not a detector`);
      detector = m;
    }
    if (options.embedder) {
      await embedder?.dispose();
      const m = (await loadModel(options.embedder, options)).model;
      if (m.role !== 'embedder')
        throw new ModelLoadError(`${options.embedder}: is a detector, not an embedder`);
      embedder = m;
    }
    if (!detector || !embedder) {
      throw new ModelLoadError(
        'no face models given: pass a model folder (--models DIR or FACEFLOW_MODELS) or both a detector and an embedder',
      );
    }
    return new FaceFlow(detector, embedder, options.detect);
  }

  get threshold(): number {
    return this.embedder.defaultThreshold;
  }

  detect(frame: Frame, options?: DetectOptions): Promise<Face[]> {
    return this.detector.detect(frame, { ...this.detectOptions, ...options });
  }

  /** Detect, align and embed every face in a frame. */
  async analyze(frame: Frame, options?: DetectOptions): Promise<Face[]> {
    return this.embedFaces(frame, await this.detect(frame, options));
  }

  async embedFaces(frame: Frame, faces: Face[]): Promise<Face[]> {
    if (faces.length === 0) return faces;
    const template = framedTemplate(this.embedder.framing);
    for (const face of faces)
      face.aligned ??= alignFace(frame, face.landmarks, this.embedder.inputSize, template).aligned;
    const vectors = await this.embedder.embed(faces.map((f) => f.aligned as Buffer));
    faces.forEach((f, i) => (f.embedding = vectors[i]));
    return faces;
  }

  /**
   * Faces of a photo that should show one person, such as an enrolment photo. Tight face crops
   * defeat detectors trained on whole scenes, so when nothing is found the photo is tried again
   * inside a black border half its size.
   */
  async analyzePortrait(frame: Frame): Promise<Face[]> {
    let faces = await this.detect(frame);
    if (faces.length === 0) {
      // Shrink first so the bordered copy stays small whatever the photo's size: the face fills the
      // photo, so it keeps plenty of pixels for the landmarks.
      const scale = Math.min(1, PORTRAIT_RETRY_SIDE / Math.max(frame.width, frame.height));
      const w = Math.max(1, Math.round(frame.width * scale));
      const h = Math.max(1, Math.round(frame.height * scale));
      const small = scale < 1 ? { ...frame, width: w, height: h, rgb: await resizeRgb(frame, w, h) } : frame;
      const border = Math.round(Math.max(w, h) / 2);
      const sx = frame.width / w;
      const sy = frame.height / h;
      faces = (await this.detect(padFrame(small, border))).map((f) => ({
        ...f,
        box: [
          (f.box[0] - border) * sx,
          (f.box[1] - border) * sy,
          (f.box[2] - border) * sx,
          (f.box[3] - border) * sy,
        ],
        landmarks: f.landmarks.map(([x, y]) => [(x - border) * sx, (y - border) * sy]),
      }));
    }
    // Align on the original frame: pixels beyond its edge come out black either way.
    return this.embedFaces(frame, faces);
  }

  /** The one face of a portrait; with several, the largest when it clearly dominates. */
  async singleFace(frame: Frame, label: string): Promise<Face> {
    const faces = await this.analyzePortrait(frame);
    if (faces.length === 0) throw new NoSingleFaceError(`${label}: no face found`, 0);
    if (faces.length === 1) return faces[0];
    const area = (f: Face) => (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);
    const sorted = [...faces].sort((a, b) => area(b) - area(a));
    // A bystander far smaller than the subject is harmless; two similar faces are ambiguous.
    if (area(sorted[1]) * 4 <= area(sorted[0])) return sorted[0];
    throw new NoSingleFaceError(`${label}: ${faces.length} faces found, expected one`, faces.length);
  }

  async dispose(): Promise<void> {
    await Promise.all([this.detector.dispose(), this.embedder.dispose()]);
  }
}
