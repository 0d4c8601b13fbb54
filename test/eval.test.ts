import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import {
  accuracyAt,
  auc,
  bestThreshold,
  equalErrorRate,
  rocCurve,
  ScoredPair,
  splitScores,
  summarize,
  thresholdForFar,
} from '../src/eval/metrics';
import { checkFolds, kFoldAccuracy } from '../src/eval/kfold';
import { parsePairsCsv } from '../src/cli/commands/evalPairs';
import {
  escapeXml,
  HISTOGRAM_SIZE,
  histogramSvg,
  ROC_SIZE,
  rocSvg,
  writeHistogramPng,
  writeRocPng,
} from '../src/eval/plot';

function pairs(genuine: number[], impostor: number[]): ScoredPair[] {
  return [
    ...genuine.map((similarity) => ({ similarity, same: true })),
    ...impostor.map((similarity) => ({ similarity, same: false })),
  ];
}

function close(actual: number, expected: number, eps = 1e-9): void {
  assert.ok(Math.abs(actual - expected) <= eps, `expected ${expected}, got ${actual}`);
}

/** Deterministic pseudo-random numbers in [0, 1). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

// Sorted descending: 0.9 G, 0.8 G, 0.7 I, 0.6 G, 0.3 I, 0.2 I
const MIXED = pairs([0.9, 0.8, 0.6], [0.7, 0.3, 0.2]);

describe('eval metrics', () => {
  describe('summarize', () => {
    it('computes count, mean, population std, min, max and median', () => {
      const s = summarize([4, 1, 3, 2]);
      assert.equal(s.count, 4);
      close(s.mean, 2.5);
      close(s.std, Math.sqrt(1.25));
      assert.equal(s.min, 1);
      assert.equal(s.max, 4);
      close(s.median, 2.5);
      assert.equal(summarize([5, 1, 3]).median, 3);
    });

    it('returns count 0 and NaN elsewhere for an empty list', () => {
      const s = summarize([]);
      assert.equal(s.count, 0);
      for (const v of [s.mean, s.std, s.min, s.max, s.median]) assert.ok(Number.isNaN(v));
    });

    it('rejects non-finite values by index', () => {
      assert.throws(() => summarize([1, Infinity]), /values\[1\]/);
    });
  });

  describe('accuracyAt', () => {
    it('counts similarity >= threshold as same', () => {
      assert.deepEqual(accuracyAt(MIXED, 0.65), {
        threshold: 0.65,
        accuracy: 4 / 6,
        tp: 2,
        fp: 1,
        tn: 2,
        fn: 1,
      });
      const atHalf = accuracyAt(MIXED, 0.5);
      assert.deepEqual([atHalf.tp, atHalf.fp, atHalf.tn, atHalf.fn], [3, 1, 2, 0]);
      close(atHalf.accuracy, 5 / 6);
      // Equality counts as accepted.
      const atEdge = accuracyAt(MIXED, 0.7);
      assert.deepEqual([atEdge.tp, atEdge.fp], [2, 1]);
    });

    it('gives NaN accuracy for no pairs', () => {
      const r = accuracyAt([], 0.5);
      assert.ok(Number.isNaN(r.accuracy));
      assert.equal(r.tp + r.fp + r.tn + r.fn, 0);
    });
  });

  describe('bestThreshold', () => {
    it('picks the lowest midpoint with the best accuracy', () => {
      const best = bestThreshold(MIXED);
      close(best.threshold, 0.45);
      close(best.accuracy, 5 / 6);
    });

    it('separates perfectly separable pairs', () => {
      const best = bestThreshold(pairs([0.9, 0.8], [0.1, 0.2]));
      close(best.threshold, 0.5);
      assert.equal(best.accuracy, 1);
    });

    it('falls back to an extreme when no split helps', () => {
      // Reversed scores: every split is worse than accepting everything (accuracy 1/2).
      const best = bestThreshold(pairs([0.1, 0.2], [0.8, 0.9]));
      assert.equal(best.accuracy, 0.5);
      assert.ok(best.threshold < 0.1);
      assert.equal(accuracyAt(pairs([0.1, 0.2], [0.8, 0.9]), best.threshold).accuracy, 0.5);
      // Only impostors: rejecting everything is right, so the threshold lies above the largest.
      const reject = bestThreshold(pairs([], [0.3, 0.4]));
      assert.equal(reject.accuracy, 1);
      assert.ok(reject.threshold > 0.4);
    });

    it('matches a brute-force search over every candidate threshold', () => {
      const rand = lcg(7);
      const data = Array.from({ length: 300 }, () => {
        const same = rand() < 0.4;
        // Rounded to force ties.
        const similarity = Math.round((same ? 0.35 + 0.5 * rand() : 0.6 * rand()) * 50) / 50;
        return { similarity, same };
      });
      const best = bestThreshold(data);
      const candidates = [-1, 2, ...data.map((p) => p.similarity)];
      const bruteForce = Math.max(...candidates.map((t) => accuracyAt(data, t).accuracy));
      close(best.accuracy, bruteForce);
      close(accuracyAt(data, best.threshold).accuracy, best.accuracy);
    });

    it('throws on an empty list', () => {
      assert.throws(() => bestThreshold([]), /no pairs/);
    });
  });

  describe('rocCurve and auc', () => {
    it('produces one hand-checked point per distinct threshold', () => {
      const roc = rocCurve(MIXED);
      assert.equal(roc.length, 7);
      assert.ok(roc[0].threshold > 0.9);
      const expected = [
        [0, 0],
        [0.9, 0, 1 / 3],
        [0.8, 0, 2 / 3],
        [0.7, 1 / 3, 2 / 3],
        [0.6, 1 / 3, 1],
        [0.3, 2 / 3, 1],
        [0.2, 1, 1],
      ];
      assert.deepEqual({ far: roc[0].far, tar: roc[0].tar }, { far: 0, tar: 0 });
      for (let i = 1; i < expected.length; i++) {
        const [threshold, far, tar] = expected[i];
        assert.equal(roc[i].threshold, threshold);
        close(roc[i].far, far);
        close(roc[i].tar, tar);
      }
      close(auc(roc), 8 / 9);
    });

    it('gives AUC 1 for perfect separation and 0 when reversed', () => {
      assert.equal(auc(rocCurve(pairs([0.9, 0.8], [0.1, 0.2]))), 1);
      assert.equal(auc(rocCurve(pairs([0.1, 0.2], [0.8, 0.9]))), 0);
    });

    it('merges ties into one diagonal step that counts one half', () => {
      const roc = rocCurve(pairs([0.5, 0.5], [0.5, 0.1]));
      assert.deepEqual(
        roc.slice(1).map((p) => [p.threshold, p.far, p.tar]),
        [
          [0.5, 0.5, 1],
          [0.1, 1, 1],
        ],
      );
      close(auc(roc), 0.75);
      // All scores equal: a single diagonal from (0,0) to (1,1).
      const flat = rocCurve(pairs([0.4, 0.4], [0.4]));
      assert.equal(flat.length, 2);
      close(auc(flat), 0.5);
    });

    it('agrees with the Mann-Whitney statistic on random data with ties', () => {
      const rand = lcg(12345);
      const genuine = Array.from({ length: 120 }, () => Math.round((0.3 + 0.6 * rand()) * 40) / 40);
      const impostor = Array.from({ length: 150 }, () => Math.round(0.6 * rand() * 40) / 40);
      let wins = 0;
      for (const g of genuine) for (const i of impostor) wins += g > i ? 1 : g === i ? 0.5 : 0;
      const roc = rocCurve(pairs(genuine, impostor));
      close(auc(roc), wins / (genuine.length * impostor.length), 1e-12);
      // Thresholds strictly fall, rates never fall, and the curve ends at (1, 1).
      for (let i = 1; i < roc.length; i++) {
        assert.ok(roc[i].threshold < roc[i - 1].threshold);
        assert.ok(roc[i].far >= roc[i - 1].far && roc[i].tar >= roc[i - 1].tar);
      }
      assert.deepEqual([roc[roc.length - 1].far, roc[roc.length - 1].tar], [1, 1]);
      assert.equal(roc.length, new Set([...genuine, ...impostor]).size + 1);
      // Each point matches the confusion counts at its threshold.
      for (const p of roc) {
        const a = accuracyAt(pairs(genuine, impostor), p.threshold);
        close(p.tar, a.tp / genuine.length);
        close(p.far, a.fp / impostor.length);
      }
    });

    it('sorts points before integrating and needs both classes', () => {
      const roc = rocCurve(MIXED);
      close(auc([...roc].reverse()), 8 / 9);
      assert.throws(() => rocCurve(pairs([0.5], [])), /at least one genuine and one impostor/);
      assert.throws(() => rocCurve(pairs([], [0.5])), /at least one genuine and one impostor/);
    });
  });

  describe('thresholdForFar', () => {
    it('returns the lowest threshold within the target FAR and the TAR there', () => {
      assert.deepEqual(thresholdForFar(MIXED, 0), { threshold: 0.8, far: 0, tar: 2 / 3 });
      assert.deepEqual(thresholdForFar(MIXED, 1 / 3), { threshold: 0.6, far: 1 / 3, tar: 1 });
      assert.deepEqual(thresholdForFar(MIXED, 0.5), { threshold: 0.6, far: 1 / 3, tar: 1 });
      assert.deepEqual(thresholdForFar(MIXED, 1), { threshold: 0.2, far: 1, tar: 1 });
    });

    it('never splits tied scores', () => {
      // The top score is shared by a genuine and an impostor pair: FAR 0 means accepting nothing.
      const r = thresholdForFar(pairs([0.9, 0.5], [0.9, 0.1, 0.2, 0.3]), 0.1);
      assert.ok(r !== null);
      assert.ok(r.threshold > 0.9);
      assert.deepEqual([r.far, r.tar], [0, 0]);
    });

    it('returns null without impostors and validates the target', () => {
      assert.equal(thresholdForFar(pairs([0.5, 0.7], []), 0.01), null);
      assert.throws(() => thresholdForFar(MIXED, 1.5), /targetFar/);
      assert.throws(() => thresholdForFar(MIXED, NaN), /targetFar/);
      assert.throws(() => thresholdForFar(pairs([], [0.2]), 0.1), /genuine/);
    });
  });

  describe('equalErrorRate', () => {
    it('finds FAR = FRR on a ROC vertex', () => {
      const e = equalErrorRate(MIXED);
      close(e.eer, 1 / 3);
      close(e.threshold, 0.7);
      const at = accuracyAt(MIXED, e.threshold);
      close(at.fp / 3, at.fn / 3);
    });

    it('interpolates along a tied step', () => {
      const e = equalErrorRate(pairs([0.5, 0.5], [0.5, 0.1]));
      close(e.eer, 1 / 3);
      close(e.threshold, 0.5, 1e-5);
    });

    it('is 0 for perfect separation and 1 when reversed', () => {
      assert.equal(equalErrorRate(pairs([0.9, 0.8], [0.1, 0.2])).eer, 0);
      assert.equal(equalErrorRate(pairs([0.1, 0.2], [0.8, 0.9])).eer, 1);
    });
  });

  describe('input validation', () => {
    const bad: ScoredPair[] = [
      { similarity: 0.1, same: true },
      { similarity: 0.2, same: false },
      { similarity: NaN, same: true },
    ];
    for (const [name, fn] of [
      ['accuracyAt', () => accuracyAt(bad, 0.5)],
      ['bestThreshold', () => bestThreshold(bad)],
      ['rocCurve', () => rocCurve(bad)],
      ['thresholdForFar', () => thresholdForFar(bad, 0.1)],
      ['equalErrorRate', () => equalErrorRate(bad)],
      ['splitScores', () => splitScores(bad)],
    ] as const) {
      it(`${name} names the index of a non-finite similarity`, () => {
        assert.throws(
          fn,
          (err: unknown) => err instanceof Error && /pairs\[2\]\.similarity/.test(err.message),
        );
      });
    }

    it('rejects infinities and non-boolean labels', () => {
      assert.throws(() => rocCurve([{ similarity: -Infinity, same: true }]), /pairs\[0\]\.similarity/);
      const unlabelled = [{ similarity: 0.3, same: 1 }] as unknown as ScoredPair[];
      assert.throws(() => accuracyAt(unlabelled, 0.5), /pairs\[0\]\.same/);
    });

    it('splits scores by label', () => {
      assert.deepEqual(splitScores(MIXED), { genuine: [0.9, 0.8, 0.6], impostor: [0.7, 0.3, 0.2] });
    });
  });
});

describe('eval plots', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faceflow-eval-'));
  });
  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  const rand = lcg(99);
  const genuine = Array.from({ length: 400 }, () => 0.45 + 0.3 * (rand() + rand() + rand() - 1.5));
  const impostor = Array.from({ length: 2000 }, () => 0.15 + 0.25 * (rand() + rand() + rand() - 1.5));
  const data = pairs(genuine, impostor);
  const roc = rocCurve(data);

  /** Number of pixels close to the given colour. */
  async function countColour(path: string, [r, g, b]: [number, number, number]): Promise<number> {
    const { data: px, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    let n = 0;
    for (let i = 0; i < px.length; i += info.channels) {
      if (Math.abs(px[i] - r) < 40 && Math.abs(px[i + 1] - g) < 40 && Math.abs(px[i + 2] - b) < 40) n++;
    }
    return n;
  }

  it('escapes XML special characters', () => {
    assert.equal(escapeXml(`a < b & "c" > 'd'`), 'a &lt; b &amp; &quot;c&quot; &gt; &#39;d&#39;');
  });

  it('writes a ROC PNG of the default size', async () => {
    const path = join(dir, 'roc.png');
    const op = thresholdForFar(data, 0.01);
    assert.ok(op !== null);
    await writeRocPng(path, roc, {
      title: 'Verification ROC',
      auc: auc(roc),
      markThreshold: { far: op.far, tar: op.tar, label: `threshold ${op.threshold.toFixed(3)} @ FAR 1%` },
    });
    const meta = await sharp(path).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, ROC_SIZE.width);
    assert.equal(meta.height, ROC_SIZE.height);
    // The curve (#1f6fb4) is drawn.
    assert.ok((await countColour(path, [0x1f, 0x6f, 0xb4])) > 500);
  });

  it('writes a log-FAR ROC PNG', async () => {
    const path = join(dir, 'roc-log.png');
    await writeRocPng(path, roc, { logFar: true, auc: auc(roc), width: 640, height: 600 });
    const meta = await sharp(path).metadata();
    assert.equal(meta.format, 'png');
    assert.deepEqual([meta.width, meta.height], [640, 600]);
    const svg = rocSvg(roc, { logFar: true });
    for (const label of ['0.0001', '0.001', '0.01', '0.1'])
      assert.ok(svg.includes(`>${label}</text>`), label);
  });

  it('writes a histogram PNG of the default size', async () => {
    const path = join(dir, 'hist.png');
    await writeHistogramPng(path, { genuine, impostor }, { title: 'Genuine vs impostor', threshold: 0.35 });
    const meta = await sharp(path).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, HISTOGRAM_SIZE.width);
    assert.equal(meta.height, HISTOGRAM_SIZE.height);
    // Both series are visible in their colours (outline strokes).
    assert.ok((await countColour(path, [0x1f, 0x77, 0xb4])) > 200);
    assert.ok((await countColour(path, [0xff, 0x7f, 0x0e])) > 200);
  });

  it('puts the title in the ROC SVG and escapes markup in it', async () => {
    const title = 'ROC <script> & "friends"';
    const svg = rocSvg(roc, { title, markThreshold: { far: 0.1, tar: 0.9, label: 'a<b' } });
    assert.ok(svg.includes('ROC &lt;script&gt; &amp; &quot;friends&quot;'));
    assert.ok(!svg.includes('<script>'));
    assert.ok(svg.includes('a&lt;b'));
    // Still well-formed enough for librsvg to render.
    const meta = await sharp(Buffer.from(svg)).png().toBuffer({ resolveWithObject: true });
    assert.equal(meta.info.width, ROC_SIZE.width);
  });

  it('normalises histograms to density and labels the counts', () => {
    const svg = histogramSvg(
      { genuine: [0.5, 0.5, 0.5, 0.5], impostor: [0, 1] },
      { bins: 2, threshold: 0.25 },
    );
    assert.ok(svg.includes('genuine (n = 4)'));
    assert.ok(svg.includes('impostor (n = 2)'));
    assert.ok(svg.includes('threshold = 0.25'));
    // Genuine: all 4 in the upper bin of width 0.5 -> density 2; impostor: 1 per bin -> density 1.
    // So the genuine bar is exactly twice as tall as each impostor bar.
    const bars = (colour: string): number[] => {
      const group = new RegExp(`<g fill="${colour}" fill-opacity="[^"]+" stroke="none">(.*?)</g>`).exec(svg);
      assert.ok(group !== null, `no bars in ${colour}`);
      return [...group[1].matchAll(/height="([^"]+)"/g)].map((m) => Number(m[1]));
    };
    const genuineBars = bars('#1f77b4');
    const impostorBars = bars('#ff7f0e');
    assert.equal(genuineBars.length, 1);
    assert.equal(impostorBars.length, 2);
    close(genuineBars[0], 2 * impostorBars[0], 0.02);
    close(impostorBars[0], impostorBars[1], 0.01);
    // The density axis reaches the genuine peak of 2 (a top of 2.5 with ticks every 0.5).
    assert.ok(svg.includes('>2.0</text>') && svg.includes('>2.5</text>'));
    assert.ok(!svg.includes('>3.0</text>'));
  });

  it('rejects bad plot input', () => {
    assert.throws(() => histogramSvg({ genuine: [0.1, NaN], impostor: [] }), /genuine\[1\]/);
    assert.throws(() => histogramSvg({ genuine: [0.1], impostor: [] }, { bins: 0 }), /bins/);
    assert.throws(() => rocSvg([{ threshold: 1, far: NaN, tar: 0 }]), /points\[0\]/);
  });
});

