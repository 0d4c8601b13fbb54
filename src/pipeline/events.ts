import { concatMap, type OperatorFunction } from 'rxjs';

import { faceThumbnail } from '../gallery/thumbnail';
import { failedQualityGate } from '../quality/rejected';
import { UNKNOWN, type Candidate, type Face, type FaceEvent, type FaceFrame, type Identity } from '../types';

export interface FaceEventOptions {
  /**
   * A name is announced on a camera again only after it was not seen there for this long, whatever
   * the track (default 30 s): a person who turns away and back, or whom the tracker loses and finds
   * again, is one arrival, not several.
   */
  cooldownMs?: number;
  /**
   * The cooldown of some people, by name, in place of `cooldownMs` and the camera's: 0 to hear of someone at every
   * arrival (a child coming home), an hour for the family who come and go all day.
   */
  personCooldownMs?: Record<string, number>;
  /**
   * The cooldown of some cameras, by camera id, in place of `cooldownMs` (a person's own still wins): a busy
   * hallway longer than the front door. Applies to unknown faces and strangers on that camera too.
   */
  cameraCooldownMs?: Record<string, number>;
  /**
   * Frames a track must be seen as `Unknown` before it is announced (default 5): a face that is
   * unknown for one frame is usually a poor view of someone known, or no face at all.
   */
  unknownAfterFrames?: number;
  /**
   * A track that was named is announced `unknown` only after more unknown frames in a row than it was named in
   * (default true): a few poor views of someone known are not a stranger arriving. False announces it after
   * `unknownAfterFrames` unknown frames, as for any track.
   */
  namedHysteresis?: boolean;
  /** Attach a base64 JPEG of the face (default false). */
  snapshot?: boolean;
  /** Forget tracks not seen for this long (default 60 s), so state stays bounded on a long run. */
  forgetTracksAfterMs?: number;
}

interface TrackMemory {
  lastSeen: number;
  unknownFrames: number;
  /** Frames the track was named in, and unnamed frames since the last of them: the hysteresis. */
  namedFrames: number;
  unknownRun: number;
  announced: Set<string>;
}

/**
 * Turns named faces into events: `recognized` the first time a track carries a name (and the name
 * was not seen on that camera within the cooldown), `unknown` once a track has stayed unknown
 * for `unknownAfterFrames` frames, or `ambiguous` instead when it is unknown because two enrolled
 * people matched it about equally well (`Identity.ambiguous`; name `Unknown`, `candidates` both).
 * Faces the quality gate marked `rejected` are passed over. Faces without a `trackId` (still photos) are judged by the
 * cooldown alone; faces the tracker marked `tentative` wait for their track to be confirmed. Time is the frames' own `ts`, so a recorded video replays the same events.
 */
export function faceEvents(options: FaceEventOptions = {}): OperatorFunction<FaceFrame, FaceEvent> {
  const cooldownMs = options.cooldownMs ?? 30_000;
  const unknownAfter = Math.max(1, options.unknownAfterFrames ?? 5);
  const forgetAfter = options.forgetTracksAfterMs ?? 60_000;
  const hysteresis = options.namedHysteresis ?? true;
  if (!(cooldownMs >= 0) || !(forgetAfter > 0))
    throw new Error('faceEvents: cooldownMs and forgetTracksAfterMs must be positive');
  const byPerson = cooldownTable(options.personCooldownMs, 'personCooldownMs');
  const byCamera = cooldownTable(options.cameraCooldownMs, 'cameraCooldownMs');
  const longest = Math.max(cooldownMs, ...byPerson.values(), ...byCamera.values());
  const cooldownOf = (camera: string, outcome: Outcome, name: string) =>
    (outcome === 'recognized' ? byPerson.get(name) : undefined) ?? byCamera.get(camera) ?? cooldownMs;
  const tracks = new Map<string, TrackMemory>();
  const seenByName = new Map<string, number>();

  const announce = concatMap(async ({ frame, faces }: FaceFrame) => {
    const events: FaceEvent[] = [];
    const now = frame.ts;
    for (const face of faces) {
      const id = face.identity;
      // A face the tracker has not confirmed is left alone entirely: even noting its name would let
      // the cooldown swallow the event of the confirmed track a few frames later. A face the quality
      // gate turned down is left alone too: it neither names anyone nor counts as a stranger.
      if (!id || face.tentative === true || failedQualityGate(face)) continue;
      const memory =
        face.trackId === undefined
          ? undefined
          : trackMemory(tracks, `${frame.cameraId}\u0000${face.trackId}`, now);
      const outcome = outcomeOf(id);
      if (outcome === 'recognized' && memory) {
        memory.namedFrames++;
        memory.unknownRun = 0;
      }
      if (outcome !== 'recognized' && memory) {
        memory.unknownFrames++;
        memory.unknownRun++;
        if (memory.unknownFrames < unknownAfter) continue;
        // A track that was named turns unknown only on more evidence than named it: a few poor views
        // of someone known (a turn of the head, motion blur) are not a stranger arriving.
        if (hysteresis && memory.namedFrames > 0 && memory.unknownRun <= memory.namedFrames) continue;
      }
      // Per track, one event per name, and one for not being named (unknown or ambiguous, whichever
      // came first): a face that wavers between the two is one stranger, not two events.
      const announceAs = outcome === 'recognized' ? id.name : UNNAMED;
      // A stranger told apart by their face (Identity.stranger) is one stranger across tracks, like a name.
      const stranger = outcome === 'unknown' ? id.stranger : undefined;
      const key = `${frame.cameraId}\u0000${stranger !== undefined ? `${UNNAMED}${stranger}` : cooldownKey(outcome, id)}`;
      // Unknown people are told apart by their tracks, not by a name, so tracked unknowns have no shared cooldown.
      // It runs from the last sighting, so a person in view all day is one arrival, however often the
      // tracker loses and finds them.
      // Untracked unknown faces (no tracker upstream) have nothing else to tell them apart: one
      // cooldown for all of them per camera, or every frame would be an event.
      const shared = outcome === 'recognized' || !memory || stranger !== undefined;
      const lastSeen = shared ? seenByName.get(key) : undefined;
      if (shared) seenByName.set(key, now);
      if (memory?.announced.has(announceAs)) continue;
      if (lastSeen !== undefined && now - lastSeen < cooldownOf(frame.cameraId, outcome, id.name)) {
        memory?.announced.add(announceAs); // covered by the earlier event
        continue;
      }
      memory?.announced.add(announceAs);
      events.push(await toEvent(frame, face, outcome, options.snapshot === true));
    }
    for (const [key, memory] of tracks) if (now - memory.lastSeen > forgetAfter) tracks.delete(key);
    for (const [key, at] of seenByName) if (now - at > Math.max(longest, forgetAfter)) seenByName.delete(key);
    return events;
  });
  return (frames) =>
    frames.pipe(
      announce,
      concatMap((events) => events),
    );
}

