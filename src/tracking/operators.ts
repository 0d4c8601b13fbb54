/**
 * Tracking in the RxJS pipeline: ids for faces across frames, and identities decided per track.
 *
 * ```ts
 * const tracking = new FaceTracking();               // one per pipeline; a ByteTracker per camera inside
 * frames.pipe(
 *   detectFaces(detector, { scoreThreshold: 0.3 }),  // let low scores through: ByteTrack uses them
 *   trackFaces(tracking),                            // face.trackId on faces of confirmed tracks
 *   embedTrackedFaces(tracking, embedder),           // aligns + embeds only faces whose track needs it
 *   matchTrackedFaces(tracking, gallery, { threshold }), // match, vote, every face of a track gets its vote
 *   faceEvents(),
 * );
 * ```
 *
 * Why this split: detection must run on every frame, but a track's face changes little from one
 * frame to the next, so embedding and matching it every frame costs the most and adds the least.
 * A pipeline with its own stages can use the same pieces by hand: after `trackFaces`, ask
 * `tracking.needsEmbedding(face.trackId, face, frame)`, embed those faces, match them, and pass each
 * match to `tracking.vote(face.trackId, identity, embedding, threshold)`; set `tracking.identity(id)?.identity`
 * on the track's other faces.
 *
 * Faces without a `trackId` (tentative tracks: the first `minHits − 1` frames of a face, or a
 * detection too doubtful to start one) are neither embedded nor named by these operators.
 *
 * A person who comes back within `reidWindowMs` of losing their track (looked away, walked behind
 * someone) gets a new track id, but the new track inherits the old one's votes as soon as an
 * embedding shows it is the same face, and the old track is ended so it cannot take the face back.
 *
 * Track ids are unique across the cameras of one `FaceTracking`. Frames are counted per camera from
 * `frame.seq`: a gap in `seq` (frames dropped upstream) predicts the tracks across it.
 *
 * When the detector's faces already carry embeddings (a pipeline that embeds every face before
 * tracking), `fuseEmbedding` lets the tracker use them to keep crossing faces apart.
 */

import { concatMap, from, map, type OperatorFunction } from 'rxjs';
import { alignFace, framedTemplate } from '../align';
import type { Embedder } from '../models/roles';
import { matchThreshold, type Matcher, type MatchFacesOptions } from '../gallery/matcher';
import type { Face, FaceFrame, Frame, Identity } from '../types';
import { failedQualityGate } from '../quality/rejected';
import {
  ByteTracker,
  idSource,
  trackIdsByDetection,
  type ByteTrackerOptions,
  type TrackState,
} from './byteTracker';
import { faceLook, lookChanged, type FaceLook, type LookChangeThresholds } from './faceLook';
import { faceQuality, TrackIdentities, type TrackIdentity, type TrackIdentityOptions } from './trackIdentity';
import { similarityScaleOf, type SimilarityScale } from '../models/similarityScale';

export interface FaceTrackingOptions extends Omit<ByteTrackerOptions, 'nextId'>, TrackIdentityOptions {
  /**
   * Compare each tracked face's look (colour and brightness layout, see faceLook.ts) with its previous
   * detection's, and embed at once when it changed: a box passed to another face (default: on, with
   * faceLook's thresholds). `false` leaves only the pace to notice.
   */
  lookCheck?: boolean | LookChangeThresholds;
}

/** Looks kept at most (tracks of cameras that went away are never reported removed). */
const MAX_LOOKS = 10_000;

interface CameraClock {
  frame: number;
  seq: number;
}

export class FaceTracking {
  readonly identities: TrackIdentities;
  private readonly trackers = new Map<string, ByteTracker>();
  private readonly clocks = new Map<string, CameraClock>();
  /** The frame index each frame was tracked at, for the stages after `trackFaces`, which may lag behind it. */
  private readonly frameIndex = new WeakMap<Frame, number>();
  private readonly nextId = idSource();
  private readonly trackBuffer: number;
  /** Each track's look at its last detection that was asked about; undefined thresholds: no check. */
  private readonly looks = new Map<number, FaceLook>();
  private readonly lookThresholds: LookChangeThresholds | undefined;

