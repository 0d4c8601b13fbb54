import { lastValueFrom, of, type OperatorFunction } from 'rxjs';

import type { FaceFlow } from '../faceflow';
import type { GalleryFile } from '../gallery/galleryFile';
import type { Matcher, MatchFacesOptions } from '../gallery/matcher';
import { failedQualityGate } from '../quality/rejected';
import type { StrangerMemory } from '../gallery/strangers';
import { similarityScaleOf } from '../models/similarityScale';
import type { FaceTracking } from '../tracking/operators';
import { UNKNOWN, type Face, type FaceFrame, type Frame, type Identity } from '../types';
import { collectUnknowns } from './operators';

export interface IdentifyHooks {
  /** Seconds spent embedding the faces that came without an embedding. */
  embedded?: (seconds: number) => void;
  matched?: (identity: Identity) => void;
}

/**
 * Names the faces of one frame in place: those without an embedding are embedded first, each is matched;
 * faces the quality gate turned down are neither embedded nor named (see failedQualityGate). With
 * `strangers`, each face nobody enrolled is told which stranger it is (Identity.stranger).
 */
export async function identifyFaces(
  flow: FaceFlow,
  gallery: Matcher,
  frame: Frame,
  faces: Face[],
  options: MatchFacesOptions & { threshold: number },
  hooks: IdentifyHooks = {},
  strangers?: StrangerMemory,
): Promise<void> {
  const named = faces.filter((f) => !failedQualityGate(f));
  const missing = named.filter((f) => !(f.embedding instanceof Float32Array));
  if (missing.length > 0) {
    const started = performance.now();
    await flow.embedFaces(frame, missing);
    hooks.embedded?.((performance.now() - started) / 1000);
  }
  for (const face of named) {
    face.identity = gallery.match(face.embedding as Float32Array, options);
    if (strangers)
      tellStranger(strangers, face.identity, face.embedding as Float32Array, options.threshold, frame.ts);
    hooks.matched?.(face.identity);
  }
}

/**
 * Names the faces of one frame in place, as {@link identifyFaces} does, except that the faces of tracks (those
 * with a `trackId` from `tracking`) are embedded only when their track needs it (`FaceTracking.needsEmbedding`:
 * on its first frame, at its pace, on a better view, when its face changed) and are named by their track's vote;
 * a tracked face not embedded this frame gets its track's identity and no embedding. Tentative faces (of tracks
 * not confirmed yet) are neither embedded nor named; other faces without a track are embedded and matched on
 * their own. The tracker takes the embedder's similarity values (`useScale`) on its first frame from each embedder.
 */
export async function identifyTrackedFaces(
  flow: FaceFlow,
  gallery: Matcher,
  frame: Frame,
  faces: Face[],
  options: MatchFacesOptions & { threshold: number },
  tracks: { tracking: FaceTracking; strangers: TrackStrangers; scaledFor?: string },
  hooks: IdentifyHooks = {},
  strangers?: StrangerMemory,
): Promise<void> {
  const { tracking } = tracks;
  // The tracker's similarity values belong to the embedder: set once per embedder, not per frame.
  if (tracks.scaledFor !== flow.embedder.id) {
    tracking.useScale(similarityScaleOf(flow.embedder.id));
    tracks.scaledFor = flow.embedder.id;
  }
  // A tentative face (a track not confirmed yet) may be a false detection: it waits for its track, as in
  // recognizeFrames, and costs no embedding meanwhile.
  const named = faces.filter((f) => !failedQualityGate(f) && f.tentative !== true);
  // Every tracked face is asked about, embedded or not: the question also notes how its face looks now.
  const missing = named.filter(
    (f) =>
      !(f.embedding instanceof Float32Array) &&
      (f.trackId === undefined || tracking.needsEmbedding(f.trackId, f, frame)),
  );
  if (missing.length > 0) {
    const started = performance.now();
    await flow.embedFaces(frame, missing);
    hooks.embedded?.((performance.now() - started) / 1000);
  }
  for (const face of named) {
    if (face.embedding instanceof Float32Array) {
      const identity = gallery.match(face.embedding, options);
      if (strangers) tellStranger(strangers, identity, face.embedding, options.threshold, frame.ts);
      hooks.matched?.(identity);
      if (face.trackId === undefined) {
        face.identity = identity;
        continue;
      }
      tracking.vote(face.trackId, identity, face.embedding, options.threshold);
      if (identity.stranger !== undefined) tracks.strangers.set(face.trackId, identity.stranger);
    }
    if (face.trackId === undefined) continue;
    const voted = tracks.strangers.identityOf(tracking, face.trackId);
    if (voted) face.identity = voted;
    else delete face.identity;
  }
}

