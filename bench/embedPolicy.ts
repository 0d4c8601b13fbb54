/**
 * Embedding only when it pays (issue 19): what the track policy's pace costs and what it changes, on the hamilton
 * clip (the singer, then a cut to the audience) and the demo's sample camera clip (Sam and four strangers coming
 * round), each played twice in a row, detection on every frame and on every 2nd.
 *
 *   node dist/bench/embedPolicy.js [--json]
 *
 * Policies: one pace for every track (5: version 0.1's; 15), and the default: a track embedded every 5 frames until
 * two votes 5 frames apart agree, then every 30, and at once when its face's look changes (src/tracking/faceLook.ts);
 * the default without the look check, and with a shorter settled pace reached later. Every policy is held against a reference run
 * that embeds every tracked face on every detection: the most any policy could know. The tracker does not use embeddings here, so both runs have the same tracks
 * with the same ids, and each face is compared with itself:
 *   - faces embedded per frame: the cost;
 *   - wrong-name faces: named X where the reference names the same face otherwise, and of those the stale ones,
 *     where the reference says Unknown (a name kept past a scene cut onto someone else, or on a face turned away
 *     that the reference no longer recognises);
 *   - unnamed faces: Unknown where the reference names the face (the cost of naming later);
 *   - naming delay: per track the reference names, frames from the reference's first name to the policy's.
 *
 * Prints figures, asserts nothing; without ../shared/data it says so and exits 0.
 */

import { from, lastValueFrom, toArray } from 'rxjs';

import { FaceFlow } from '../src/faceflow';
import { MemoryGallery } from '../src/gallery/memoryGallery';
import { decodeImage } from '../src/image/decode';
import { recognizeFrames } from '../src/pipeline/live';
import type { FaceTrackingOptions } from '../src/tracking/operators';
import { UNKNOWN, type FaceFrame, type Frame } from '../src/types';
import { decodeLoops, peopleClips, replay } from './clips';
import { dist, jsonOnlyWithData, machineInfo } from './common';

const LOOPS = 2;
const USAGE = 'usage: node dist/bench/embedPolicy.js [--json]';

interface Policy {
  label: string;
  options: FaceTrackingOptions;
}

const REFERENCE: Policy = {
  label: 'every face (reference)',
  options: { embedEvery: 1, settledEmbedEvery: 1, lookCheck: false },
};

const POLICIES: Policy[] = [
  { label: '5 (0.1)', options: { embedEvery: 5, settledEmbedEvery: 5, lookCheck: false } },
  { label: '15', options: { embedEvery: 15, settledEmbedEvery: 15, lookCheck: false } },
  { label: '5, settled 30, no look check', options: { lookCheck: false } },
  { label: '5, settled 30, look check (default)', options: {} },
  { label: '5, settled 15 after 3 votes, look check', options: { settledEmbedEvery: 15, settleVotes: 3 } },
];

interface Row {
  clip: string;
  detectEvery: number;
  policy: string;
  frames: number;
  embeddedPerFrame: number;
  namedFaces: number;
  wrongNameFaces: number;
  /** Of the wrong-name faces, those the reference calls Unknown. */
  staleNameFaces: number;
  unnamedFaces: number;
  /** Tracks the reference names, and how many of them this policy names at all. */
  namedTracks: number;
  tracksNamedToo: number;
  delayFramesP50: number;
  delayFramesMax: number;
}

/** The name of every tracked face, by frame and track id. */
type Names = Map<number, Map<number, string>>;

async function runPolicy(
  flow: FaceFlow,
  gallery: MemoryGallery,
  frames: Frame[],
  detectEvery: number,
  tracking: FaceTrackingOptions,
): Promise<{ names: Names; embedded: number }> {
  let embedded = 0;
  const embedFaces = flow.embedFaces.bind(flow);
  flow.embedFaces = (frame, faces) => {
    embedded += faces.length;
    return embedFaces(frame, faces);
  };
  try {
    const out: FaceFrame[] = await lastValueFrom(
      from(replay(frames)).pipe(
        recognizeFrames(flow, gallery, { threshold: flow.threshold, detectEvery, tracking }),
        toArray(),
      ),
    );
    const names: Names = new Map();
    for (const { frame, faces } of out) {
      const byTrack = new Map<number, string>();
      for (const f of faces) if (f.trackId !== undefined) byTrack.set(f.trackId, f.identity?.name ?? UNKNOWN);
      names.set(frame.seq, byTrack);
    }
    return { names, embedded };
  } finally {
    flow.embedFaces = embedFaces;
  }
}

