import type { Framing } from '../align/template';
import type { Face, Frame } from '../types';

export interface SessionOptions {
  /**
   * Threads ONNX Runtime may use inside one operator; default: the model's own (one for BlazeFace, whose
   * operators are too small to share out), else ONNX Runtime's choice (one per core).
   */
  threads?: number;
  /**
   * Where the model runs: `main` (default), on the calling thread, as ONNX Runtime does by itself (it blocks
   * the event loop while it computes); `worker`, on the one inference thread of the process, which keeps the
   * event loop free at some CPU cost (bench/RESULTS.md). Default from the environment variable
   * `FACEFLOW_INFERENCE` (`main` or `worker`) when set.
   */
  inferenceThread?: 'worker' | 'main';
}

export interface DetectOptions {
  /** Minimum face score in [0, 1]. */
  scoreThreshold?: number;
  /** IoU above which the weaker of two overlapping boxes is suppressed. */
  nmsThreshold?: number;
  /** Keep at most this many faces, largest score first. */
  maxFaces?: number;
}

/** Finds faces: boxes, scores and 5 landmarks in source-image pixels. */
export interface Detector {
  readonly role: 'detector';
  readonly id: string;
  /**
   * The box frames are letterboxed into before detection (the largest, for a model that takes each frame's
   * own aspect). A camera given it as `detectorInput` delivers each frame's detector picture at exactly the
   * size the letterbox needs.
   */
  readonly inputBox?: { width: number; height: number };
  detect(frame: Frame, options?: DetectOptions): Promise<Face[]>;
  dispose(): Promise<void>;
}

/** Turns aligned square RGB crops (`framing`) into L2-normalised embeddings. */
export interface Embedder {
  readonly role: 'embedder';
  readonly id: string;
  readonly dimension: number;
  /** Side of the square aligned crop the model expects (112 for ArcFace-style models). */
  readonly inputSize: number;
  /** How the crop is framed around the face (ArcFace framing: zoom 1, shiftY 0). */
  readonly framing: Framing;
  /** Cosine similarity at or above which two faces are taken to be the same person. */
  readonly defaultThreshold: number;
  embed(crops: Buffer[]): Promise<Float32Array[]>;
  dispose(): Promise<void>;
}

export type FaceModel = Detector | Embedder;