  constructor(private readonly options: FaceTrackingOptions = {}) {
    // Built once here so that bad options fail at construction, not on the first frame.
    this.trackBuffer = new ByteTracker(options).trackBuffer;
    this.identities = new TrackIdentities(options);
    const check = options.lookCheck ?? true;
    this.lookThresholds = check === false ? undefined : check === true ? {} : check;
  }

  /** Adopt the similarity values of the embedder whose embeddings are voted (see `TrackIdentities.useScale`). */
  useScale(
    scale: Pick<SimilarityScale, 'reidSimilarity' | 'changeSimilarity'> &
      Partial<Pick<SimilarityScale, 'ambiguityMargin'>>,
  ): void {
    this.identities.useScale(scale);
  }

  /** The camera's tracker (created on first use). */
  tracker(cameraId: string): ByteTracker {
    let t = this.trackers.get(cameraId);
    if (!t) {
      t = new ByteTracker({ ...this.options, nextId: this.nextId });
      this.trackers.set(cameraId, t);
    }
    return t;
  }

  /**
   * Tracks one frame's faces: returns new face objects, with `trackId` for faces of confirmed tracks
   * and `tentative: true` for the others, and the tracker's states.
   */
  trackFrame(frame: Frame, faces: readonly Face[]): { faces: Face[]; tracks: TrackState[] } {
    const index = this.advance(frame);
    const tracks = this.tracker(frame.cameraId).update(
      faces.map((f, i) => ({ box: f.box, score: f.score, embedding: f.embedding, index: i })),
      index,
    );
    this.identities.observe(tracks, { ts: frame.ts, frame: index, group: frame.cameraId });
    for (const t of tracks) if (t.status === 'removed' && t.id !== undefined) this.looks.delete(t.id);
    this.frameIndex.set(frame, index);
    const ids = trackIdsByDetection(tracks);
    return {
      faces: faces.map((f, i) => {
        const id = ids.get(i);
        return id === undefined ? { ...f, tentative: true } : { ...f, trackId: id };
      }),
      tracks,
    };
  }

  /**
   * Whether to embed this face now (see `TrackIdentities.needsEmbedding`); false for a face
   * without a track. Pass the face's frame: the stage may run behind `trackFaces`, and the face's
   * look is read from it (without the frame, only the pace decides).
   */
  needsEmbedding(trackId: number | undefined, face: Face, frame?: Frame): boolean {
    if (trackId === undefined) return false;
    const index = frame === undefined ? undefined : this.frameIndex.get(frame);
    return this.identities.needsEmbedding(
      trackId,
      faceQuality(face),
      index,
      this.lookChanged(trackId, face, frame),
    );
  }

  /** Whether the face in the track's box looks like another than at its last check; remembers this look. */
  private lookChanged(trackId: number, face: Face, frame: Frame | undefined): boolean {
    if (!this.lookThresholds || !frame) return false;
    const look = faceLook(frame, face.box);
    if (!look) return false;
    const before = this.looks.get(trackId);
    this.looks.delete(trackId);
    this.looks.set(trackId, look);
    if (this.looks.size > MAX_LOOKS) this.looks.delete(this.looks.keys().next().value as number);
    return before !== undefined && lookChanged(before, look, this.lookThresholds);
  }

  /**
   * Adds a frame's match to the track's vote; returns the track's identity. When the track turns out
   * to continue a lost one, that lost track is ended, so that it cannot claim the person's face again.
   */
  vote(trackId: number, identity: Identity, embedding?: Float32Array, threshold?: number): TrackIdentity {
    const result = this.identities.vote(trackId, identity, embedding, threshold);
    if (result.reidentifiedFrom !== undefined) {
      for (const t of this.trackers.values()) if (t.remove(result.reidentifiedFrom)) break;
    }
    return result;
  }

