import * as path from 'node:path';
import { alignFace, framedTemplate } from './align';
import { resizeRgb } from './image/letterbox';
import { padFrame } from './image/pad';
import { loadModel, loadModelDir, type LoadOptions } from './models/registry';
import type { Landmarker } from './models/facemesh';
import type { Attribute } from './models/attributes';
import { loadAttribute, loadPackModel, PACKS } from './models/pack/load';
import type { DetectOptions, Detector, Embedder } from './models/roles';
import { ModelLoadError, ModelReleasedError } from './models/session';
import type { Face, Frame } from './types';

export interface FaceFlowOptions extends LoadOptions {
  /** A folder of .onnx files holding a detector and an embedder. */
  models?: string;
  /**
   * A model for one role: an .onnx file, or the id of a packaged model ('faceflow models list').
   * Each overrides the folder's or the pack's pick for its role.
   */
  detector?: string;
  embedder?: string;
  /** Landmarker refining the detector's five points (a packaged model id); 'none' for none. */
  landmarker?: string;
  /** The packaged models to use for roles not given otherwise (default: the 'default' pack). */
  pack?: string;
  /** Attribute estimators run by `analyze`: 'age-gender', 'emotion', 'antispoof', 'liveness'. */
  attributes?: string[];
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
  /** The work asked of these models and not finished yet: dispose() lets it finish first. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;

  private constructor(
    readonly detector: Detector,
    readonly embedder: Embedder,
    readonly landmarker: Landmarker | undefined,
    private readonly detectOptions: DetectOptions = {},
    readonly attributes: Attribute[] = [],
  ) {}

  /**
   * Open the models: explicit files or packaged ids first, then the folder's picks, then the pack
   * (the default pack, built from npm packages at install, when nothing else is said).
   */
  static async open(options: FaceFlowOptions = {}): Promise<FaceFlow> {
    const opened: { dispose(): Promise<void> }[] = [];
    const track = <T extends { dispose(): Promise<void> }>(m: T): T => (opened.push(m), m);
    try {
      let detector = options.detector
        ? track(await openRole(options.detector, 'detector', options))
        : undefined;
      let embedder = options.embedder
        ? track(await openRole(options.embedder, 'embedder', options))
        : undefined;
      let landmarker: Landmarker | undefined;
      if (options.models && (!detector || !embedder)) {
        const pair = await loadModelDir(options.models, options);
        if (detector) await pair.detector.dispose();
        else detector = track(pair.detector);
        if (embedder) await pair.embedder.dispose();
        else embedder = track(pair.embedder);
      }
      const packName = options.pack ?? 'default';
      const pack = PACKS[packName];
      if (!pack)
        throw new ModelLoadError(
          `unknown model pack '${packName}' (known: ${Object.keys(PACKS).join(', ')})`,
        );
      if (!detector) {
        detector = track(await openRole(pack.detector, 'detector', options));
        // The pack's landmarker belongs with the pack's detector.
        if (pack.landmarker && options.landmarker === undefined) {
          landmarker = track(await openRole(pack.landmarker, 'landmarker', options));
        }
      }
      if (options.landmarker && options.landmarker !== 'none') {
        landmarker = track(await openRole(options.landmarker, 'landmarker', options));
      }
      if (!embedder) embedder = track(await openRole(pack.embedder, 'embedder', options));
      const attributes: Attribute[] = [];
      for (const name of options.attributes ?? []) attributes.push(track(await loadAttribute(name, options)));
      return new FaceFlow(detector, embedder, landmarker, options.detect, attributes);
    } catch (err) {
      await Promise.all(opened.map((m) => m.dispose()));
      throw err;
    }
  }

  get threshold(): number {
    return this.embedder.defaultThreshold;
  }

  detect(frame: Frame, options?: DetectOptions): Promise<Face[]> {
    return this.track(() => this.detectNow(frame, options));
  }

  /** Detect, align and embed every face in a frame, and estimate the chosen attributes. */
  analyze(frame: Frame, options?: DetectOptions): Promise<Face[]> {
    return this.track(async () => {
      const faces = await this.embedNow(frame, await this.detectNow(frame, options));
      return this.attributesNow(frame, faces);
    });
  }

  /** Merge every attribute estimator's results into `face.attributes`. */
  estimateAttributes(frame: Frame, faces: Face[]): Promise<Face[]> {
    return this.track(() => this.attributesNow(frame, faces));
  }

