import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import {
  auc,
  equalErrorRate,
  rocCurve,
  summarize,
  thresholdForFar,
  type ScoredPair,
} from '../src/eval/metrics';
import { FaceFlow } from '../src/faceflow';
import {
  applyCalibration,
  calibrateGallery,
  calibrationRoc,
  calibrationRocSvg,
  suggestedThreshold,
  writeCalibrationPlots,
  type Calibration,
  type CalibrationScores,
} from '../src/gallery/calibrate';
import { Gallery, GalleryError } from '../src/gallery/gallery';
import { createIndex } from '../src/gallery/indexFactory';
import { decodeImage } from '../src/image/decode';
import { seededRandom } from '../src/util/seededRandom';
import { requireSharedData, shared } from './helpers/shared';
import { gaussian, normalized } from '../src/util/vectors';

const D = 64;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * `people` random unit centres with `perPerson` embeddings each, spread by `noise` per value:
 * with noise 0.0625 in 64-d, two photos of one person score about 0.8, two people about 0 ± 0.13.
 */
function clusteredGallery(seed: number, people = 20, perPerson = 5, noise = 0.0625): Gallery {
  const rand = seededRandom(seed);
  const g = new Gallery('synthetic', D, createIndex(D, { backend: 'exact' }));
  for (let p = 0; p < people; p++) {
    const centre = normalized(Float32Array.from({ length: D }, () => gaussian(rand)));
    for (let k = 0; k < perPerson; k++) {
      g.addEmbedding(
        `person${String(p).padStart(2, '0')}`,
        normalized(centre.map((x) => x + noise * gaussian(rand))),
      );
    }
  }
  return g;
}

function pairsOf(scores: CalibrationScores): ScoredPair[] {
  return [
    ...Array.from(scores.genuine, (similarity) => ({ similarity, same: true })),
    ...Array.from(scores.impostor, (similarity) => ({ similarity, same: false })),
  ];
}

/** True when every value of `part` occurs in `whole` at least as often: a sample without repeats. */
function isSubMultiset(part: Float32Array, whole: Float32Array): boolean {
  const counts = new Map<number, number>();
  for (const x of whole) counts.set(x, (counts.get(x) ?? 0) + 1);
  for (const x of part) {
    const left = counts.get(x) ?? 0;
    if (left === 0) return false;
    counts.set(x, left - 1);
  }
  return true;
}

async function checkPng(file: string, width: number, height: number): Promise<void> {
  assert.deepEqual(readFileSync(file).subarray(0, 8), PNG_SIGNATURE, `${file} starts like a PNG`);
  const meta = await sharp(file).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, width);
  assert.equal(meta.height, height);
}