  identity(trackId: number): TrackIdentity | undefined {
    return this.identities.get(trackId);
  }

  private advance(frame: Frame): number {
    const clock = this.clocks.get(frame.cameraId);
    let index = 0;
    if (clock) {
      const gap = frame.seq - clock.seq;
      // A restarted source (seq back to 0) or a missing seq is one frame on; a huge gap is capped
      // where every track would have been removed anyway.
      index = clock.frame + (Number.isFinite(gap) && gap >= 1 ? Math.min(gap, this.trackBuffer + 1) : 1);
    }
    this.clocks.set(frame.cameraId, { frame: index, seq: frame.seq });
    return index;
  }
}

/** Sets `face.trackId` on the faces of confirmed tracks, one ByteTracker per `frame.cameraId`. */
export function trackFaces(
  tracking: FaceTracking | FaceTrackingOptions = {},
): OperatorFunction<FaceFrame, FaceFrame> {
  const t = tracking instanceof FaceTracking ? tracking : new FaceTracking(tracking);
  return map(({ frame, faces }) => ({ frame, faces: t.trackFrame(frame, faces).faces }));
}

/**
 * Aligns and embeds, in one batch per frame, the tracked faces whose track needs an embedding now;
 * the other faces pass unchanged (without an embedding, unless they had one).
 */
export function embedTrackedFaces(
  tracking: FaceTracking,
  embedder: Embedder,
): OperatorFunction<FaceFrame, FaceFrame> {
  const template = framedTemplate(embedder.framing);
  const bytes = embedder.inputSize * embedder.inputSize * 3;
  tracking.useScale(similarityScaleOf(embedder.id));
  return concatMap((item) => {
    const chosen: number[] = [];
    item.faces.forEach((f, i) => {
      if (!f.embedding && tracking.needsEmbedding(f.trackId, f, item.frame)) chosen.push(i);
    });
    if (chosen.length === 0) return from([item]);
    const faces = [...item.faces];
    const crops = chosen.map((i) => {
      const f = faces[i];
      const aligned =
        f.aligned?.length === bytes
          ? f.aligned
          : alignFace(item.frame, f.landmarks, embedder.inputSize, template).aligned;
      faces[i] = { ...f, aligned };
      return aligned;
    });
    return from(
      embedder.embed(crops).then((vectors) => {
        chosen.forEach((i, k) => (faces[i] = { ...faces[i], embedding: vectors[k] }));
        return { frame: item.frame, faces };
      }),
    );
  });
}

/**
 * Matches the embedded faces, adds each match to its track's vote, and gives every tracked face
 * its track's voted identity (embedded this frame or not). An untracked face with an embedding gets
 * its own match, as `matchFaces` would give it.
 */
export function matchTrackedFaces(
  tracking: FaceTracking,
  gallery: Matcher,
  options: MatchFacesOptions = {},
): OperatorFunction<FaceFrame, FaceFrame> {
  return map(({ frame, faces }) => {
    const threshold = matchThreshold(options, gallery, 'matchTrackedFaces');
    const match = (e: Float32Array) => gallery.match(e, { ...options, threshold });
    // Votes first, so that a track's earlier face in this frame cannot show an older vote than its later one.
    const own = faces.map((f) => {
      // A face the quality gate turned down does not vote; it shows what its track's good views said.
      if (!f.embedding || failedQualityGate(f)) return undefined;
      const identity = match(f.embedding);
      return f.trackId === undefined
        ? identity
        : tracking.vote(f.trackId, identity, f.embedding, threshold).identity;
    });
    return {
      frame,
      faces: faces.map((f, i) => {
        const identity =
          f.trackId === undefined ? own[i] : (tracking.identity(f.trackId)?.identity ?? own[i]);
        return identity ? { ...f, identity } : f;
      }),
    };
  });
}