/** Parallel score, label and fold arrays from `[similarity, same, fold]` rows. */
function folded(rows: [number, boolean, number][]): [number[], boolean[], number[]] {
  return [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])];
}

describe('kFoldAccuracy', () => {
  it('scores each fold at the threshold the other folds chose, never its own', () => {
    // Each fold alone is perfectly separable (fold 1 at 0.425, fold 2 at 0.65), but each
    // other's threshold misplaces one pair: held at 0.65, fold 1 rejects its genuine 0.45;
    // held at 0.425, fold 2 accepts its impostor 0.6. Choosing on the held fold would give 100 %.
    const result = kFoldAccuracy(
      ...folded([
        [0.9, true, 1],
        [0.45, true, 1],
        [0.4, false, 1],
        [0.1, false, 1],
        [0.8, true, 2],
        [0.7, true, 2],
        [0.6, false, 2],
        [0.2, false, 2],
      ]),
    );
    assert.deepEqual(
      result.folds.map((f) => [f.fold, f.pairs, f.accuracy]),
      [
        [1, 4, 0.75],
        [2, 4, 0.75],
      ],
    );
    close(result.folds[0].threshold, 0.65);
    close(result.folds[1].threshold, 0.425);
    assert.equal(result.mean, 0.75);
    assert.equal(result.sd, 0);
  });

  it('breaks ties for the lowest threshold, counts tied scores together, and reports the sample sd', () => {
    // Fold order in the input does not matter; results come in ascending fold order.
    const result = kFoldAccuracy(
      ...folded([
        [0.7, true, 3],
        [0.7, false, 3],
        [0.6, true, 2],
        [0.2, false, 2],
        [0.8, true, 1],
        [0.3, false, 1],
      ]),
    );
    const [f1, f2, f3] = result.folds;
    assert.deepEqual(
      result.folds.map((f) => f.fold),
      [1, 2, 3],
    );
    // Held fold 1: folds 2+3 are best split at 0.4 (3 of 4 right); fold 1 is then all right.
    close(f1.threshold, 0.4);
    assert.equal(f1.accuracy, 1);
    // Held fold 2: on folds 1+3 the splits 0.5 and 0.75 both get 3 of 4 right; the lower one wins
    // and accepts fold 2's genuine 0.6 (the higher one would have rejected it: 50 %).
    close(f2.threshold, 0.5);
    assert.equal(f2.accuracy, 1);
    // Held fold 3: folds 1+2 split at 0.45; fold 3's genuine and impostor tie at 0.7, so both are
    // accepted: one right, one wrong.
    close(f3.threshold, 0.45);
    assert.equal(f3.accuracy, 0.5);
    close(result.mean, 5 / 6);
    // Deviations 1/6, 1/6, -1/3: squares sum to 1/6, divided by k - 1 = 2.
    close(result.sd, Math.sqrt(1 / 12));
  });

  it('agrees with bestThreshold and accuracyAt applied fold by fold', () => {
    const rand = lcg(11);
    const rows: [number, boolean, number][] = Array.from({ length: 240 }, (_, i) => {
      const same = rand() < 0.5;
      const similarity = Math.round((same ? 0.3 + 0.6 * rand() : 0.55 * rand()) * 40) / 40;
      return [similarity, same, 1 + (i % 4)];
    });
    const result = kFoldAccuracy(...folded(rows));
    assert.equal(result.folds.length, 4);
    for (const f of result.folds) {
      const others = rows.filter((r) => r[2] !== f.fold).map(([similarity, same]) => ({ similarity, same }));
      const held = rows.filter((r) => r[2] === f.fold).map(([similarity, same]) => ({ similarity, same }));
      assert.equal(f.threshold, bestThreshold(others).threshold);
      assert.equal(f.accuracy, accuracyAt(held, f.threshold).accuracy);
      assert.equal(f.pairs, 60);
    }
    const accs = result.folds.map((f) => f.accuracy);
    const mean = accs.reduce((a, b) => a + b, 0) / 4;
    close(result.mean, mean);
    close(result.sd, Math.sqrt(accs.reduce((a, b) => a + (b - mean) ** 2, 0) / 3));
  });

  it('rejects fold numbers that are not positive integers', () => {
    for (const bad of [0, -1, 1.5, NaN]) {
      assert.throws(
        () => kFoldAccuracy([0.9, 0.1, 0.8, 0.2], [true, false, true, false], [1, 1, 2, bad]),
        /fold of pair 3 must be a positive integer/,
      );
    }
  });

  it('needs at least two folds, each with genuine and impostor pairs, and says which is short', () => {
    assert.throws(
      () => kFoldAccuracy([0.9, 0.1], [true, false], [4, 4]),
      /needs at least 2 folds, got only fold 4/,
    );
    assert.throws(() => checkFolds([], []), /needs at least 2 folds, got no pairs/);
    assert.throws(
      () => kFoldAccuracy([0.9, 0.1, 0.8, 0.2], [true, false, false, false], [1, 1, 2, 2]),
      /fold 2 has no genuine \(same person\) pairs/,
    );
    assert.throws(
      () => kFoldAccuracy([0.9, 0.1, 0.8, 0.2, 0.7], [true, false, true, false, true], [1, 1, 2, 2, 3]),
      /fold 3 has no impostor \(different people\) pairs/,
    );
    assert.throws(() => kFoldAccuracy([0.9], [true, false], [1, 2]), /1 scores but 2 labels/);
    assert.throws(() => checkFolds([true, false], [1]), /2 labels but 1 fold numbers/);
  });
});