describe('gallery/calibrate: synthetic galleries', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-calibrate-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('scores every pair and orders thresholds by FAR', () => {
    const c = calibrateGallery(clusteredGallery(1));
    assert.equal(c.modelId, 'synthetic');
    assert.equal(c.identities, 20);
    assert.equal(c.embeddings, 100);
    assert.equal(c.genuinePairs, 20 * 10);
    assert.equal(c.impostorPairs, (100 * 99) / 2 - 200);
    assert.equal(c.sampled, false);
    assert.ok(c.genuine.mean > 0.7 && c.impostor.mean < 0.1, `${c.genuine.mean} vs ${c.impostor.mean}`);
    assert.ok(c.auc > 0.99, `auc ${c.auc}`);
    assert.ok(c.eer.eer < 0.02, `eer ${c.eer.eer}`);

    assert.deepEqual(
      c.thresholds.map((t) => t.far),
      [1e-4, 1e-3, 1e-2],
    );
    for (let i = 1; i < c.thresholds.length; i++) {
      const [strict, loose] = [c.thresholds[i - 1], c.thresholds[i]];
      assert.ok((strict.threshold as number) >= (loose.threshold as number), 'threshold falls as FAR grows');
      assert.ok((strict.tar as number) <= (loose.tar as number), 'TAR grows with FAR');
    }
    for (const t of c.thresholds) assert.ok((t.achievedFar as number) <= t.far);
    // 4750 impostor pairs: enough for 1e-2 (300) and 1e-3 (3000), not 1e-4 (30000).
    assert.deepEqual(
      c.thresholds.map((t) => t.reliable),
      [false, true, true],
    );
    assert.equal(c.warnings.length, 1);
    assert.match(c.warnings[0], /4750 impostor pairs are too few to estimate FAR 1e-4.*30000 for 1e-4/);
  });

  it('agrees with eval/metrics on the same scores', () => {
    const c = calibrateGallery(clusteredGallery(2, 12, 4, 0.1));
    const scores = c.scores as CalibrationScores;
    const pairs = pairsOf(scores);
    assert.deepEqual(calibrationRoc(scores), rocCurve(pairs));
    assert.equal(c.auc, auc(rocCurve(pairs)));
    assert.deepEqual(c.eer, equalErrorRate(pairs));
    for (const t of c.thresholds) {
      const expected = thresholdForFar(pairs, t.far);
      assert.deepEqual({ threshold: t.threshold, far: t.achievedFar, tar: t.tar }, expected);
    }
    for (const side of ['genuine', 'impostor'] as const) {
      const want = summarize(Array.from(scores[side]));
      for (const key of Object.keys(want) as (keyof typeof want)[]) {
        assert.ok(Math.abs(c[side][key] - want[key]) < 1e-9, `${side}.${key}`);
      }
    }
  });

  it('keeps the raw scores out of JSON and copies', () => {
    const c = calibrateGallery(clusteredGallery(3, 5, 3));
    assert.ok(c.scores?.genuine instanceof Float32Array);
    assert.equal(c.scores?.genuine.length, c.genuinePairs);
    assert.equal(Object.keys(c).includes('scores'), false);
    const json = JSON.parse(JSON.stringify(c)) as Calibration;
    assert.equal(json.scores, undefined);
    assert.deepEqual(json.thresholds, c.thresholds);
  });

  it('suggests the threshold of the FAR asked for, or the nearest reliable larger one', () => {
    const c = calibrateGallery(clusteredGallery(1));
    const [at4, at3, at2] = c.thresholds.map((t) => t.threshold);
    assert.equal(suggestedThreshold(c), at3);
    assert.equal(suggestedThreshold(c, 1e-3), at3);
    assert.equal(suggestedThreshold(c, 1e-2), at2);
    assert.notEqual(at4, at3);
    assert.equal(suggestedThreshold(c, 1e-4), at3, '1e-4 is unreliable: fall back to 1e-3');
    assert.equal(suggestedThreshold(c, 5e-3), at2, 'not a target: the next larger target');
    assert.equal(suggestedThreshold(c, 0.5), null);

    const g = clusteredGallery(1);
    assert.equal(applyCalibration(g, c), at3);
    assert.equal(g.threshold, at3);
    assert.equal(applyCalibration(g, c, 1e-2), at2);
    assert.throws(() => applyCalibration(g, c, 0.5), /no reliable threshold for FAR 0.5/);
    const other = new Gallery('another-model', D, createIndex(D, { backend: 'exact' }));
    assert.throws(() => applyCalibration(other, c), /holds embeddings of 'another-model', not 'synthetic'/);
  });

  it('refuses galleries that cannot be calibrated, and bad options', () => {
    const fresh = () => new Gallery('m', D, createIndex(D, { backend: 'exact' }));
    const rand = seededRandom(5);
    const vector = () => normalized(Float32Array.from({ length: D }, () => gaussian(rand)));

    assert.throws(() => calibrateGallery(fresh()), /at least 2 identities with embeddings, .* has 0/);
    const one = fresh();
    one.addEmbedding('ann', vector());
    one.addEmbedding('ann', vector());
    one.addIdentity('nobody-yet');
    assert.throws(
      () => calibrateGallery(one),
      (e: unknown) => {
        assert.ok(e instanceof GalleryError);
        assert.match(e.message, /at least 2 identities with embeddings, this gallery has 1/);
        return true;
      },
    );
    const singles = fresh();
    singles.addEmbedding('ann', vector());
    singles.addEmbedding('bob', vector());
    assert.throws(() => calibrateGallery(singles), /needs genuine pairs: enrol at least two photos/);

    const g = clusteredGallery(4, 3, 2);
    assert.throws(() => calibrateGallery(g, { targetFars: [] }), /non-empty array/);
    assert.throws(() => calibrateGallery(g, { targetFars: [0] }), /within \(0, 1\), got 0/);
    assert.throws(() => calibrateGallery(g, { targetFars: [1.5] }), /got 1.5/);
    assert.throws(() => calibrateGallery(g, { maxPairs: 1 }), /maxPairs must be an integer of at least 2/);
    assert.throws(() => calibrateGallery(g, { maxPairs: 10.5 }), /maxPairs/);
  });

  it('warns about single-photo identities and few genuine pairs', () => {
    const g = clusteredGallery(6, 4, 3);
    g.addEmbedding('loner', normalized(Float32Array.from({ length: D }, (_, i) => (i === 0 ? 1 : 0))));
    const c = calibrateGallery(g, { targetFars: [0.05] });
    assert.equal(c.identities, 5);
    assert.equal(c.genuinePairs, 12);
    assert.deepEqual(
      c.thresholds.map((t) => t.reliable),
      [true],
    );
    assert.ok(c.warnings.some((w) => /1 identities have a single embedding/.test(w)));
    assert.ok(c.warnings.some((w) => /only 12 genuine pairs/.test(w)));
  });

  it('samples deterministically, without repeats, when the pairs exceed maxPairs', () => {
    const g = clusteredGallery(7);
    const full = calibrateGallery(g).scores as CalibrationScores;
    // 800 of 4750 impostor pairs (sparse draws) and 3800 of them (one selection pass).
    for (const maxPairs of [1000, 4000]) {
      const a = calibrateGallery(g, { maxPairs });
      const b = calibrateGallery(g, { maxPairs });
      assert.equal(a.sampled, true);
      assert.equal(a.genuinePairs + a.impostorPairs, maxPairs);
      assert.equal(a.genuinePairs, 200, 'all genuine pairs kept while they fit in half the budget');
      assert.deepEqual(a.scores, b.scores);
      assert.deepEqual(a.thresholds, b.thresholds);
      const scores = a.scores as CalibrationScores;
      assert.deepEqual(scores.genuine, full.genuine);
      assert.ok(
        isSubMultiset(scores.impostor, full.impostor),
        'sampled impostor pairs are real and distinct',
      );
      assert.match(a.warnings.join('\n'), new RegExp(`scored a fixed random sample .*maxPairs ${maxPairs}`));
      assert.ok(Math.abs(a.impostor.mean - summarize(Array.from(full.impostor)).mean) < 0.02);
    }
    // Many photos per person: genuine pairs outgrow half the budget and are sampled too.
    const crowded = clusteredGallery(8, 2, 30);
    const whole = calibrateGallery(crowded).scores as CalibrationScores;
    const c = calibrateGallery(crowded, { maxPairs: 400 });
    assert.equal(c.genuinePairs, 200);
    assert.equal(c.impostorPairs, 200);
    const s = c.scores as CalibrationScores;
    assert.ok(isSubMultiset(s.genuine, whole.genuine));
    assert.ok(isSubMultiset(s.impostor, whole.impostor));
  });

  it('draws a ROC chart with a marker per target FAR and a histogram, as PNG files', async () => {
    const c = calibrateGallery(clusteredGallery(1));
    const svg = calibrationRocSvg(c);
    const markers = svg.split('\n').filter((line) => /^<circle /.test(line));
    assert.equal(markers.length, 3, 'one marker per target FAR');
    assert.equal(markers.filter((m) => m.includes('fill="#ffffff"')).length, 1, 'unreliable 1e-4 is hollow');
    assert.match(svg, /targets: FAR 1e-4\*, 1e-3, 1e-2/);

    const files = await writeCalibrationPlots(c, path.join(dir, 'synthetic'));
    assert.deepEqual(files, {
      roc: path.join(dir, 'synthetic', 'roc.png'),
      histogram: path.join(dir, 'synthetic', 'histogram.png'),
    });
    await checkPng(files.roc, 720, 680);
    await checkPng(files.histogram, 860, 540);

    const json = JSON.parse(JSON.stringify(c)) as Calibration;
    const named = { roc: path.join(dir, 'named', 'a.png'), histogram: path.join(dir, 'named', 'b.png') };
    await assert.rejects(writeCalibrationPlots(json, named), /carries no scores/);
    await writeCalibrationPlots(json, named, { scores: c.scores });
    assert.deepEqual(readdirSync(path.join(dir, 'named')).sort(), ['a.png', 'b.png']);
  });
});