/** A table of cooldowns as a map, every value checked: a typo must not silently mean "no cooldown". */
function cooldownTable(table: Record<string, number> | undefined, what: string): Map<string, number> {
  const out = new Map<string, number>();
  if (table === undefined) return out;
  if (table === null || typeof table !== 'object' || Array.isArray(table))
    throw new Error(`faceEvents: ${what} must be an object of milliseconds by name`);
  for (const [key, ms] of Object.entries(table)) {
    if (typeof ms !== 'number' || !(ms >= 0) || !Number.isFinite(ms))
      throw new Error(`faceEvents: ${what}['${key}'] must be 0 or more milliseconds, got ${String(ms)}`);
    out.set(key, ms);
  }
  return out;
}

/** Marks a track's not-named announcement; NUL cannot start a gallery name, so no person collides. */
const UNNAMED = '\u0000unnamed';

type Outcome = FaceEvent['type'];

function outcomeOf(id: Identity): Outcome {
  if (id.name !== UNKNOWN) return 'recognized';
  return id.ambiguous === true ? 'ambiguous' : 'unknown';
}

/** Untracked faces share a cooldown per camera and this key: the name, or the pair not told apart. */
function cooldownKey(outcome: Outcome, id: Identity): string {
  if (outcome !== 'ambiguous') return id.name;
  return `${UNNAMED}${candidatesOf(id)
    .map((c) => c.name)
    .sort()
    .join('\u0000')}`;
}

function candidatesOf(id: Identity): Candidate[] {
  return id.topK.slice(0, 2);
}

function trackMemory(tracks: Map<string, TrackMemory>, key: string, now: number): TrackMemory {
  let memory = tracks.get(key);
  if (!memory) {
    memory = { lastSeen: now, unknownFrames: 0, namedFrames: 0, unknownRun: 0, announced: new Set() };
    tracks.set(key, memory);
  }
  memory.lastSeen = now;
  return memory;
}

async function toEvent(
  frame: FaceFrame['frame'],
  face: Face,
  outcome: Outcome,
  snapshot: boolean,
): Promise<FaceEvent> {
  const id = face.identity as NonNullable<Face['identity']>;
  const event: FaceEvent = {
    type: outcome,
    camera: frame.cameraId,
    name: id.name,
    similarity: Number(id.similarity.toFixed(4)),
    ...(face.trackId === undefined ? {} : { trackId: face.trackId }),
    box: face.box.map((v) => Math.round(v)) as FaceEvent['box'],
    ts: frame.ts,
  };
  if (outcome === 'unknown' && id.stranger !== undefined) event.stranger = id.stranger;
  if (outcome === 'ambiguous') {
    event.candidates = candidatesOf(id).map((c) => ({
      name: c.name,
      similarity: Number(c.similarity.toFixed(4)),
    }));
  }
  if (snapshot) event.snapshot = (await faceThumbnail(frame, face.landmarks)).toString('base64');
  return event;
}
