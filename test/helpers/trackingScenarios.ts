/**
 * Synthetic face-tracking sequences with known ground truth, for tests and benchmarks: faces move
 * along piecewise-linear paths, and a simulated detector reports them with box noise, random misses,
 * spells of low confidence (a turned or half-hidden face), full occlusions (no box at all) and false
 * positives. Deterministic for a seed.
 *
 * Ground truth holds every face in every frame it is present and not fully occluded: a hidden face
 * cannot be detected, so no tracker is charged for not reporting it; a random miss or a low score is
 * the detector's weakness, which the tracker is meant to bridge, so those frames stay in.
 */

import type { Box } from '../../src/types';
import { seededRandom } from '../../src/util/seededRandom';
import type { TrackerDetection } from '../../src/tracking/byteTracker';
import { iou } from '../../src/util/vectors';
import type { MotObject } from './trackingMetrics';

export interface Waypoint {
  frame: number;
  cx: number;
  cy: number;
  /** Box height in pixels. */
  h: number;
}

export interface SyntheticObject {
  id: number;
  /** Which person this face is (for embeddings); default: the id. */
  person?: number;
  /** Sorted by frame; the face is present from the first waypoint's frame to the last's. */
  path: Waypoint[];
  /** Box width / height (default 0.8, a face detector's box). */
  aspect?: number;
  /** Half-open frame ranges [from, to) without any detection, left out of the ground truth. */
  occluded?: [number, number][];
  /** Half-open frame ranges whose detections score in the low band. */
  lowScore?: [number, number][];
}

export interface Scenario {
  name: string;
  frames: number;
  width: number;
  height: number;
  objects: SyntheticObject[];
}

export interface RenderOptions {
  seed?: number;
  /** Box noise: centre and size standard deviations as a fraction of the height (default 0.03). */
  jitter?: number;
  /** Chance that a visible face gets no detection in a frame (default 0.02). */
  missRate?: number;
  /** Chance per frame that a false positive appears (default 0.05); a third of them last 2 frames or more. */
  falsePositiveRate?: number;
  /** The longest a false positive lasts, in frames (default 3). */
  falsePositiveFrames?: number;
  /** Score range of clear faces (default [0.75, 0.95]) and of doubtful ones (default [0.35, 0.55]). */
  highScores?: [number, number];
  lowScores?: [number, number];
  /**
   * An embedding for a detection of this person in this frame (e.g. from their real photos). The
   * frame lets it mimic video, where a face looks the same for a while and then turns.
   */
  embed?: (person: number, frame: number, rand: () => number) => Float32Array | undefined;
}

export interface SyntheticDetection extends TrackerDetection {
  /** The ground-truth id, undefined for a false positive. */
  gt?: number;
  index: number;
}

export interface SyntheticFrame {
  index: number;
  /** In random order, as a detector gives no order to rely on. */
  detections: SyntheticDetection[];
  gt: MotObject[];
}

/** The true box of an object in a frame, or undefined when it is not present. */
export function boxAt(o: SyntheticObject, frame: number): Box | undefined {
  const p = o.path;
  if (p.length === 0 || frame < p[0].frame || frame > p[p.length - 1].frame) return undefined;
  let k = 0;
  while (k < p.length - 1 && p[k + 1].frame < frame) k++;
  const a = p[k];
  const b = p[Math.min(k + 1, p.length - 1)];
  const t = b.frame === a.frame ? 0 : (frame - a.frame) / (b.frame - a.frame);
  const cx = a.cx + (b.cx - a.cx) * t;
  const cy = a.cy + (b.cy - a.cy) * t;
  const h = a.h + (b.h - a.h) * t;
  const w = h * (o.aspect ?? 0.8);
  return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];
}

const within = (ranges: [number, number][] | undefined, f: number) =>
  ranges?.some(([a, b]) => f >= a && f < b) ?? false;

export function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

