/**
 * How well a face's look (src/tracking/faceLook.ts: mean chroma and a brightness layout) tells that a track's box
 * now shows another face, without an embedding:
 *
 *   node dist/bench/faceLook.js [--json]
 *
 * 1. The bench clips (hamilton, the demo's sample camera), every tracked face embedded on every detection: for
 *    each two consecutive detections of a track, the look's chroma distance and layout correlation beside the
 *    cosine similarity of the two embeddings. The embedder says which pairs are one face; the look should stay
 *    inside its thresholds for those and leave them at a change of face.
 * 2. The worst case: two people in exactly the same place (LFW photos, one per person, the same box on each),
 *    every pair of 300 people: the share of swaps the look catches; and each photo against itself moved by 3 px
 *    (which it must not flag).
 *
 * Prints figures, asserts nothing; without ../shared/data it says so and exits 0.
 */

import { readdirSync } from 'node:fs';
import * as path from 'node:path';

import { FaceFlow } from '../src/faceflow';
import { decodeImage } from '../src/image/decode';
import {
  DEFAULT_LOOK_THRESHOLDS,
  faceLook,
  lookChanged,
  lookDistance,
  type FaceLook,
} from '../src/tracking/faceLook';
import { similarityScaleOf } from '../src/models/similarityScale';
import { FaceTracking } from '../src/tracking/operators';
import type { Box, Frame } from '../src/types';
import { dot } from '../src/util/vectors';
import { decodeLoops, peopleClips } from './clips';
import { jsonOnlyWithData, machineInfo, quantile, SHARED_DATA } from './common';

const USAGE = 'usage: node dist/bench/faceLook.js [--json]';
const LFW_PEOPLE = 300;

interface Pair {
  embedding: number;
  chroma: number;
  layout: number;
  flagged: boolean;
}

interface ClipRow {
  clip: string;
  detectEvery: number;
  pairs: number;
  /** Pairs the embedder calls another face (below the model's change similarity). */
  changes: number;
  changesFlagged: number;
  sameFlagged: number;
  sameChromaP99: number;
  sameChromaMax: number;
  sameLayoutP1: number;
  sameLayoutMin: number;
  changeChroma: number[];
  changeLayout: number[];
}

async function clipPairs(flow: FaceFlow, frames: Frame[], detectEvery: number): Promise<Pair[]> {
  const tracking = new FaceTracking();
  const last = new Map<number, { seq: number; look: FaceLook; embedding: Float32Array }>();
  const pairs: Pair[] = [];
  for (const frame of frames) {
    if (frame.seq % detectEvery !== 0) continue;
    const { faces } = tracking.trackFrame(frame, await flow.detect(frame, { scoreThreshold: 0.3 }));
    const tracked = faces.filter((f) => f.trackId !== undefined);
    if (tracked.length === 0) continue;
    // Looks first: embedding reads the frame's RGB, after which the look would come from RGB, not the planes.
    const looks = tracked.map((f) => faceLook(frame, f.box));
    const embedded = await flow.embedFaces(frame, tracked);
    embedded.forEach((f, i) => {
      const look = looks[i];
      if (!look) return;
      const id = f.trackId as number;
      const now = { seq: frame.seq, look, embedding: f.embedding as Float32Array };
      const before = last.get(id);
      last.set(id, now);
      if (!before || now.seq - before.seq > detectEvery) return;
      const d = lookDistance(before.look, look);
      pairs.push({
        embedding: dot(before.embedding, now.embedding),
        chroma: d.chroma,
        layout: d.layout,
        flagged: lookChanged(before.look, look),
      });
    });
  }
  return pairs;
}