function compare(
  reference: Names,
  policy: Names,
): Omit<Row, 'clip' | 'detectEvery' | 'policy' | 'frames' | 'embeddedPerFrame'> {
  let namedFaces = 0;
  let wrongNameFaces = 0;
  let staleNameFaces = 0;
  let unnamedFaces = 0;
  const firstNamed = new Map<number, { seq: number; name: string }>();
  const policyFirst = new Map<number, number>();
  for (const [seq, refFaces] of reference) {
    const mine = policy.get(seq) ?? new Map<number, string>();
    for (const [track, refName] of refFaces) {
      const name = mine.get(track) ?? UNKNOWN;
      if (name !== UNKNOWN) namedFaces++;
      if (name !== UNKNOWN && name !== refName) wrongNameFaces++;
      if (name !== UNKNOWN && refName === UNKNOWN) staleNameFaces++;
      if (name === UNKNOWN && refName !== UNKNOWN) unnamedFaces++;
      if (refName !== UNKNOWN && !firstNamed.has(track)) firstNamed.set(track, { seq, name: refName });
      const first = firstNamed.get(track);
      if (first && name === first.name && !policyFirst.has(track)) policyFirst.set(track, seq);
    }
  }
  const delays = [...firstNamed].flatMap(([track, { seq }]) => {
    const at = policyFirst.get(track);
    return at === undefined ? [] : [at - seq];
  });
  const d = dist(delays.length > 0 ? delays : [0]);
  return {
    namedFaces,
    wrongNameFaces,
    staleNameFaces,
    unnamedFaces,
    namedTracks: firstNamed.size,
    tracksNamedToo: policyFirst.size,
    delayFramesP50: d.p50,
    delayFramesMax: Math.max(0, ...delays),
  };
}

async function main(): Promise<void> {
  const run = jsonOnlyWithData(USAGE);
  if (!run) return;
  const flow = await FaceFlow.open();
  const rows: Row[] = [];
  try {
    for (const clip of await peopleClips()) {
      const gallery = new MemoryGallery(flow.embedder.id);
      for (const [person, photos] of clip.people) {
        for (const photo of photos) {
          gallery.add(
            person,
            (await flow.singleFace(await decodeImage(photo), photo)).embedding as Float32Array,
          );
        }
      }
      const frames = await decodeLoops(clip.file, clip.fps, LOOPS);
      for (const detectEvery of [1, 2]) {
        const reference = await runPolicy(flow, gallery, frames, detectEvery, REFERENCE.options);
        for (const policy of [REFERENCE, ...POLICIES]) {
          const run =
            policy === REFERENCE
              ? reference
              : await runPolicy(flow, gallery, frames, detectEvery, policy.options);
          rows.push({
            clip: clip.name,
            detectEvery,
            policy: policy.label,
            frames: frames.length,
            embeddedPerFrame: run.embedded / frames.length,
            ...compare(reference.names, run.names),
          });
        }
      }
    }
  } finally {
    await flow.dispose();
  }
  if (run.json) {
    console.log(JSON.stringify({ machine: machineInfo(), loops: LOOPS, rows }, null, 2));
    return;
  }
  console.log(
    `the track policy's pace against embedding every tracked face, default pack (${flow.detector.id} + ${flow.embedder.id}), ` +
      `each clip ${LOOPS} times in a row, ${new Date().toISOString()}`,
  );
  console.log(
    '| clip | detect every | embedding pace, frames | faces embedded per frame | named faces | wrong-name faces (stale) | unnamed faces (reference named) | tracks named (of the reference’s) | naming delay, frames: median, max |',
  );
  console.log('|---|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const r of rows) {
    console.log(
      `| ${r.clip} | ${r.detectEvery} | ${r.policy} | ${r.embeddedPerFrame.toFixed(2)} | ` +
        `${r.namedFaces} | ${r.wrongNameFaces} (${r.staleNameFaces}) | ${r.unnamedFaces} | ${r.tracksNamedToo} of ${r.namedTracks} | ` +
        `${r.delayFramesP50}, ${r.delayFramesMax} |`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