/** Stranger ids kept per track, at most this many (the oldest go first). */
const MAX_STRANGER_TRACKS = 2000;

/**
 * The stranger each unknown track was last told to be: a track's identity comes from its votes, which do not
 * carry the stranger id of the face that voted.
 */
export class TrackStrangers {
  private readonly byTrack = new Map<number, string>();

  set(trackId: number, stranger: string): void {
    this.byTrack.delete(trackId);
    this.byTrack.set(trackId, stranger);
    if (this.byTrack.size > MAX_STRANGER_TRACKS)
      this.byTrack.delete(this.byTrack.keys().next().value as number);
  }

  /** The track's voted identity, with its stranger id when the track is of someone nobody enrolled. */
  identityOf(tracking: FaceTracking, trackId: number): Identity | undefined {
    const identity = tracking.identity(trackId)?.identity;
    if (!identity) return undefined;
    const stranger =
      identity.name === UNKNOWN && identity.ambiguous !== true ? this.byTrack.get(trackId) : undefined;
    return stranger === undefined ? identity : { ...identity, stranger };
  }
}

/** Marks a face nobody enrolled (not one two people matched) with the stranger it is. */
export function tellStranger(
  strangers: StrangerMemory,
  identity: Identity,
  embedding: Float32Array,
  threshold: number,
  now: number,
): void {
  if (identity.name === UNKNOWN && identity.ambiguous !== true) {
    identity.stranger = strangers.identify(embedding, threshold, now || Date.now());
  }
}

/**
 * Keeps the unknown faces of frame after frame in a gallery file's pool (see collectUnknowns) and saves
 * the file `saveDelayMs` after the first face not on disk yet: a write per frame would cost more than
 * the recognition, and a crash loses at most that much.
 */
export class UnknownFaceKeeper {
  // One collector per file for the keeper's life: its memory of recent faces is what keeps a person
  // standing in front of the camera from filling the pool with the same face, frame after frame.
  private collector: { file: GalleryFile; op: OperatorFunction<FaceFrame, FaceFrame> } | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly saveDelayMs: number,
    private readonly warn: (text: string) => void,
  ) {}

  /** Whether kept faces wait to be saved. */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  async keep(file: GalleryFile, frame: Frame, faces: Face[]): Promise<void> {
    if (this.collector?.file !== file) this.collector = { file, op: collectUnknowns(file.gallery) };
    const pool = file.gallery.unknowns;
    const before = pool.size + pool.dropped;
    await lastValueFrom(of({ frame, faces }).pipe(this.collector.op));
    if (pool.size + pool.dropped > before && !this.timer) {
      this.timer = setTimeout(() => void this.save(), this.saveDelayMs);
    }
  }

  /**
   * Saves now what waits. Straight to the file: the file's store already writes one save at a time,
   * each a snapshot taken when called.
   */
  save(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const file = this.collector?.file;
    if (!file) return Promise.resolve();
    return file.save().catch((err: unknown) => {
      this.warn(`could not save the collected unknown faces: ${(err as Error).message}`);
    });
  }
}