function sorted(values: number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

async function lfwSwaps(): Promise<{
  people: number;
  pairs: number;
  caught: number;
  byChroma: number;
  byLayout: number;
  selfFlagged: number;
}> {
  const root = path.join(SHARED_DATA, 'lfw', 'images');
  const names = readdirSync(root).sort();
  // LFW's photos are 250×250 with the face in the middle: one box fits them all.
  const box: Box = [70, 70, 180, 190];
  const moved: Box = [73, 68, 183, 188];
  const looks: FaceLook[] = [];
  let selfFlagged = 0;
  const stride = Math.max(1, Math.floor(names.length / LFW_PEOPLE));
  for (let i = 0; i < names.length && looks.length < LFW_PEOPLE; i += stride) {
    const dir = path.join(root, names[i]);
    const image = await decodeImage(path.join(dir, readdirSync(dir).sort()[0]));
    const frame: Frame = {
      cameraId: 'lfw',
      seq: 0,
      ts: 0,
      width: image.width,
      height: image.height,
      rgb: image.rgb,
    };
    const look = faceLook(frame, box);
    const shifted = faceLook(frame, moved);
    if (!look || !shifted) continue;
    if (lookChanged(look, shifted)) selfFlagged++;
    looks.push(look);
  }
  let pairs = 0;
  let caught = 0;
  let byChroma = 0;
  let byLayout = 0;
  for (let i = 0; i < looks.length; i++) {
    for (let j = i + 1; j < looks.length; j++) {
      const d = lookDistance(looks[i], looks[j]);
      pairs++;
      if (lookChanged(looks[i], looks[j])) caught++;
      if (d.chroma > DEFAULT_LOOK_THRESHOLDS.chroma) byChroma++;
      if (d.layout < DEFAULT_LOOK_THRESHOLDS.layout) byLayout++;
    }
  }
  return { people: looks.length, pairs, caught, byChroma, byLayout, selfFlagged };
}

async function main(): Promise<void> {
  const run = jsonOnlyWithData(USAGE);
  if (!run) return;
  const flow = await FaceFlow.open();
  const rows: ClipRow[] = [];
  try {
    const change = similarityScaleOf(flow.embedder.id).changeSimilarity;
    for (const clip of await peopleClips()) {
      const frames = await decodeLoops(clip.file, clip.fps, 1);
      for (const detectEvery of [1, 2]) {
        const pairs = await clipPairs(flow, frames, detectEvery);
        const same = pairs.filter((p) => p.embedding >= change);
        const changed = pairs.filter((p) => p.embedding < change);
        const chroma = sorted(same.map((p) => p.chroma));
        const layout = sorted(same.map((p) => p.layout));
        rows.push({
          clip: clip.name,
          detectEvery,
          pairs: pairs.length,
          changes: changed.length,
          changesFlagged: changed.filter((p) => p.flagged).length,
          sameFlagged: same.filter((p) => p.flagged).length,
          sameChromaP99: quantile(chroma, 0.99),
          sameChromaMax: chroma.at(-1) ?? NaN,
          sameLayoutP1: quantile(layout, 0.01),
          sameLayoutMin: layout[0] ?? NaN,
          changeChroma: changed.map((p) => p.chroma),
          changeLayout: changed.map((p) => p.layout),
        });
      }
    }
  } finally {
    await flow.dispose();
  }
  const lfw = await lfwSwaps();
  if (run.json) {
    console.log(
      JSON.stringify({ machine: machineInfo(), thresholds: DEFAULT_LOOK_THRESHOLDS, rows, lfw }, null, 2),
    );
    return;
  }
  const f = (v: number) => v.toFixed(2);
  console.log(
    `a face's look between consecutive detections of a track, against the embedder (${flow.embedder.id}); ` +
      `thresholds: chroma > ${DEFAULT_LOOK_THRESHOLDS.chroma}, layout < ${DEFAULT_LOOK_THRESHOLDS.layout}; ${new Date().toISOString()}`,
  );
  console.log(
    '| clip | detect every | pairs | changes of face (embedder) | of them flagged | same face flagged | same face: chroma p99, max | same face: layout p1, min | changes: chroma | changes: layout |',
  );
  console.log('|---|--:|--:|--:|--:|--:|--:|--:|--|--|');
  for (const r of rows) {
    console.log(
      `| ${r.clip} | ${r.detectEvery} | ${r.pairs} | ${r.changes} | ${r.changesFlagged} | ${r.sameFlagged} | ` +
        `${f(r.sameChromaP99)}, ${f(r.sameChromaMax)} | ${f(r.sameLayoutP1)}, ${f(r.sameLayoutMin)} | ` +
        `${r.changeChroma.map(f).join(' ')} | ${r.changeLayout.map(f).join(' ')} |`,
    );
  }
  const share = (n: number) => `${((100 * n) / lfw.pairs).toFixed(1)} %`;
  console.log(
    `\nLFW, ${lfw.people} people, each pair in exactly the same place (${lfw.pairs} pairs): caught ${share(lfw.caught)} ` +
      `(chroma alone ${share(lfw.byChroma)}, layout alone ${share(lfw.byLayout)}); a photo against itself moved 3 px flagged ` +
      `${lfw.selfFlagged} of ${lfw.people}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
