import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Gallery, GalleryError } from '../src/gallery/gallery';
import { GalleryFile } from '../src/gallery/galleryFile';
import { embeddingKey } from '../src/gallery/embeddingKey';
import { createIndex } from '../src/gallery/indexFactory';
import { UNKNOWN } from '../src/types';
import { seededRandom } from '../src/util/seededRandom';

const D = 8;

/** A unit vector at `deg` degrees in the first plane of a D-dimensional space. */
function unit(deg: number): Float32Array {
  const v = new Float32Array(D);
  v[0] = Math.cos((deg * Math.PI) / 180);
  v[1] = Math.sin((deg * Math.PI) / 180);
  return v;
}

function randomUnit(rand: () => number, d = D): Float32Array {
  const v = Float32Array.from({ length: d }, () => rand() * 2 - 1);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

const newGallery = () => new Gallery('model-a', D, createIndex(D, { backend: 'exact' }));

describe('gallery/Gallery', () => {
  it('keeps embedding keys right across removals and a swapped-in state that reuses the same ids', () => {
    const g = newGallery();
    g.addEmbedding('ann', unit(0));
    g.addEmbedding('bob', unit(40));
    const [annId] = g.embeddingsOf('ann').map((r) => r.id);
    assert.equal(g.keyOf(annId), embeddingKey(unit(0)));
    // Another gallery's state whose embedding has ann's id but another vector, as an import that replaces does.
    const other = newGallery();
    other.addEmbedding('cy', unit(90));
    g.replaceState(other.toState());
    const [cyId] = g.embeddingsOf('cy').map((r) => r.id);
    assert.equal(cyId, annId, 'the test needs the id to be reused');
    assert.equal(g.keyOf(cyId), embeddingKey(unit(90)));
    g.removeIdentity('cy');
    assert.throws(() => g.keyOf(cyId), GalleryError);
  });

  it('matches by each identity’s best embedding, with top-k, margin and Unknown', () => {
    const g = newGallery();
    g.addEmbedding('ann', unit(0));
    g.addEmbedding('ann', unit(170));
    g.addEmbedding('bob', unit(40));
    const m = g.match(unit(165), { threshold: 0.9, topK: 2 });
    assert.equal(m.name, 'ann');
    assert.deepEqual(
      m.topK.map((c) => c.name),
      ['ann', 'bob'],
    );
    assert.ok(Math.abs(m.similarity - Math.cos((5 * Math.PI) / 180)) < 1e-6);
    assert.equal(g.match(unit(90), { threshold: 0.9 }).name, UNKNOWN);
    const one = g.match(unit(0), { threshold: 0.5, topK: 1 });
    assert.equal(one.topK.length, 1);
    assert.ok(one.margin < 1, 'margin to the runner-up even with topK 1');
  });

  it('ranks by centroid on request', () => {
    const g = newGallery();
    g.addEmbedding('ann', unit(0));
    g.addEmbedding('ann', unit(90)); // centroid at 45°
    g.addEmbedding('bob', unit(30));
    assert.equal(g.match(unit(0), { threshold: 0, mode: 'best' }).name, 'ann');
    assert.equal(g.match(unit(0), { threshold: 0, mode: 'centroid' }).name, 'bob');
  });

  it('finds the right people among many embeddings per person', () => {
    const rand = seededRandom(3);
    const g = new Gallery('m', 64, createIndex(64, { backend: 'exact' }));
    const centres = Array.from({ length: 30 }, () => randomUnit(rand, 64));
    centres.forEach((c, p) => {
      for (let k = 0; k < 20; k++) {
        const noisy = c.map((x) => x + (rand() - 0.5) * 0.05);
        g.addEmbedding(
          `p${p}`,
          noisy.map((x) => x / Math.hypot(...noisy)),
        );
      }
    });
    centres.forEach((c, p) => {
      const m = g.match(c, { threshold: 0.5, topK: 5 });
      assert.equal(m.name, `p${p}`);
      assert.equal(new Set(m.topK.map((x) => x.name)).size, 5, 'five different people listed');
    });
  });

  it('lists with paging, renames, updates metadata and deletes', () => {
    const g = newGallery();
    for (const [name, deg] of [
      ['cy', 0],
      ['ann', 60],
      ['bob', 150],
    ] as const) {
      g.addEmbedding(name, unit(deg), { meta: { role: 'x' } });
    }
    const page = g.list({ offset: 1, limit: 1 });
    assert.equal(page.total, 3);
    assert.deepEqual(
      page.items.map((i) => i.name),
      ['bob'],
    );
    g.rename('bob', 'robert');
    assert.equal(g.has('bob'), false);
    assert.equal(g.match(unit(150), { threshold: 0.9 }).name, 'robert');
    g.updateMeta('robert', { floor: 2 });
    assert.deepEqual(g.list().items.find((i) => i.name === 'robert')?.meta, { role: 'x', floor: 2 });
    g.updateMeta('robert', { floor: 3 }, 'replace');
    assert.deepEqual(g.list().items.find((i) => i.name === 'robert')?.meta, { floor: 3 });
    const [rec] = g.embeddingsOf('ann');
    g.removeEmbedding(rec.id);
    assert.equal(g.embeddingsOf('ann').length, 0);
    assert.equal(g.removeIdentity('robert'), 1);
    assert.notEqual(g.match(unit(150), { threshold: 0 }).name, 'robert');
    g.clear();
    assert.equal(g.size, 0);
    assert.equal(g.embeddingCount, 0);
  });

  it('never returns a deleted embedding, and keeps the others’ vectors', () => {
    const g = newGallery();
    const ids = [0, 20, 40, 60, 80].map((deg, i) => g.addEmbedding(`p${i}`, unit(deg)));
    g.removeEmbedding(ids[2]);
    assert.notEqual(g.match(unit(40), { threshold: 0 }).name, 'p2');
    for (const [i, deg] of [0, 20, 60, 80].entries()) {
      const name = ['p0', 'p1', 'p3', 'p4'][i];
      const m = g.match(unit(deg), { threshold: 0.99 });
      assert.equal(m.name, name);
      assert.ok(Math.abs(m.similarity - 1) < 1e-6);
    }
  });

  it('survives a round trip through its state, ids included', () => {
    const g = newGallery();
    g.threshold = 0.42;
    g.addEmbedding('ann', unit(0), { sha256: 'a'.repeat(64), meta: { tag: 1 } });
    const bobId = g.addEmbedding('bob', unit(60));
    g.addIdentity('cy');
    const copy = Gallery.fromState(g.toState(), createIndex(D, { backend: 'exact' }));
    assert.equal(copy.threshold, 0.42);
    assert.deepEqual(copy.list(), g.list());
    assert.equal(copy.match(unit(61), { threshold: 0.9 }).name, 'bob');
    copy.removeEmbedding(bobId);
    const next = copy.addEmbedding('bob', unit(60));
    assert.ok(next > bobId, 'ids are never reused');
    assert.throws(
      () => copy.addEmbedding('dan', unit(5), { sha256: 'a'.repeat(64) }),
      /already enrolled \(as 'ann'/,
    );
  });

  it('refuses bad input with clear errors', () => {
    const g = newGallery();
    assert.throws(() => g.addEmbedding('', unit(0)), GalleryError);
    assert.throws(() => g.addEmbedding(UNKNOWN, unit(0)), /reserved/);
    assert.throws(() => g.addEmbedding('ann', new Float32Array(3)), /Float32Array of 8 values/);
    assert.throws(
      () =>
        g.addEmbedding(
          'ann',
          unit(0).map(() => NaN),
        ),
      /non-finite/,
    );
    assert.throws(() => g.match(new Float32Array(3), { threshold: 0 }), /query must be/);
    assert.throws(() => g.rename('nobody', 'x'), /no identity named 'nobody'/);
    g.addEmbedding('ann', unit(0));
    g.addEmbedding('bob', unit(9));
    assert.throws(() => g.rename('ann', 'bob'), /already exists/);
    assert.throws(() => g.removeEmbedding(999), /no embedding 999/);
    assert.throws(() => g.updateMeta('ann', [] as unknown as Record<string, unknown>), /must be an object/);
    assert.throws(() => g.checkModel('model-b'), /holds embeddings of 'model-a', not 'model-b'/);
    assert.doesNotThrow(() => g.checkModel('model-a'));
  });
});

describe('gallery/GalleryFile', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-galleryfile-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const options = { modelId: 'model-a', dimension: D, backend: 'exact' as const };

  it('keeps people across a restart and refuses another model’s file', async () => {
    const file = path.join(dir, 'people.ffg');
    const first = await GalleryFile.open(file, options);
    first.gallery.addEmbedding('ann', unit(0));
    first.gallery.addEmbedding('bob', unit(80));
    await first.save();
    const again = await GalleryFile.open(file, options);
    assert.equal(again.gallery.match(unit(79), { threshold: 0.9 }).name, 'bob');
    assert.deepEqual(again.problems, []);
    await assert.rejects(
      GalleryFile.open(file, { ...options, modelId: 'model-b' }),
      /holds 8-d embeddings of 'model-a', not 8-d of 'model-b'/,
    );
  });

  it('removes a deleted person from the file and every backup', async () => {
    const file = path.join(dir, 'private.ffg');
    const g = await GalleryFile.open(file, { ...options, key: 'correct horse battery' });
    g.gallery.addEmbedding('secret-person', unit(10));
    await g.save();
    g.gallery.addEmbedding('other', unit(100));
    await g.save();
    await g.removeIdentity('secret-person');
    const reopened = await GalleryFile.open(file, { ...options, key: 'correct horse battery' });
    assert.equal(reopened.gallery.has('secret-person'), false);
    assert.equal(reopened.gallery.has('other'), true);
    const leftovers = readdirSync(dir).filter((f) => f.startsWith('private.ffg'));
    // Besides the file, only the generation record, which holds a number and no personal data.
    assert.deepEqual(leftovers.sort(), ['private.ffg', 'private.ffg.gen']);
    await assert.rejects(GalleryFile.open(file, { ...options, key: 'wrong passphrase' }), /wrong key/i);
  });

  it('recovers from a damaged file and writes the recovery back', async () => {
    const file = path.join(dir, 'damaged.ffg');
    const g = await GalleryFile.open(file, options);
    g.gallery.addEmbedding('ann', unit(0));
    await g.save();
    await g.save();
    writeFileSync(file, readFileSync(file).subarray(0, 50));
    const recovered = await GalleryFile.open(file, options);
    assert.ok(recovered.recoveredFrom?.endsWith('.1'));
    assert.ok(recovered.problems.length > 0);
    assert.equal(recovered.gallery.has('ann'), true);
    const clean = await GalleryFile.open(file, options);
    assert.equal(clean.recoveredFrom, undefined, 'the main file was rewritten');
  });
});