  embedFaces(frame: Frame, faces: Face[]): Promise<Face[]> {
    return this.track(() => this.embedNow(frame, faces));
  }

  /**
   * Faces of a photo that should show one person, such as an enrolment photo. Tight face crops
   * defeat detectors trained on whole scenes, so when nothing is found the photo is tried again
   * inside a black border half its size.
   */
  analyzePortrait(frame: Frame): Promise<Face[]> {
    return this.track(() => this.portraitNow(frame));
  }

  /** The one face of a portrait; with several, the largest when it clearly dominates. */
  singleFace(frame: Frame, label: string): Promise<Face> {
    return this.track(async () => {
      const faces = await this.portraitNow(frame);
      if (faces.length === 0) throw new NoSingleFaceError(`${label}: no face found`, 0);
      if (faces.length === 1) return faces[0];
      const area = (f: Face) => (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);
      const sorted = [...faces].sort((a, b) => area(b) - area(a));
      // A bystander far smaller than the subject is harmless; two similar faces are ambiguous.
      if (area(sorted[1]) * 4 <= area(sorted[0])) return sorted[0];
      throw new NoSingleFaceError(`${label}: ${faces.length} faces found, expected one`, faces.length);
    });
  }

  /**
   * Lets the work already asked of these models finish, then releases them; work asked afterwards is
   * refused with {@link ModelReleasedError}. A redeploy in Node-RED closes the models while frames and
   * enrolments are still under way: those complete rather than fail half-way.
   */
  dispose(): Promise<void> {
    this.closing ??= Promise.allSettled([...this.inFlight]).then(async () => {
      await Promise.all([
        this.detector.dispose(),
        this.embedder.dispose(),
        this.landmarker?.dispose(),
        ...this.attributes.map((a) => a.dispose()),
      ]);
    });
    return this.closing;
  }

  private track<T>(work: () => Promise<T>): Promise<T> {
    if (this.closing)
      return Promise.reject(new ModelReleasedError(`the models ${this.detector.id} + ${this.embedder.id}`));
    const running = work();
    this.inFlight.add(running);
    const forget = () => this.inFlight.delete(running);
    running.then(forget, forget);
    return running;
  }

  private async detectNow(frame: Frame, options?: DetectOptions): Promise<Face[]> {
    const faces = await this.detector.detect(frame, { ...this.detectOptions, ...options });
    return this.landmarker ? this.landmarker.refine(frame, faces) : faces;
  }

  private async attributesNow(frame: Frame, faces: Face[]): Promise<Face[]> {
    for (const attribute of this.attributes) {
      const results = await attribute.analyze(frame, faces);
      faces.forEach((f, i) => (f.attributes = { ...f.attributes, ...results[i] }));
    }
    return faces;
  }

  private async embedNow(frame: Frame, faces: Face[]): Promise<Face[]> {
    if (faces.length === 0) return faces;
    const template = framedTemplate(this.embedder.framing);
    for (const face of faces)
      face.aligned ??= alignFace(frame, face.landmarks, this.embedder.inputSize, template).aligned;
    const vectors = await this.embedder.embed(faces.map((f) => f.aligned as Buffer));
    faces.forEach((f, i) => (f.embedding = vectors[i]));
    return faces;
  }

  private async portraitNow(frame: Frame): Promise<Face[]> {
    let faces = await this.detectNow(frame);
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
      faces = (await this.detectNow(padFrame(small, border))).map((f) => ({
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
    return this.embedNow(frame, faces);
  }
}

type Role = 'detector' | 'embedder' | 'landmarker';
type RoleModel<R extends Role> = R extends 'detector'
  ? Detector
  : R extends 'embedder'
    ? Embedder
    : Landmarker;

/** A model for a role from a file path or a packaged model id, checked to play that role. */
async function openRole<R extends Role>(ref: string, role: R, options: LoadOptions): Promise<RoleModel<R>> {
  const isFile = ref.toLowerCase().endsWith('.onnx') || ref.includes('/') || ref.includes(path.sep);
  const model = isFile ? (await loadModel(ref, options)).model : await loadPackModel(ref, options);
  if (model.role !== role) {
    await model.dispose();
    throw new ModelLoadError(
      `${ref}: is a${model.role === 'embedder' ? 'n' : ''} ${model.role}, not a${role === 'embedder' ? 'n' : ''} ${role}`,
    );
  }
  return model as RoleModel<R>;
}
