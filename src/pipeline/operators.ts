import { concatMap, from, map, type OperatorFunction } from 'rxjs';
import { ALIGNED_SIZE, alignFace, framedTemplate, type Framing } from '../align';
import { decodeImage, type DecodeOptions } from '../image/decode';
import type { MatchOptions } from '../gallery/memoryGallery';
import type { DetectOptions, Detector, Embedder } from '../models/roles';
import type { Candidate, Face, FaceFrame, Frame, Identity } from '../types';

/**
 * Every operator keeps the order of its input and works on one item at a time (`concatMap`):
 * an ONNX session runs one inference at a time anyway, and order matters for video.
 */

/** Encoded images (paths or bytes) → frames. */
export function decodeImages(options: DecodeOptions = {}): OperatorFunction<string | Buffer, Frame> {
  let seq = 0;
  return concatMap((input) => from(decodeImage(input, { seq: seq++, ...options })));
}

/** Frames → frames with their faces (box, score, landmarks). */
export function detectFaces(
  detector: Detector,
  options: DetectOptions = {},
): OperatorFunction<Frame, FaceFrame> {
  return concatMap((frame) => from(detector.detect(frame, options).then((faces) => ({ frame, faces }))));
}

/**
 * Adds the aligned crop to each face, framed as the embedder wants (`embedder.framing`; a number
 * means the ArcFace framing at that size, 112 by default).
 */
export function alignFaces(framing: Framing | number = ALIGNED_SIZE): OperatorFunction<FaceFrame, FaceFrame> {
  const f: Framing = typeof framing === 'number' ? { size: framing, zoom: 1, shiftY: 0 } : framing;
  const template = framedTemplate(f);
  return map(({ frame, faces }) => ({
    frame,
    faces: faces.map((face) => ({
      ...face,
      aligned: alignFace(frame, face.landmarks, f.size, template).aligned,
    })),
  }));
}

/** Adds the embedding to each aligned face, all faces of a frame in one batch. */
export function embedFaces(embedder: Embedder): OperatorFunction<FaceFrame, FaceFrame> {
  return concatMap((item) => {
    const aligned = item.faces.filter((f): f is Face & { aligned: Buffer } => f.aligned !== undefined);
    if (aligned.length !== item.faces.length) {
      throw new Error('embedFaces needs aligned faces: put alignFaces() before it');
    }
    if (aligned.length === 0) return from([item]);
    return from(
      embedder.embed(aligned.map((f) => f.aligned)).then((vectors) => ({
        frame: item.frame,
        faces: item.faces.map((f, i) => ({ ...f, embedding: vectors[i] })),
      })),
    );
  });
}

/** Anything that can name an embedding: `MemoryGallery`, or the persistent `Gallery`. */
export interface Matcher {
  match(query: Float32Array, options: MatchOptions & { mode?: 'best' | 'centroid' }): Identity;
  /** A calibrated threshold, used when the options give none (see `calibrateGallery`). */
  threshold?: number;
}

export interface MatchFacesOptions extends Omit<MatchOptions, 'threshold'> {
  /** Default: the gallery's calibrated threshold; one of the two must be there. */
  threshold?: number;
  /** `Gallery` only: score a person by their best embedding (default) or their centroid. */
  mode?: 'best' | 'centroid';
}

/** Adds the identity (or `Unknown`) to each embedded face. */
export function matchFaces(
  gallery: Matcher,
  options: MatchFacesOptions = {},
): OperatorFunction<FaceFrame, FaceFrame> {
  return map(({ frame, faces }) => {
    // Read per frame: a gallery re-calibrated while the stream runs takes effect at once.
    const threshold = options.threshold ?? gallery.threshold;
    if (threshold === undefined) {
      throw new Error('matchFaces needs a threshold: pass { threshold } or calibrate the gallery');
    }
    return {
      frame,
      faces: faces.map((face) => {
        if (!face.embedding) throw new Error('matchFaces needs embeddings: put embedFaces() before it');
        return { ...face, identity: gallery.match(face.embedding, { ...options, threshold }) };
      }),
    };
  });
}

export type { Candidate };
