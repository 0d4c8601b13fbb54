import assert from 'node:assert/strict';
import { from, lastValueFrom, toArray } from 'rxjs';
import { linearAssignment } from '../src/tracking/assignment';
import {
  ByteTracker,
  idSource,
  iou,
  trackIdsByDetection,
  type ByteTrackerOptions,
} from '../src/tracking/byteTracker';
import { boxToMeasurement, CHI2_95, KalmanFilter, measurementToBox } from '../src/tracking/kalman';
import { evaluateTracking, type MotFrame } from './helpers/trackingMetrics';
import { cholesky, matMul, matMulTransposed, solveSpd } from '../src/tracking/matrix';
import { FaceTracking, matchTrackedFaces, embedTrackedFaces, trackFaces } from '../src/tracking/operators';
import {
  gaussian,
  makeScenario,
  renderScenario,
  type RenderOptions,
  type ScenarioKind,
  type SyntheticFrame,
} from './helpers/trackingScenarios';
import { faceQuality, TrackIdentities } from '../src/tracking/trackIdentity';
import { UNKNOWN, type Box, type Face, type FaceFrame, type Identity } from '../src/types';
import { seededRandom } from '../src/util/seededRandom';
import type { Embedder } from '../src/models/roles';

// ---------------------------------------------------------------------------------------------
// Helpers

/** Runs a tracker over a synthetic sequence; hypotheses are the detections that got a track id. */
function track(frames: SyntheticFrame[], options: ByteTrackerOptions = {}) {
  const tracker = new ByteTracker(options);
  const mot: MotFrame[] = [];
  /** Ids given to each ground-truth object, frame by frame (undefined: not reported). */
  const idsOf = new Map<number, (number | undefined)[]>();
  for (const frame of frames) {
    const ids = trackIdsByDetection(tracker.update(frame.detections, frame.index));
    const hyp = frame.detections
      .filter((d) => ids.has(d.index))
      .map((d) => ({ id: ids.get(d.index) as number, box: d.box }));
    mot.push({ gt: frame.gt, hyp });
    for (const g of frame.gt) {
      const det = frame.detections.find((d) => d.gt === g.id);
      const list = idsOf.get(g.id) ?? [];
      list[frame.index] = det ? ids.get(det.index) : undefined;
      idsOf.set(g.id, list);
    }
  }
  return { metrics: evaluateTracking(mot), idsOf };
}

const distinct = (ids: (number | undefined)[]) => [...new Set(ids.filter((x) => x !== undefined))];

function scenario(kind: ScenarioKind, seed: number, options: RenderOptions = {}) {
  return renderScenario(makeScenario(kind, seed), { seed, ...options });
}

function identity(name: string, similarity: number, margin = 0.05): Identity {
  return { name, similarity, margin, topK: [{ name, similarity }] };
}

// ---------------------------------------------------------------------------------------------

describe('tracking: matrix helpers', () => {
  it('multiplies, factorises and solves', () => {
    const a = Float64Array.of(4, 2, 2, 3);
    const l = cholesky(a, 2);
    assert.deepEqual(
      [...matMulTransposed(l, l, 2, 2, 2)].map((v) => +v.toFixed(12)),
      [4, 2, 2, 3],
    );
    const x = solveSpd(a, Float64Array.of(2, 1), 2, 1);
    assert.deepEqual(
      [...matMul(a, x, 2, 2, 1)].map((v) => +v.toFixed(12)),
      [2, 1],
    );
    assert.throws(() => cholesky(Float64Array.of(1, 2, 2, 1), 2), /positive definite/);
  });
});

