import { concatMap, type OperatorFunction } from 'rxjs';

import type { FaceFlow } from '../faceflow';
import { FaceTracking, type FaceTrackingOptions } from '../tracking/operators';
import { StrangerMemory } from '../gallery/strangers';
import type { Face, FaceFrame, Frame } from '../types';
import { tellStranger, TrackStrangers } from './identify';
import { StillSceneGate, type StillSceneOptions } from './stillScene';
import { matchThreshold, type Matcher, type MatchFacesOptions } from './operators';
import { similarityScaleOf } from '../models/similarityScale';

export interface LiveRecognitionOptions extends MatchFacesOptions {
  /**
   * Detect on every Nth frame of a camera (default 1: every frame). In between, the faces of the
   * last detection are carried over with their tracks' current identities, and the tracker predicts
   * across the gap on the next detection. 2 halves the detector's cost for a little lag on fast
   * motion.
   */
  detectEvery?: number;
  /**
   * Detector score threshold (default 0.3): lower than for photos on purpose, because ByteTrack
   * uses the low-score detections to keep tracks through blur and partial occlusion; new tracks
   * still need a high score (`tracking.newTrackThreshold`).
   */
  scoreThreshold?: number;
  tracking?: FaceTrackingOptions | FaceTracking;
  /**
   * Whether a face is good enough to embed (e.g. a quality gate). A refused face keeps its track and
   * the track's identity; it just does not vote. Default: every tracked face.
   */
  accept?: (face: Face, frame: Frame) => boolean;
  /**
   * Tells strangers apart (Identity.stranger) so that one stranger walking past again is one event;
   * default: a memory of the last 10 minutes. `false` turns it off.
   */
  strangers?: StrangerMemory | false;
  /**
   * Skips the detector on still frames of an empty scene: while the last detection found no face and
   * the picture has not changed since, for at most `maxIdleMs` (see `StillSceneGate`). Default: on,
   * with the gate's defaults; `false` detects on every (Nth) frame.
   */
  stillScenes?: StillSceneOptions | StillSceneGate | false;
}

/**
 * The live recognition chain for video: frames → detect (every Nth frame) → track → embed only the
 * tracks that need it (new, every few frames, or a clearly better view) → match → identity by vote
 * over each track's matches. Faces of tentative tracks (the first frames of a face) carry no
 * `trackId` and no identity yet; `faceEvents()` after this operator announces people.
 */
export function recognizeFrames(
  flow: FaceFlow,
  gallery: Matcher,
  options: LiveRecognitionOptions = {},
): OperatorFunction<Frame, FaceFrame> {
  const detectEvery = options.detectEvery ?? 1;
  if (!Number.isInteger(detectEvery) || detectEvery < 1) {
    throw new Error(`recognizeFrames: detectEvery must be a whole number ≥ 1, got ${detectEvery}`);
  }
  const tracking =
    options.tracking instanceof FaceTracking ? options.tracking : new FaceTracking(options.tracking);
  tracking.useScale(similarityScaleOf(flow.embedder.id));
  const scoreThreshold = options.scoreThreshold ?? 0.3;
  const accept = options.accept;
  const matchOptions: MatchFacesOptions = {
    topK: options.topK,
    ambiguityMargin: options.ambiguityMargin,
    mode: options.mode,
    threshold: options.threshold,
  };
  const cameras = new Map<string, { count: number; faces: Face[] }>();
  const strangers = options.strangers === false ? undefined : (options.strangers ?? new StrangerMemory());
  const still =
    options.stillScenes === false
      ? undefined
      : options.stillScenes instanceof StillSceneGate
        ? options.stillScenes
        : new StillSceneGate(options.stillScenes);
  const strangerOfTrack = new TrackStrangers();

  const withIdentities = (faces: Face[]): Face[] =>
    faces.map((f) => {
      const identity = f.trackId === undefined ? undefined : strangerOfTrack.identityOf(tracking, f.trackId);
      return identity ? { ...f, identity } : f;
    });

  return concatMap(async (frame: Frame): Promise<FaceFrame> => {
    const camera = cameras.get(frame.cameraId) ?? { count: 0, faces: [] };
    cameras.set(frame.cameraId, camera);
    const detectNow = camera.count % detectEvery === 0;
    camera.count++;
    if (!detectNow) return { frame, faces: withIdentities(camera.faces) };

    const threshold = matchThreshold(matchOptions, gallery, 'recognizeFrames');
    // The same pixels as the last detection, which found nobody: the detector would find nobody again.
    if (still && !still.needsDetection(frame)) return { frame, faces: [] };
    const detected = await flow.detect(frame, { scoreThreshold });
    still?.detected(frame, detected.length);
    const { faces } = tracking.trackFrame(frame, detected);
    const chosen = faces.filter(
      (f) =>
        f.trackId !== undefined &&
        (accept ? accept(f, frame) : true) &&
        tracking.needsEmbedding(f.trackId, f, frame),
    );
    if (chosen.length > 0) {
      await flow.embedFaces(frame, chosen);
      for (const f of chosen) {
        const identity = gallery.match(f.embedding as Float32Array, { ...matchOptions, threshold });
        tracking.vote(f.trackId as number, identity, f.embedding, threshold);
        if (strangers) {
          tellStranger(strangers, identity, f.embedding as Float32Array, threshold, frame.ts);
          if (identity.stranger !== undefined) strangerOfTrack.set(f.trackId as number, identity.stranger);
        }
      }
    }
    camera.faces = faces;
    return { frame, faces: withIdentities(faces) };
  });
}
