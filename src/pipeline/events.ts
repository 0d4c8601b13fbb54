import { concatMap, type OperatorFunction } from 'rxjs';

import { faceThumbnail } from '../gallery/thumbnail';
import { UNKNOWN, type Face, type FaceEvent, type FaceFrame } from '../types';

export interface FaceEventOptions {
  /**
   * A name is announced on a camera again only after it was not seen there for this long, whatever
   * the track (default 30 s): a person who turns away and back, or whom the tracker loses and finds
   * again, is one arrival, not several.
   */
  cooldownMs?: number;
  /**
   * Frames a track must be seen as `Unknown` before it is announced (default 5): a face that is
   * unknown for one frame is usually a poor view of someone known, or no face at all.
   */
  unknownAfterFrames?: number;
  /** Attach a base64 JPEG of the face (default false). */
  snapshot?: boolean;
  /** Forget tracks not seen for this long (default 60 s), so state stays bounded on a long run. */
  forgetTracksAfterMs?: number;
}

interface TrackMemory {
  lastSeen: number;
  unknownFrames: number;
  announced: Set<string>;
}

/**
 * Turns named faces into events: `recognized` the first time a track carries a name (and the name
 * was not seen on that camera within the cooldown), `unknown` once a track has stayed unknown
 * for `unknownAfterFrames` frames. Faces without a `trackId` (still photos) are judged by the
 * cooldown alone; faces the tracker marked `tentative` wait for their track to be confirmed. Time is the frames' own `ts`, so a recorded video replays the same events.
 */
export function faceEvents(options: FaceEventOptions = {}): OperatorFunction<FaceFrame, FaceEvent> {
  const cooldownMs = options.cooldownMs ?? 30_000;
  const unknownAfter = Math.max(1, options.unknownAfterFrames ?? 5);
  const forgetAfter = options.forgetTracksAfterMs ?? 60_000;
  if (!(cooldownMs >= 0) || !(forgetAfter > 0))
    throw new Error('faceEvents: cooldownMs and forgetTracksAfterMs must be positive');
  const tracks = new Map<string, TrackMemory>();
  const seenByName = new Map<string, number>();

  const announce = concatMap(async ({ frame, faces }: FaceFrame) => {
    const events: FaceEvent[] = [];
    const now = frame.ts;
    for (const face of faces) {
      const id = face.identity;
      // A face the tracker has not confirmed is left alone entirely: even noting its name would let
      // the cooldown swallow the event of the confirmed track a few frames later.
      if (!id || face.tentative === true) continue;
      const memory =
        face.trackId === undefined
          ? undefined
          : trackMemory(tracks, `${frame.cameraId}\u0000${face.trackId}`, now);
      const known = id.name !== UNKNOWN;
      if (!known && memory) {
        memory.unknownFrames++;
        if (memory.unknownFrames < unknownAfter) continue;
      }
      const key = `${frame.cameraId}\u0000${id.name}`;
      // Unknown people are told apart by their tracks, not by a name, so tracked unknowns have no shared cooldown.
      // It runs from the last sighting, so a person in view all day is one arrival, however often the
      // tracker loses and finds them.
      // Untracked unknown faces (no tracker upstream) have nothing else to tell them apart: one
      // cooldown for all of them per camera, or every frame would be an event.
      const shared = known || !memory;
      const lastSeen = shared ? seenByName.get(key) : undefined;
      if (shared) seenByName.set(key, now);
      if (memory?.announced.has(id.name)) continue;
      if (lastSeen !== undefined && now - lastSeen < cooldownMs) {
        memory?.announced.add(id.name); // covered by the earlier event
        continue;
      }
      memory?.announced.add(id.name);
      events.push(await toEvent(frame, face, known, options.snapshot === true));
    }
    for (const [key, memory] of tracks) if (now - memory.lastSeen > forgetAfter) tracks.delete(key);
    for (const [key, at] of seenByName)
      if (now - at > Math.max(cooldownMs, forgetAfter)) seenByName.delete(key);
    return events;
  });
  return (frames) =>
    frames.pipe(
      announce,
      concatMap((events) => events),
    );
}

function trackMemory(tracks: Map<string, TrackMemory>, key: string, now: number): TrackMemory {
  let memory = tracks.get(key);
  if (!memory) {
    memory = { lastSeen: now, unknownFrames: 0, announced: new Set() };
    tracks.set(key, memory);
  }
  memory.lastSeen = now;
  return memory;
}

async function toEvent(
  frame: FaceFrame['frame'],
  face: Face,
  known: boolean,
  snapshot: boolean,
): Promise<FaceEvent> {
  const id = face.identity as NonNullable<Face['identity']>;
  const event: FaceEvent = {
    type: known ? 'recognized' : 'unknown',
    camera: frame.cameraId,
    name: id.name,
    similarity: Number(id.similarity.toFixed(4)),
    ...(face.trackId === undefined ? {} : { trackId: face.trackId }),
    box: face.box.map((v) => Math.round(v)) as FaceEvent['box'],
    ts: frame.ts,
  };
  if (snapshot) event.snapshot = (await faceThumbnail(frame, face.landmarks)).toString('base64');
  return event;
}