export function renderScenario(s: Scenario, options: RenderOptions = {}): SyntheticFrame[] {
  const rand = seededRandom(options.seed ?? 1);
  // A stream of its own, so that a sequence's boxes are the same with embeddings and without.
  const embedRand = seededRandom(((options.seed ?? 1) ^ 0x5bd1e995) >>> 0);
  const jitter = options.jitter ?? 0.03;
  const missRate = options.missRate ?? 0.02;
  const fpRate = options.falsePositiveRate ?? 0.05;
  const fpLongest = options.falsePositiveFrames ?? 3;
  const [hiLo, hiHi] = options.highScores ?? [0.75, 0.95];
  const [loLo, loHi] = options.lowScores ?? [0.35, 0.55];
  const frames: SyntheticFrame[] = [];
  let falsePositives: { box: Box; left: number }[] = [];
  for (let f = 0; f < s.frames; f++) {
    const detections: Omit<SyntheticDetection, 'index'>[] = [];
    const gt: MotObject[] = [];
    for (const o of s.objects) {
      const box = boxAt(o, f);
      if (!box || within(o.occluded, f)) continue;
      gt.push({ id: o.id, box });
      if (rand() < missRate) continue;
      const h = box[3] - box[1];
      const w = box[2] - box[0];
      const cx = (box[0] + box[2]) / 2 + gaussian(rand) * jitter * h;
      const cy = (box[1] + box[3]) / 2 + gaussian(rand) * jitter * h;
      const nh = h * (1 + gaussian(rand) * jitter);
      const nw = w * (1 + gaussian(rand) * jitter);
      const low = within(o.lowScore, f);
      const score = low ? loLo + (loHi - loLo) * rand() : hiLo + (hiHi - hiLo) * rand();
      const det: Omit<SyntheticDetection, 'index'> = {
        box: [cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2],
        score,
        gt: o.id,
      };
      const e = options.embed?.(o.person ?? o.id, f, embedRand);
      if (e) det.embedding = e;
      detections.push(det);
    }
    if (rand() < fpRate) {
      const h = 40 + 80 * rand();
      const x = rand() * (s.width - h);
      const y = rand() * (s.height - h);
      falsePositives.push({
        box: [x, y, x + 0.8 * h, y + h],
        left: fpLongest > 1 && rand() < 1 / 3 ? 2 + Math.floor(rand() * (fpLongest - 1)) : 1,
      });
    }
    for (const fp of falsePositives) {
      const h = fp.box[3] - fp.box[1];
      const d = () => gaussian(rand) * jitter * h;
      detections.push({
        box: [fp.box[0] + d(), fp.box[1] + d(), fp.box[2] + d(), fp.box[3] + d()],
        score: 0.3 + 0.5 * rand(),
      });
      fp.left--;
    }
    falsePositives = falsePositives.filter((fp) => fp.left > 0);
    // Fisher–Yates: the tracker must not depend on the order of detections.
    for (let i = detections.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [detections[i], detections[j]] = [detections[j], detections[i]];
    }
    frames.push({ index: f, detections: detections.map((d, i) => ({ ...d, index: i })), gt });
  }
  return frames;
}

export const SCENARIOS = ['walkers', 'crossing', 'occlusion', 'lowScore', 'bounce'] as const;
export type ScenarioKind = (typeof SCENARIOS)[number];

const WIDTH = 1280;
const HEIGHT = 720;
const FRAMES = 150;

/**
 * One of the standard scenarios, its details drawn from `seed`:
 * - walkers: 3–4 faces crossing the view on straight lines, entering and leaving at random times;
 * - crossing: two faces walking past each other, the farther one hidden while they overlap, plus a walker;
 * - occlusion: three walkers, one hidden for 8–20 frames mid-way;
 * - lowScore: a face turning away (low scores) for 45 frames, longer than the lost-track buffer,
 *   and changing direction meanwhile; a tracker that ignores low scores loses it;
 * - bounce: two faces meet, the farther one hidden behind the nearer, and both go back where they
 *   came from: constant-velocity prediction points each track at the other face.
 */
