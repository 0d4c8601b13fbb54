/**
 * How many events people get (issue 18): the live chain (`recognizeFrames` + `faceEvents`) on the hamilton
 * clip (one enrolled person, strangers around him) and on the demo's sample camera clip (Sam enrolled,
 * four strangers coming round again and again),
 * with strangers told apart (the default) and without, and with the hysteresis of named tracks (the default) and
 * without, in the same run. Counts events per kind, per person or stranger, per minute of video, and the
 * tracks announced under a name and then as unknown (flips).
 *
 *   node dist/bench/events.js [--json]
 *
 * Prints figures, asserts nothing; without ../shared/data it says so and exits 0.
 */

import { existsSync } from 'node:fs';
import { from, lastValueFrom, toArray } from 'rxjs';

import { FaceFlow } from '../src/faceflow';
import { MemoryGallery } from '../src/gallery/memoryGallery';
import { decodeImage } from '../src/image/decode';
import { faceEvents } from '../src/pipeline/events';
import { recognizeFrames } from '../src/pipeline/live';
import type { FaceEvent, Frame } from '../src/types';
import { decodeLoops, peopleClips as clips, replay, type PeopleClip as Clip } from './clips';
import { machineInfo, SHARED_DATA } from './common';

/** Each clip is played this many times in a row: people come round again. */
const LOOPS = 3;

async function galleryFor(flow: FaceFlow, clip: Clip): Promise<MemoryGallery> {
  const gallery = new MemoryGallery(flow.embedder.id);
  for (const [name, photos] of clip.people) {
    for (const photo of photos) {
      try {
        const face = await flow.singleFace(await decodeImage(photo), photo);
        gallery.add(name, face.embedding as Float32Array);
      } catch {
        // a photo without one clear face is left out, as enrolment would
      }
    }
  }
  return gallery;
}

interface Row {
  clip: string;
  strangers: boolean;
  hysteresis: boolean;
  /** Tracks announced `recognized` and later `unknown`: the flips the hysteresis is for. */
  flips: number;
  minutes: number;
  recognized: number;
  unknown: number;
  ambiguous: number;
  perMinute: number;
  /** Unknown events per stranger told apart (only with strangers). */
  strangersSeen: number;
  byName: Record<string, number>;
}

interface Variant {
  strangers: boolean;
  hysteresis: boolean;
}

/** Before both (strangers and hysteresis off), each alone, and both (the default). */
const VARIANTS: Variant[] = [
  { strangers: false, hysteresis: false },
  { strangers: false, hysteresis: true },
  { strangers: true, hysteresis: false },
  { strangers: true, hysteresis: true },
];

async function run(flow: FaceFlow, gallery: MemoryGallery, frames: Frame[], clip: Clip, variant: Variant) {
  const { strangers, hysteresis } = variant;
  const events: FaceEvent[] = await lastValueFrom(
    from(replay(frames)).pipe(
      recognizeFrames(flow, gallery, {
        threshold: flow.threshold,
        ...(strangers ? {} : { strangers: false }),
      }),
      faceEvents({ namedHysteresis: hysteresis }),
      toArray(),
    ),
  );
  const minutes = frames.length / clip.fps / 60;
  const byName: Record<string, number> = {};
  for (const e of events) {
    const who = e.type === 'unknown' ? (e.stranger ?? 'unknown (no stranger id)') : e.name;
    byName[who] = (byName[who] ?? 0) + 1;
  }
  const named = new Set(events.filter((e) => e.type === 'recognized').map((e) => e.trackId));
  const row: Row = {
    clip: clip.name,
    strangers,
    hysteresis,
    flips: new Set(events.filter((e) => e.type === 'unknown' && named.has(e.trackId)).map((e) => e.trackId))
      .size,
    minutes: Number(minutes.toFixed(2)),
    recognized: events.filter((e) => e.type === 'recognized').length,
    unknown: events.filter((e) => e.type === 'unknown').length,
    ambiguous: events.filter((e) => e.type === 'ambiguous').length,
    perMinute: Number((events.length / minutes).toFixed(1)),
    strangersSeen: new Set(events.map((e) => e.stranger).filter(Boolean)).size,
    byName,
  };
  return row;
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  if (!existsSync(SHARED_DATA)) {
    console.log(`no ${SHARED_DATA}: nothing to measure`);
    return;
  }
  const flow = await FaceFlow.open();
  const rows: Row[] = [];
  try {
    for (const clip of await clips()) {
      const gallery = await galleryFor(flow, clip);
      const frames = await decodeLoops(clip.file, clip.fps, LOOPS);
      for (const variant of VARIANTS) rows.push(await run(flow, gallery, frames, clip, variant));
    }
  } finally {
    await flow.dispose();
  }
  if (json) {
    console.log(JSON.stringify({ machine: machineInfo(), rows }, null, 2));
    return;
  }
  console.log(
    `events of the live chain (detection every frame, default pack, each clip ${LOOPS} times in a row), ${new Date().toISOString()}`,
  );
  console.log(
    '| clip | strangers told apart | hysteresis | minutes | recognized | unknown | ambiguous | flips | events/min | by who |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const who = Object.entries(r.byName)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    console.log(
      `| ${r.clip} | ${r.strangers ? 'yes' : 'no'} | ${r.hysteresis ? 'yes' : 'no'} | ${r.minutes} | ${r.recognized} | ${r.unknown} | ${r.ambiguous} | ${r.flips} | ${r.perMinute} | ${who} |`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