describe('tracking: Kalman filter', () => {
  const truth = (t: number) => [100 + 4 * t, 200 - 2 * t, 0.8, 100 + 0.5 * t];

  it('follows constant-velocity motion with shrinking error', () => {
    const kf = new KalmanFilter();
    const rand = seededRandom(3);
    const measure = (t: number) => {
      const [cx, cy, a, h] = truth(t);
      return [cx + 2 * gaussian(rand), cy + 2 * gaussian(rand), a, h + gaussian(rand)];
    };
    const state = kf.initiate(measure(0));
    const startVariance = state.covariance[0];
    const startVelocityVariance = state.covariance[4 * 8 + 4];
    const err: number[] = [];
    for (let t = 1; t <= 80; t++) {
      kf.predict(state);
      const [cx, cy] = truth(t);
      err.push(Math.hypot(state.mean[0] - cx, state.mean[1] - cy));
      kf.update(state, measure(t));
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const early = mean(err.slice(0, 10));
    const late = mean(err.slice(60));
    assert.ok(late < early / 2, `prediction error early ${early.toFixed(2)} px, late ${late.toFixed(2)} px`);
    assert.ok(late < 3, `late prediction error ${late.toFixed(2)} px, measurement noise is 2 px`);
    assert.ok(Math.abs(state.mean[4] - 4) < 0.3, `vx ${state.mean[4]}`);
    assert.ok(Math.abs(state.mean[5] + 2) < 0.3, `vy ${state.mean[5]}`);
    assert.ok(Math.abs(state.mean[7] - 0.5) < 0.3, `vh ${state.mean[7]}`);
    // Noise is proportional to the height (100 → 140 px here), so compare variances relative to h².
    const relative = state.covariance[0] / state.mean[3] ** 2;
    assert.ok(relative < startVariance / 100 ** 2 / 4, `relative position variance ${relative}`);
    assert.ok(state.covariance[4 * 8 + 4] < startVelocityVariance / 4, 'velocity variance shrinks');
  });

  it('grows its uncertainty when it only predicts', () => {
    const kf = new KalmanFilter();
    const state = kf.initiate(truth(0));
    for (let t = 1; t <= 10; t++) kf.update(kf.predict(state), truth(t));
    const offset = Float64Array.from(state.mean.slice(0, 4));
    offset[0] += 20;
    let variance = state.covariance[0];
    let gating = Infinity;
    for (let i = 0; i < 10; i++) {
      kf.predict(state);
      const g = kf.gatingDistance(
        state,
        Float64Array.of(state.mean[0] + 20, state.mean[1], state.mean[2], state.mean[3]),
      );
      assert.ok(state.covariance[0] > variance, `variance grows at step ${i}`);
      assert.ok(g < gating, `the same 20 px offset becomes more plausible at step ${i}`);
      variance = state.covariance[0];
      gating = g;
    }
  });

  it('gates by Mahalanobis distance', () => {
    const kf = new KalmanFilter();
    const state = kf.initiate(truth(0));
    for (let t = 1; t <= 10; t++) kf.update(kf.predict(state), truth(t));
    kf.predict(state);
    assert.ok(kf.gatingDistance(state, state.mean.slice(0, 4)) < 1e-9);
    const far = Float64Array.of(state.mean[0] + 80, state.mean[1], state.mean[2], state.mean[3]);
    assert.ok(kf.gatingDistance(state, far) > CHI2_95[4]);
    assert.ok(kf.gatingDistance(state, far, true) > CHI2_95[2]);
  });

  it('converts boxes both ways and refuses flat boxes', () => {
    const box: Box = [10, 20, 90, 120];
    assert.deepEqual([...boxToMeasurement(box)], [50, 70, 0.8, 100]);
    assert.deepEqual(measurementToBox(boxToMeasurement(box)), box);
    const kf = new KalmanFilter();
    assert.throws(() => kf.initiate([0, 0, 1, 0]), /positive width and height/);
    assert.throws(() => kf.initiate([NaN, 0, 1, 10]), /not finite/);
    assert.throws(() => kf.predict(kf.initiate([0, 0, 1, 10]), 0), /dt/);
  });
});

// ---------------------------------------------------------------------------------------------

/** Best objective by enumerating every partial assignment: [pairs, total] compared lexicographically. */
function bruteForce(c: number[][], m: number, limit: number): { pairs: number; total: number } {
  const n = c.length;
  const usedCol = new Array<boolean>(m).fill(false);
  let best = { pairs: 0, total: 0 };
  const thresholded = limit !== Infinity;
  const better = (a: { pairs: number; total: number }, b: { pairs: number; total: number }) =>
    thresholded
      ? a.total < b.total - 1e-12
      : a.pairs > b.pairs || (a.pairs === b.pairs && a.total < b.total - 1e-12);
  const visit = (i: number, pairs: number, total: number) => {
    if (i === n) {
      const cand = { pairs, total };
      if (better(cand, best)) best = cand;
      return;
    }
    visit(i + 1, pairs, total);
    for (let j = 0; j < m; j++) {
      const v = c[i][j];
      if (usedCol[j] || v === Infinity || v > limit) continue;
      usedCol[j] = true;
      visit(i + 1, pairs + 1, total + (thresholded ? v - limit : v));
      usedCol[j] = false;
    }
  };
  visit(0, 0, 0);
  return best;
}

describe('tracking: linear assignment', () => {
  it('equals brute force on 200 random small matrices', () => {
    const rand = seededRandom(11);
    for (let k = 0; k < 200; k++) {
      const n = Math.floor(rand() * 7);
      const m = Math.floor(rand() * 7);
      const negative = rand() < 0.2;
      const c = Array.from({ length: n }, () =>
        Array.from({ length: m }, () => (rand() < 0.1 ? Infinity : negative ? rand() * 1.5 - 0.5 : rand())),
      );
      const limit = rand() < 0.5 ? Infinity : 0.2 + 0.8 * rand();
      const result = linearAssignment({ rows: n, cols: m, data: c.flat() }, limit);
      const rows = new Set<number>();
      const cols = new Set<number>();
      let total = 0;
      for (const [i, j] of result.matches) {
        assert.ok(!rows.has(i) && !cols.has(j), `matrix ${k}: row or column used twice`);
        rows.add(i);
        cols.add(j);
        assert.ok(c[i][j] <= limit && c[i][j] !== Infinity, `matrix ${k}: pair over the limit`);
        total += limit === Infinity ? c[i][j] : c[i][j] - limit;
      }
      assert.deepEqual(
        [...result.unmatchedRows, ...rows].sort((a, b) => a - b),
        [...Array(n).keys()],
        `matrix ${k}: rows`,
      );
      assert.deepEqual(
        [...result.unmatchedCols, ...cols].sort((a, b) => a - b),
        [...Array(m).keys()],
      );
      const best = bruteForce(c, m, limit);
      if (limit === Infinity) assert.equal(result.matches.length, best.pairs, `matrix ${k}: cardinality`);
      assert.ok(
        Math.abs(total - best.total) < 1e-9,
        `matrix ${k} (${n}×${m}, limit ${limit}): ${total} vs ${best.total}`,
      );
    }
  });

  it('leaves pairs above the threshold unassigned', () => {
    const r = linearAssignment(
      [
        [0.1, 0.9],
        [0.9, 0.95],
      ],
      0.5,
    );
    assert.deepEqual(r.matches, [[0, 0]]);
    assert.deepEqual(r.unmatchedRows, [1]);
    assert.deepEqual(r.unmatchedCols, [1]);
    // Without the threshold both rows are paired, at the least total.
    assert.deepEqual(
      linearAssignment([
        [0.1, 0.9],
        [0.9, 0.95],
      ]).matches,
      [
        [0, 0],
        [1, 1],
      ],
    );
    // A pair exactly at the limit is worth nothing, and is not made.
    assert.deepEqual(linearAssignment([[0.5]], 0.5).matches, []);
    assert.deepEqual(linearAssignment([[0.4999]], 0.5).matches, [[0, 0]]);
  });

  it('handles empty and rectangular matrices', () => {
    assert.deepEqual(linearAssignment([]), { matches: [], unmatchedRows: [], unmatchedCols: [] });
    assert.deepEqual(linearAssignment({ rows: 0, cols: 3, data: [] }, 0.5).unmatchedCols, [0, 1, 2]);
    assert.deepEqual(linearAssignment({ rows: 2, cols: 0, data: [] }).unmatchedRows, [0, 1]);
    const wide = [
      [5, 1, 9, 4],
      [2, 8, 1, 7],
    ];
    assert.deepEqual(linearAssignment(wide).matches, [
      [0, 1],
      [1, 2],
    ]);
    const tall = [
      [5, 2],
      [1, 8],
      [9, 1],
      [4, 7],
    ];
    const r = linearAssignment(tall);
    assert.deepEqual(r.matches, [
      [1, 0],
      [2, 1],
    ]);
    assert.deepEqual(r.unmatchedRows, [0, 3]);
    // A gate (Infinity) is never used, even when it costs a pair.
    assert.deepEqual(
      linearAssignment([
        [Infinity, Infinity],
        [1, Infinity],
      ]).matches,
      [[1, 0]],
    );
  });

  it('refuses bad input', () => {
    assert.throws(() => linearAssignment([[0, NaN]]), /cost\[0\]\[1\] is NaN/);
    assert.throws(() => linearAssignment([[-Infinity]]), /costs must be numbers/);
    assert.throws(() => linearAssignment([[0, 1], [0]]), /row 1 has 1 entries/);
    assert.throws(() => linearAssignment([[0]], NaN), /maxCost/);
    assert.throws(() => linearAssignment({ rows: 2, cols: 2, data: [1, 2, 3] }), /needs 4 entries/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('tracking: metrics', () => {
  const b = (x: number): Box => [x, 0, x + 10, 10];

  it('scores a perfect run 1 and a swap by its definitions', () => {
    const perfect: MotFrame[] = [0, 1, 2].map((t) => ({
      gt: [
        { id: 1, box: b(t) },
        { id: 2, box: b(100 + t) },
      ],
      hyp: [
        { id: 7, box: b(t) },
        { id: 8, box: b(100 + t) },
      ],
    }));
    const p = evaluateTracking(perfect);
    assert.equal(p.mota, 1);
    assert.equal(p.idf1, 1);
    assert.equal(p.idsw, 0);

    // Four frames; the hypothesis ids swap after frame 1; frame 3 has a false positive and a miss.
    const swap: MotFrame[] = [
      {
        gt: [
          { id: 1, box: b(0) },
          { id: 2, box: b(100) },
        ],
        hyp: [
          { id: 7, box: b(0) },
          { id: 8, box: b(100) },
        ],
      },
      {
        gt: [
          { id: 1, box: b(1) },
          { id: 2, box: b(101) },
        ],
        hyp: [
          { id: 7, box: b(1) },
          { id: 8, box: b(101) },
        ],
      },
      {
        gt: [
          { id: 1, box: b(2) },
          { id: 2, box: b(102) },
        ],
        hyp: [
          { id: 8, box: b(2) },
          { id: 7, box: b(102) },
        ],
      },
      {
        gt: [
          { id: 1, box: b(3) },
          { id: 2, box: b(103) },
        ],
        hyp: [
          { id: 8, box: b(3) },
          { id: 9, box: b(300) },
        ],
      },
    ];
    const s = evaluateTracking(swap);
    assert.equal(s.gt, 8);
    assert.equal(s.fp, 1);
    assert.equal(s.fn, 1);
    assert.equal(s.idsw, 2);
    assert.equal(s.mota, 1 - (1 + 1 + 2) / 8);
    // Best global matching: 1↔7 (2 frames) and 2↔8 (2 frames), or 1↔8 (2) and 2↔7 (1 + 1): IDTP 4.
    assert.equal(s.idtp, 4);
    assert.equal(s.hyp, 8);
    assert.equal(s.idf1, (2 * 4) / (2 * 4 + (8 - 4) + (8 - 4)));
  });

  it('keeps a pair that still overlaps rather than switching', () => {
    // Hypothesis 8 fits object 1 better in frame 1, but 7 still overlaps it: no switch.
    const frames: MotFrame[] = [
      { gt: [{ id: 1, box: b(0) }], hyp: [{ id: 7, box: b(0) }] },
      {
        gt: [{ id: 1, box: b(0) }],
        hyp: [
          { id: 7, box: b(2) },
          { id: 8, box: b(0) },
        ],
      },
    ];
    const m = evaluateTracking(frames);
    assert.equal(m.idsw, 0);
    assert.equal(m.fp, 1);
  });
});

// ---------------------------------------------------------------------------------------------

describe('ByteTracker on synthetic sequences', () => {
  it('follows walkers with no identity switch', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const { metrics } = track(scenario('walkers', seed));
      assert.equal(metrics.idsw, 0, `seed ${seed}`);
      assert.ok(metrics.mota > 0.9, `seed ${seed}: MOTA ${metrics.mota}`);
      assert.ok(metrics.idf1 > 0.95, `seed ${seed}: IDF1 ${metrics.idf1}`);
    }
  });

  it('keeps the ids of two faces that cross, the farther one hidden while they overlap', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const frames = scenario('crossing', seed);
      const hidden = frames.filter((f) => !f.gt.some((g) => g.id === 2) && f.index > 10 && f.index < 139);
      assert.ok(hidden.length >= 5, `seed ${seed}: the back face is hidden for ${hidden.length} frames`);
      const { metrics, idsOf } = track(frames);
      assert.equal(metrics.idsw, 0, `seed ${seed}`);
      assert.equal(distinct(idsOf.get(1) ?? []).length, 1, `seed ${seed}: front face`);
      assert.equal(distinct(idsOf.get(2) ?? []).length, 1, `seed ${seed}: back face, across its occlusion`);
    }
  });

  it('recovers a face hidden for up to 20 frames with its old id', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const s = makeScenario('occlusion', seed);
      const [from, to] = (s.objects[0].occluded as [number, number][])[0];
      const { idsOf } = track(renderScenario(s, { seed }));
      const ids = idsOf.get(1) as (number | undefined)[];
      const before = distinct(ids.slice(0, from));
      const after = distinct(ids.slice(to));
      assert.equal(before.length, 1, `seed ${seed}`);
      assert.deepEqual(after, before, `seed ${seed}: hidden ${to - from} frames`);
    }
  });

  it('keeps a face through low scores, where a tracker of confident boxes only loses it', () => {
    let byteReported = 0;
    let highReported = 0;
    for (let seed = 1; seed <= 5; seed++) {
      const frames = scenario('lowScore', seed);
      const byte = track(frames);
      // SORT-like: only confident detections exist for it.
      const high = track(frames, { lowThreshold: 0.6 });
      const byteIds = byte.idsOf.get(1) as (number | undefined)[];
      const highIds = high.idsOf.get(1) as (number | undefined)[];
      assert.equal(distinct(byteIds).length, 1, `seed ${seed}: ByteTrack keeps one id`);
      assert.ok(distinct(highIds).length >= 2, `seed ${seed}: high-only starts over after the low spell`);
      byteReported += byteIds.slice(50, 95).filter((x) => x !== undefined).length;
      highReported += highIds.slice(50, 95).filter((x) => x !== undefined).length;
      assert.ok(
        byte.metrics.idf1 > high.metrics.idf1 + 0.1,
        `seed ${seed}: IDF1 ${byte.metrics.idf1} vs ${high.metrics.idf1}`,
      );
    }
    assert.equal(highReported, 0);
    assert.ok(byteReported > 0.9 * 5 * 45, `reported in ${byteReported} of the 225 low-score frames`);
  });

  it('swaps two faces that meet and turn back when it has IoU alone', () => {
    let swapped = 0;
    for (let seed = 1; seed <= 5; seed++) if (track(scenario('bounce', seed)).metrics.idsw > 0) swapped++;
    assert.equal(swapped, 5, 'the case embedding fusion is for (see trackingReal.test.ts)');
  });

  it('starts no track from short-lived false positives', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const frames = scenario('walkers', seed, { falsePositiveRate: 0.3, falsePositiveFrames: 2 });
      const { metrics } = track(frames);
      assert.equal(metrics.hypTracks, metrics.gtTracks, `seed ${seed}`);
      assert.equal(metrics.fp, 0, `seed ${seed}`);
    }
  });

  it('gives ids only on confirmation, increasing and never reused', () => {
    const tracker = new ByteTracker({ minHits: 3 });
    const d = (x: number, score = 0.9) => ({ box: [x, 100, x + 80, 200] as Box, score });
    const seen: number[] = [];
    let removed = 0;
    for (let f = 0; f < 200; f++) {
      // A face that comes and goes: present 10 frames, absent 40 (longer than the buffer of 30).
      const dets = f % 50 < 10 ? [d(100 + f)] : [];
      const states = tracker.update(dets, f);
      if (f % 50 < 2) assert.equal(trackIdsByDetection(states).size, 0, `frame ${f}: tentative has no id`);
      for (const s of states) {
        if (s.status === 'removed') removed++;
        if (s.id !== undefined && !seen.includes(s.id)) {
          assert.ok(
            seen.every((old) => old < (s.id as number)),
            'ids increase',
          );
          seen.push(s.id);
        }
      }
    }
    assert.deepEqual(seen, [1, 2, 3, 4]);
    assert.equal(removed, 4, 'each track is reported removed once');

    // One-frame blips never get an id.
    const blips = new ByteTracker();
    for (let f = 0; f < 20; f++) {
      const states = blips.update(f % 2 ? [d(f * 100)] : [], f);
      assert.ok(states.every((s) => s.id === undefined));
    }
  });

  it('shares an id source between trackers and does not depend on detection order', () => {
    const ids = idSource(100);
    const a = new ByteTracker({ nextId: ids });
    const b = new ByteTracker({ nextId: ids });
    const frames = scenario('walkers', 3);
    const shuffled = frames.map((f) => ({ ...f, detections: [...f.detections].reverse() }));
    for (let i = 0; i < frames.length; i++) {
      const ia = trackIdsByDetection(a.update(frames[i].detections, i));
      const ib = trackIdsByDetection(b.update(shuffled[i].detections, i));
      for (const det of frames[i].detections) {
        const x = ia.get(det.index);
        const y = ib.get(det.index);
        assert.equal(x === undefined, y === undefined, `frame ${i}`);
        if (x !== undefined && y !== undefined) assert.ok(x >= 100 && y >= 100 && x !== y);
      }
    }
  });

  it('predicts across dropped frames and checks its input', () => {
    const tracker = new ByteTracker({ minHits: 1 });
    const box = (x: number): Box => [x, 100, x + 80, 200];
    for (let f = 0; f < 10; f++) tracker.update([{ box: box(10 * f), score: 0.9 }], f);
    // Five frames dropped: the face moved 60 px, the prediction follows it.
    const states = tracker.update([{ box: box(150), score: 0.9 }], 15);
    assert.equal(trackIdsByDetection(states).get(0), 1);
    assert.ok(iou(states[0].box, box(150)) > 0.8);
    assert.throws(() => tracker.update([], 15), /must increase/);
    assert.throws(() => tracker.update([{ box: [0, 0, NaN, 1], score: 0.9 }], 16), /finite/);
    assert.throws(() => tracker.update([{ box: box(0), score: NaN }], 17), /score/);
    // An empty box is ignored rather than fed to the filter.
    assert.equal(trackIdsByDetection(tracker.update([{ box: [5, 5, 5, 9], score: 0.9 }], 18)).size, 0);
    assert.throws(() => new ByteTracker({ lowThreshold: 0.7, highThreshold: 0.6 }), /lowThreshold/);
    assert.throws(() => new ByteTracker({ minHits: 0 }), /minHits/);
    assert.throws(() => new ByteTracker({ fuseEmbedding: 2 }), /fuseEmbedding/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('TrackIdentities', () => {
  it('asks for an embedding on the first frame, every N frames, and on a clearly better view', () => {
    const ids = new TrackIdentities({ embedEvery: 5, qualityGain: 0.25 });
    const face = (side: number, score = 0.9) => ({ box: [0, 0, side, side] as Box, score });
    const q = faceQuality(face(100));
    const asked = [];
    for (let f = 0; f < 12; f++) asked.push(ids.needsEmbedding(1, q, f));
    assert.deepEqual(
      asked.map((x, f) => (x ? f : -1)).filter((f) => f >= 0),
      [0, 5, 10],
    );
    assert.equal(ids.needsEmbedding(1, q, 10), false, 'once per frame');
    assert.equal(ids.needsEmbedding(1, faceQuality(face(120)), 11), false, '20 % bigger is not enough');
    assert.equal(ids.needsEmbedding(1, faceQuality(face(130)), 11), true, '30 % bigger is');
    assert.equal(ids.needsEmbedding(1, faceQuality(face(130, 0.95)), 12), false);
    assert.ok(faceQuality({ box: [0, 0, 100, 100], score: 0.9, quality: { sharpness: 50 } }) > q);
  });

  it('slows down for a settled track, and speeds up when its face changes or its votes disagree', () => {
    const ids = new TrackIdentities({ embedEvery: 5, settledEmbedEvery: 20 });
    const embeddedAt: number[] = [];
    const step = (f: number, name: string, changed = false, similarity = 0.7) => {
      if (!ids.needsEmbedding(1, 100, f, changed)) return;
      embeddedAt.push(f);
      ids.vote(1, identity(name, similarity), undefined, 0.5);
    };
    for (let f = 0; f < 30; f++) step(f, 'amy');
    assert.deepEqual(embeddedAt, [0, 5, 25], 'two agreeing votes settle the track (settleVotes 2)');
    step(30, 'amy', true);
    for (let f = 31; f < 60; f++) step(f, 'amy');
    assert.deepEqual(embeddedAt.slice(3), [30, 35, 55], 'a change of face: embedded at once, settled anew');
    embeddedAt.length = 0;
    // Settled on amy, due again at 75, where the vote says raj: back to every 5 frames until raj's
    // second vote settles it again.
    for (let f = 60; f < 95; f++) step(f, 'raj');
    assert.deepEqual(embeddedAt, [75, 80], 'a disagreeing vote unsettles the track');
  });

  it('does not settle a track on close calls or on two embeddings of nearly the same frame', () => {
    const ids = new TrackIdentities({ embedEvery: 5, settledEmbedEvery: 20 });
    const embeddedAt: number[] = [];
    for (let f = 0; f < 30; f++) {
      if (!ids.needsEmbedding(1, 100, f)) continue;
      embeddedAt.push(f);
      // 0.51 against a threshold of 0.5: inside FaceRes's ambiguity margin (0.03), either way by chance.
      ids.vote(1, identity(UNKNOWN, 0.51), undefined, 0.5);
    }
    assert.deepEqual(embeddedAt, [0, 5, 10, 15, 20, 25]);
    // A clearly better view one frame after the first counts once: the pace stays 5 until frame 6 agrees.
    const fresh = new TrackIdentities({ embedEvery: 5, settledEmbedEvery: 20 });
    const at: number[] = [];
    for (let f = 0; f < 30; f++) {
      if (!fresh.needsEmbedding(2, f === 1 ? 200 : 100, f)) continue;
      at.push(f);
      fresh.vote(2, identity('amy', 0.7), undefined, 0.5);
    }
    assert.deepEqual(at, [0, 1, 6, 26]);
    assert.throws(() => new TrackIdentities({ embedEvery: 5, settledEmbedEvery: 4 }), /settledEmbedEvery/);
    assert.throws(() => new TrackIdentities({ settleVotes: 0 }), /settleVotes/);
    assert.equal(
      new TrackIdentities({ embedEvery: 3 }).settledEmbedEvery,
      18,
      'six times embedEvery by default',
    );
  });

  it('names a track by a similarity-weighted vote over its recent matches', () => {
    const ids = new TrackIdentities({ window: 10 });
    const sequence = ['amy', 'amy', 'raj', 'amy', 'amy', 'raj', 'amy', 'raj', 'amy', 'amy'];
    let last;
    for (const name of sequence) last = ids.vote(1, identity(name, name === 'amy' ? 0.6 : 0.55));
    assert.equal(last?.identity.name, 'amy');
    assert.equal(last?.votes, 10);
    assert.ok(Math.abs((last?.share ?? 0) - (7 * 0.6) / (7 * 0.6 + 3 * 0.55)) < 1e-9);
    assert.deepEqual(
      last?.identity.topK.map((c) => c.name),
      ['amy', 'raj'],
    );
    assert.ok(Math.abs((last?.identity.similarity ?? 0) - 0.6) < 1e-9);
    // The window slides: ten votes for raj outvote every old one.
    for (let i = 0; i < 6; i++) last = ids.vote(1, identity('raj', 0.55));
    assert.equal(last?.identity.name, 'raj');
    assert.equal(last?.votes, 10);
    assert.equal(ids.get(2), undefined);
    assert.throws(() => ids.vote(1, identity('x', NaN)), /finite similarity/);
  });

  it('starts the vote of a track over when its face changes (a box passed to someone else)', () => {
    const ids = new TrackIdentities({ changeSimilarity: 0.5 });
    const a = Float32Array.from([1, 0, 0]);
    const nearA = Float32Array.from([0.8, 0.6, 0]);
    const b = Float32Array.from([0, 0, 1]);
    for (let i = 0; i < 4; i++) ids.vote(1, identity('amy', 0.7), i % 2 ? nearA : a);
    assert.equal(ids.get(1)?.votes, 4, 'a similar view keeps the votes');
    const after = ids.vote(1, identity('raj', 0.6), b);
    assert.equal(after.votes, 1);
    assert.equal(after.identity.name, 'raj');
    assert.throws(() => new TrackIdentities({ changeSimilarity: NaN }), /changeSimilarity/);
  });

  it('keeps a stranger unknown despite a stray match just above the threshold', () => {
    const ids = new TrackIdentities();
    let last;
    for (let i = 0; i < 10; i++)
      last = ids.vote(1, i % 5 === 2 ? identity('amy', 0.53) : identity(UNKNOWN, 0.41));
    assert.equal(last?.identity.name, UNKNOWN);
  });

  it('keeps a track that is mostly ambiguous unnamed and ambiguous, with its candidates', () => {
    const ids = new TrackIdentities();
    const ambiguous = (a: number, b: number) => ({
      name: UNKNOWN,
      similarity: a,
      margin: a - b,
      ambiguous: true,
      topK: [
        { name: 'amy', similarity: a },
        { name: 'raj', similarity: b },
      ],
    });
    const clear = { ...identity('amy', 0.95), ambiguous: false };
    let last;
    for (let i = 0; i < 6; i++) last = ids.vote(1, i % 3 === 0 ? clear : ambiguous(0.94, 0.938));
    assert.equal(last?.identity.name, UNKNOWN, 'four ambiguous views outvote two clear ones');
    assert.equal(last?.identity.ambiguous, true);
    assert.deepEqual(
      last?.identity.topK.map((c) => [c.name, Number(c.similarity.toFixed(3))]),
      [
        ['amy', 0.94],
        ['raj', 0.938],
      ],
    );
    // A plain stranger is not ambiguous, though one of its views was.
    for (let i = 0; i < 6; i++) last = ids.vote(2, i === 0 ? ambiguous(0.93, 0.929) : identity(UNKNOWN, 0.8));
    assert.deepEqual([last?.identity.name, last?.identity.ambiguous], [UNKNOWN, false]);
    // Clear views win back the name.
    for (let i = 0; i < 8; i++) last = ids.vote(1, clear);
    assert.deepEqual([last?.identity.name, last?.identity.ambiguous], ['amy', false]);
  });

  it('re-identifies a new track from an ended one of the same camera, within the window only', () => {
    const e = (x: number, y: number) => {
      const v = Float32Array.of(x, y, 0);
      const n = Math.hypot(x, y);
      return v.map((a) => a / n);
    };
    const run = (gapMs: number, embedding: Float32Array, group = 'cam') => {
      const ids = new TrackIdentities({ reidWindowMs: 5000, reidSimilarity: 0.9 });
      ids.observe([{ id: 1, status: 'confirmed', detection: 0 }], { ts: 0, group: 'cam' });
      for (let i = 0; i < 4; i++) ids.vote(1, identity('amy', 0.7), e(1, 0.1));
      ids.observe([{ id: 1, status: 'confirmed', detection: 0 }], { ts: 1000, group: 'cam' });
      ids.observe([{ id: 1, status: 'lost' }], { ts: 1100, group: 'cam' });
      ids.observe([{ id: 2, status: 'confirmed', detection: 0 }], { ts: 1000 + gapMs, group });
      return ids.vote(2, identity(UNKNOWN, 0.45), embedding);
    };
    const inherited = run(3000, e(1, 0.15));
    assert.equal(inherited.reidentifiedFrom, 1);
    assert.equal(inherited.identity.name, 'amy');
    assert.equal(inherited.votes, 5);
    assert.equal(run(6000, e(1, 0.15)).reidentifiedFrom, undefined, 'too late');
    assert.equal(run(6000, e(1, 0.15)).identity.name, UNKNOWN);
    assert.equal(run(3000, e(0.2, 1)).reidentifiedFrom, undefined, 'someone else');
    assert.equal(run(3000, e(1, 0.15), 'other camera').reidentifiedFrom, undefined, 'another camera');
  });

  it('does not re-identify from a track seen at the same time', () => {
    const ids = new TrackIdentities({ reidSimilarity: 0.5 });
    const v = Float32Array.of(1, 0);
    ids.observe(
      [
        { id: 1, status: 'confirmed', detection: 0 },
        { id: 2, status: 'confirmed', detection: 1 },
      ],
      { ts: 0 },
    );
    ids.vote(1, identity('amy', 0.7), v);
    ids.observe(
      [
        { id: 1, status: 'lost' },
        { id: 2, status: 'confirmed', detection: 1 },
      ],
      { ts: 100 },
    );
    assert.equal(ids.vote(2, identity('amy', 0.7), v).reidentifiedFrom, undefined);
  });

  it('forgets removed tracks once they are too old to inherit', () => {
    const ids = new TrackIdentities({ reidWindowMs: 1000 });
    ids.observe([{ id: 1, status: 'confirmed', detection: 0 }], { ts: 0 });
    ids.vote(1, identity('amy', 0.7));
    ids.observe([{ id: 1, status: 'removed' }], { ts: 500 });
    assert.equal(ids.size, 1);
    ids.observe([], { ts: 1200 });
    assert.equal(ids.size, 0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('tracking operators (synthetic frames)', () => {
  const frameOf = (cameraId: string, seq: number) => ({
    cameraId,
    seq,
    ts: seq * 66,
    width: 320,
    height: 240,
    rgb: Buffer.alloc(320 * 240 * 3, 100),
  });
  const faceAt = (x: number, score = 0.9): Face => ({
    box: [x, 60, x + 60, 135],
    score,
    landmarks: [
      [x + 18, 85],
      [x + 42, 85],
      [x + 30, 100],
      [x + 20, 115],
      [x + 40, 115],
    ],
  });

  it('sets trackId per camera with ids unique across cameras', async () => {
    const items: FaceFrame[] = [];
    for (let seq = 0; seq < 8; seq++) {
      items.push({ frame: frameOf('a', seq), faces: [faceAt(20 + 3 * seq), faceAt(200 - 3 * seq)] });
      items.push({ frame: frameOf('b', seq), faces: [faceAt(50 + 2 * seq)] });
    }
    const out = await lastValueFrom(from(items).pipe(trackFaces({ minHits: 2 }), toArray()));
    const idsOn = (camera: string) =>
      new Set(out.filter((x) => x.frame.cameraId === camera).flatMap((x) => x.faces.map((f) => f.trackId)));
    const a = [...idsOn('a')].filter((x) => x !== undefined);
    const b = [...idsOn('b')].filter((x) => x !== undefined);
    assert.equal(a.length, 2);
    assert.equal(b.length, 1);
    assert.ok(!a.includes(b[0] as number));
    assert.equal(out[0].faces[0].trackId, undefined, 'no id on the first frame');
    assert.equal(out[0].faces[0].tentative, true, 'marked tentative until its track is confirmed');
    assert.equal(items[0].faces[0].tentative, undefined, 'the input face is not changed');
    const confirmed = out[out.length - 2].faces[0];
    assert.ok(confirmed.trackId !== undefined && confirmed.tentative === undefined);
  });

  it('embeds a track every N frames and gives every face of the track its voted identity', async () => {
    let embedded = 0;
    const embedder: Embedder = {
      role: 'embedder',
      id: 'fake',
      dimension: 2,
      inputSize: 112,
      framing: { size: 112, zoom: 1, shiftY: 0 },
      defaultThreshold: 0.5,
      embed: async (crops) => {
        embedded += crops.length;
        return crops.map(() => Float32Array.of(1, 0));
      },
      dispose: async () => undefined,
    };
    // Every second match names the wrong person, a little less surely.
    let matches = 0;
    const gallery = {
      match: (): Identity => (++matches % 2 === 0 ? identity('raj', 0.55) : identity('amy', 0.7)),
    };
    const tracking = new FaceTracking({ minHits: 1, embedEvery: 5 });
    const items = Array.from({ length: 20 }, (_, seq) => ({
      frame: frameOf('a', seq),
      faces: [faceAt(20 + 2 * seq)],
    }));
    const out = await lastValueFrom(
      from(items).pipe(
        trackFaces(tracking),
        embedTrackedFaces(tracking, embedder),
        matchTrackedFaces(tracking, gallery, { threshold: 0.5 }),
        toArray(),
      ),
    );
    assert.equal(embedded, 4, 'frames 0, 5, 10, 15');
    assert.equal(matches, 4);
    for (const item of out) {
      assert.equal(item.faces[0].trackId, 1);
      assert.equal(item.faces[0].identity?.name, 'amy', `frame ${item.frame.seq}`);
    }
    assert.equal(out[5].faces[0].identity?.topK.length, 2, 'raj had a vote by frame 5');
    assert.ok(out[5].faces[0].embedding && !out[6].faces[0].embedding);
  });

  it('asks for a threshold', async () => {
    const tracking = new FaceTracking();
    await assert.rejects(
      lastValueFrom(
        from([{ frame: frameOf('a', 0), faces: [] }]).pipe(
          matchTrackedFaces(tracking, { match: () => identity('a', 1) }),
        ),
      ),
      /needs a threshold/,
    );
  });
});