export function makeScenario(kind: ScenarioKind, seed = 1): Scenario {
  const rand = seededRandom(seed * 7919 + SCENARIOS.indexOf(kind));
  const between = (a: number, b: number) => a + (b - a) * rand();
  const walker = (id: number, start = 0, end = FRAMES - 1): SyntheticObject => {
    const h = between(60, 140);
    const m = h;
    return {
      id,
      path: [
        { frame: start, cx: between(m, WIDTH - m), cy: between(m, HEIGHT - m), h },
        { frame: end, cx: between(m, WIDTH - m), cy: between(m, HEIGHT - m), h: h * between(0.85, 1.15) },
      ],
      aspect: between(0.75, 0.85),
    };
  };
  const objects: SyntheticObject[] = [];
  switch (kind) {
    case 'walkers': {
      const n = rand() < 0.5 ? 3 : 4;
      for (let i = 0; i < n; i++)
        objects.push(walker(i + 1, Math.floor(between(0, 40)), Math.floor(between(110, FRAMES))));
      break;
    }
    case 'crossing': {
      const y = between(300, 420);
      const front: SyntheticObject = {
        id: 1,
        path: [
          { frame: 10, cx: 200, cy: y, h: 120 },
          { frame: 139, cx: 1080, cy: y + between(-20, 20), h: 125 },
        ],
      };
      const back: SyntheticObject = {
        id: 2,
        path: [
          { frame: 10, cx: 1080, cy: y + between(-15, 15), h: 100 },
          { frame: 139, cx: 200, cy: y + between(-20, 20), h: 95 },
        ],
      };
      back.occluded = rangesWhere(10, 140, (f) => overlap(front, back, f) > 0.2);
      objects.push(front, back, walker(3));
      objects[2].path.forEach((p) => (p.cy = between(60, 150)));
      break;
    }
    case 'occlusion': {
      for (let i = 0; i < 3; i++) objects.push(walker(i + 1));
      const k = Math.floor(between(8, 21));
      const at = Math.floor(between(50, 90));
      objects[0].occluded = [[at, at + k]];
      break;
    }
    case 'lowScore': {
      const h = between(90, 130);
      const y = between(250, 450);
      const turnX = between(560, 720);
      objects.push({
        id: 1,
        path: [
          { frame: 0, cx: 200, cy: y, h },
          { frame: 75, cx: turnX, cy: y + between(-40, 40), h },
          { frame: FRAMES - 1, cx: turnX + between(-200, 200), cy: y + between(-150, 150), h: h * 1.1 },
        ],
      });
      objects[0].lowScore = [[50, 95]];
      objects.push(walker(2));
      objects[1].path.forEach((p) => (p.cy = between(60, 120)));
      break;
    }
    case 'bounce': {
      const y = between(300, 420);
      const speed = between(4, 6);
      const meet = 70;
      const gap = between(0, 3);
      const a: SyntheticObject = {
        id: 1,
        path: [
          { frame: 0, cx: 640 - gap - speed * meet, cy: y, h: 110 },
          { frame: meet, cx: 640 - gap, cy: y, h: 110 },
          { frame: FRAMES - 1, cx: 640 - gap - speed * (FRAMES - 1 - meet), cy: y, h: 110 },
        ],
      };
      const b: SyntheticObject = {
        id: 2,
        path: [
          { frame: 0, cx: 640 + gap + speed * meet, cy: y + 4, h: 105 },
          { frame: meet, cx: 640 + gap, cy: y + 4, h: 105 },
          { frame: FRAMES - 1, cx: 640 + gap + speed * (FRAMES - 1 - meet), cy: y + 4, h: 105 },
        ],
      };
      b.occluded = rangesWhere(0, FRAMES, (f) => overlap(a, b, f) > 0.3);
      objects.push(a, b);
      break;
    }
  }
  return { name: kind, frames: FRAMES, width: WIDTH, height: HEIGHT, objects };
}

function overlap(a: SyntheticObject, b: SyntheticObject, f: number): number {
  const x = boxAt(a, f);
  const y = boxAt(b, f);
  return x && y ? iou(x, y) : 0;
}

function rangesWhere(from: number, to: number, test: (f: number) => boolean): [number, number][] {
  const out: [number, number][] = [];
  let start: number | undefined;
  for (let f = from; f <= to; f++) {
    const inside = f < to && test(f);
    if (inside && start === undefined) start = f;
    if (!inside && start !== undefined) {
      out.push([start, f]);
      start = undefined;
    }
  }
  return out;
}