describe('gallery/calibrate: the bbt faces with the default model', function () {
  let flow: FaceFlow;
  let gallery: Gallery;
  let dir: string;
  before(async function () {
    requireSharedData(this);
    flow = await FaceFlow.open({ threads: 2 });
    gallery = new Gallery(flow.embedder.id, flow.embedder.dimension, createIndex(flow.embedder.dimension));
    const root = shared('bbt', 'faces');
    for (const person of readdirSync(root).sort()) {
      for (const file of readdirSync(path.join(root, person)).sort()) {
        const photo = path.join(root, person, file);
        const face = await flow.singleFace(await decodeImage(photo), photo);
        gallery.addEmbedding(person, face.embedding as Float32Array);
      }
    }
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-calibrate-bbt-'));
  });
  after(async () => {
    await flow?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('finds a threshold between the impostor and genuine means, and plots it', async () => {
    const c = calibrateGallery(gallery);
    assert.equal(c.identities, 8);
    assert.equal(c.embeddings, 40);
    assert.equal(c.genuinePairs, 8 * 10);
    assert.equal(c.impostorPairs, (40 * 39) / 2 - 80);
    // 700 impostor pairs support FAR 1e-2 only, so 1e-3 falls back to it.
    assert.deepEqual(
      c.thresholds.map((t) => t.reliable),
      [false, false, true],
    );
    const threshold = suggestedThreshold(c, 1e-3) as number;
    assert.equal(threshold, c.thresholds[2].threshold);
    assert.ok(
      threshold > c.impostor.mean && threshold < c.genuine.mean,
      `threshold ${threshold} between impostor mean ${c.impostor.mean} and genuine mean ${c.genuine.mean}`,
    );
    assert.ok(c.auc > 0.9, `auc ${c.auc}`);
    console.log(
      `      bbt: genuine ${c.genuine.mean.toFixed(3)}, impostor ${c.impostor.mean.toFixed(3)}, ` +
        `AUC ${c.auc.toFixed(4)}, EER ${c.eer.eer.toFixed(3)}, threshold ${threshold.toFixed(3)} ` +
        `(FAR ${c.thresholds[2].achievedFar?.toFixed(4)}, TAR ${c.thresholds[2].tar?.toFixed(3)})`,
    );

    const files = await writeCalibrationPlots(c, dir);
    await checkPng(files.roc, 720, 680);
    await checkPng(files.histogram, 860, 540);
  });
});

describe('gallery/calibrate: the threshold in use and people with one photo', () => {
  it("reports the share of the gallery's own pairs the threshold lets through, and the stranger risk", () => {
    const g = clusteredGallery(7, 20, 5);
    const c = calibrateGallery(g, { threshold: 0.3 });
    const pairs = pairsOf(c.scores as CalibrationScores);
    const impostors = pairs.filter((p) => !p.same);
    const expectedFar = impostors.filter((p) => p.similarity >= 0.3).length / impostors.length;
    assert.ok(c.inUse);
    assert.equal(c.inUse.threshold, 0.3);
    assert.equal(c.inUse.far, expectedFar);
    assert.ok(expectedFar > 0, 'the synthetic people overlap at 0.3');
    assert.ok(Math.abs(c.inUse.strangerNamed - (1 - (1 - expectedFar) ** 100)) < 1e-12);
    assert.ok(c.warnings.some((w) => /at the threshold in use \(0.3\).*a stranger is named/.test(w)));
    // A strict threshold lets no pair of different people through.
    const strict = calibrateGallery(g, { threshold: 0.99 });
    assert.equal(strict.inUse?.far, 0);
    assert.equal(strict.inUse?.strangerNamed, 0);
    assert.equal(calibrateGallery(g).inUse, undefined, 'only when a threshold is given');
  });

  it('names the people enrolled with a single photo', () => {
    const g = clusteredGallery(8, 4, 3);
    const rand = seededRandom(9);
    g.addEmbedding('zoe', normalized(Float32Array.from({ length: D }, () => gaussian(rand))));
    g.addEmbedding('adam', normalized(Float32Array.from({ length: D }, () => gaussian(rand))));
    const c = calibrateGallery(g);
    assert.deepEqual([...c.singlePhoto].sort(), ['adam', 'zoe']);
    assert.ok(c.warnings.some((w) => /2 identities have a single embedding \(.*zoe.*\)/.test(w)));
  });
});
