import { concatMap, from, map, type OperatorFunction } from 'rxjs';
import { ALIGNED_SIZE, alignFace, framedTemplate, type Framing } from '../align';
import { decodeImage, type DecodeOptions } from '../image/decode';
import { matchThreshold, type Matcher, type MatchFacesOptions } from '../gallery/matcher';
import type { DetectOptions, Detector, Embedder } from '../models/roles';
import { DEFAULT_MIN_FACE_SIZE, DEFAULT_MIN_SHARPNESS } from '../gallery/enroll';
import { faceThumbnail } from '../gallery/thumbnail';
import type { UnknownPool } from '../gallery/unknownPool';
import { cosine } from '../models/embedder';
import { faceSharpness } from '../quality/sharpness';
import { failedQualityGate } from '../quality/rejected';
import { UNKNOWN, type Candidate, type Face, type FaceFrame, type Frame } from '../types';
import { FACERES_SCALE, similarityScaleOf } from '../models/similarityScale';

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

// Where the live chain and the tracker both need them, below both (see src/gallery/matcher.ts).
export { matchThreshold, type Matcher, type MatchFacesOptions };

/** Adds the identity (or `Unknown`) to each embedded face; faces the quality gate turned down get none. */
export function matchFaces(
  gallery: Matcher,
  options: MatchFacesOptions = {},
): OperatorFunction<FaceFrame, FaceFrame> {
  return map(({ frame, faces }) => {
    const threshold = matchThreshold(options, gallery, 'matchFaces');
    return {
      frame,
      faces: faces.map((face) => {
        if (failedQualityGate(face)) return face;
        if (!face.embedding) throw new Error('matchFaces needs embeddings: put embedFaces() before it');
        return { ...face, identity: gallery.match(face.embedding, { ...options, threshold }) };
      }),
    };
  });
}

export type { Candidate };

export interface CollectUnknownsOptions {
  /** Smallest face kept, shorter side of the box in pixels (default: enrolment's, 48). */
  minFaceSize?: number;
  /** Least sharpness kept (default: enrolment's, 30; see quality/sharpness.ts). */
  minSharpness?: number;
  /**
   * A face this similar (cosine) to one of the last `recent` faces kept is not kept again: a person
   * standing in front of a camera would otherwise fill the pool with the same face every frame.
   * Default: the gallery model's (`SimilarityScale.dedupeSimilarity`). FaceRes: 0.8, above what two
   * different people reach (impostor similarities stay under about 0.62 on the test photos) and
   * below consecutive frames of one; face-api's ResNet: 0.96 (its impostors reach 0.94).
   */
  dedupeSimilarity?: number;
  recent?: number;
  /** Also keep a JPEG thumbnail per face (default true). */
  thumbnails?: boolean;
}

/**
 * Keeps the faces that `matchFaces` left `Unknown` in `gallery.unknowns`, with a thumbnail, so they
 * can be clustered and named later (`recluster`, `nameCluster`). Small, blurred and repeated faces
 * are left out. Frames pass through unchanged; saving the gallery is the caller's (e.g. on an
 * interval), since writing a file per frame would cost more than the recognition.
 */
export function collectUnknowns(
  gallery: { unknowns: UnknownPool; modelId?: string },
  options: CollectUnknownsOptions = {},
): OperatorFunction<FaceFrame, FaceFrame> {
  const minFaceSize = options.minFaceSize ?? DEFAULT_MIN_FACE_SIZE;
  const minSharpness = options.minSharpness ?? DEFAULT_MIN_SHARPNESS;
  const scale = gallery.modelId ? similarityScaleOf(gallery.modelId) : FACERES_SCALE;
  const dedupe = options.dedupeSimilarity ?? scale.dedupeSimilarity;
  const recentMax = Math.max(1, options.recent ?? 100);
  const recent: Float32Array[] = [];
  return concatMap(async (item) => {
    for (const face of item.faces) {
      if (!face.embedding || !face.identity || face.identity.name !== UNKNOWN || failedQualityGate(face))
        continue;
      const size = Math.min(face.box[2] - face.box[0], face.box[3] - face.box[1]);
      if (size < minFaceSize) continue;
      if (recent.some((r) => cosine(r, face.embedding as Float32Array) >= dedupe)) continue;
      if (faceSharpness(item.frame, face.landmarks) < minSharpness) continue;
      const thumbnail =
        options.thumbnails === false ? undefined : await faceThumbnail(item.frame, face.landmarks);
      gallery.unknowns.add(face.embedding, {
        thumbnail,
        source: item.frame.cameraId || undefined,
        seenAt: new Date(item.frame.ts || Date.now()),
      });
      recent.push(face.embedding);
      if (recent.length > recentMax) recent.shift();
    }
    return item;
  });
}