describe('parsePairsCsv fold column', () => {
  it('reads the fold when the header names it, and leaves it out otherwise', () => {
    const withFolds = parsePairsCsv('file_x,file_y,decision,fold\na.jpg,b.jpg,Yes,2\nc.jpg,d.jpg,No,10\n');
    assert.deepEqual(withFolds, [
      { a: 'a.jpg', b: 'b.jpg', same: true, fold: 2 },
      { a: 'c.jpg', b: 'd.jpg', same: false, fold: 10 },
    ]);
    const plain = parsePairsCsv('file_x,file_y,decision\na.jpg,b.jpg,Yes\n');
    assert.deepEqual(plain, [{ a: 'a.jpg', b: 'b.jpg', same: true }]);
    // Without a header the three columns are positional, as before; a fourth cell is ignored.
    assert.deepEqual(parsePairsCsv('a.jpg,b.jpg,No,7\n'), [{ a: 'a.jpg', b: 'b.jpg', same: false }]);
  });

  it('names the line of a fold that is not a positive integer', () => {
    for (const bad of ['0', '-1', '1.5', 'x', '', '1e0']) {
      assert.throws(
        () =>
          parsePairsCsv(`file_x,file_y,decision,fold\na.jpg,b.jpg,Yes,1\nc.jpg,d.jpg,No,${bad}\n`, 'p.csv'),
        new RegExp(
          `^Error: p\\.csv line 3: fold must be a positive integer, got '${bad.replace('.', '\\.')}'$`,
        ),
      );
    }
  });
});
