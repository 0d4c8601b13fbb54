import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Gallery, GalleryError } from '../src/gallery/gallery';
import { GalleryFile } from '../src/gallery/galleryFile';
import { createIndex } from '../src/gallery/indexFactory';
import { GalleryStore } from '../src/gallery/store';
import { UnknownPool, type UnknownFace } from '../src/gallery/unknownPool';

const D = 8;

/** A unit vector that differs per seed. */
function vec(seed: number): Float32Array {
  const v = Float32Array.from({ length: D }, (_, i) => Math.sin(seed * 7 + i));
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

const jpeg = (marker: string) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.from(marker)]);

describe('gallery/UnknownPool', () => {
  it('adds, gets, lists oldest first, removes and clears', () => {
    const pool = new UnknownPool(D);
    const a = pool.add(vec(1), { source: 'cam-1', seenAt: '2024-05-01T08:00:00.000Z', thumbnail: jpeg('a') });
    const b = pool.add(vec(2), { seenAt: new Date('2024-05-01T09:00:00Z') });
    const c = pool.add(vec(3));
    assert.equal(pool.size, 3);
    assert.deepEqual(pool.get(a), {
      id: a,
      embedding: vec(1),
      seenAt: '2024-05-01T08:00:00.000Z',
      source: 'cam-1',
      thumbnail: jpeg('a'),
    });
    assert.equal(pool.get(b)?.seenAt, '2024-05-01T09:00:00.000Z');
    assert.ok(!Number.isNaN(Date.parse(pool.get(c)?.seenAt ?? '')), 'seenAt defaults to now');
    assert.equal(pool.get(999), undefined);
    const page = pool.list({ offset: 1, limit: 1 });
    assert.equal(page.total, 3);
    assert.deepEqual(
      page.items.map((f) => f.id),
      [b],
    );
    assert.deepEqual(
      pool.all().map((f) => f.id),
      [a, b, c],
    );
    assert.equal(pool.remove([a, 999, a]), 1, 'ids not held are ignored');
    assert.equal(pool.has(a), false);
    assert.equal(pool.clear(), 2);
    assert.equal(pool.size, 0);
  });

  it('never reuses an id, even after removing or clearing', () => {
    const pool = new UnknownPool(D);
    const first = pool.add(vec(1));
    const second = pool.add(vec(2));
    pool.remove([second]);
    const third = pool.add(vec(3));
    pool.clear();
    const fourth = pool.add(vec(4));
    assert.deepEqual([first, second, third, fourth], [1, 2, 3, 4]);
  });

  it('drops the oldest faces when full and counts them', () => {
    const pool = new UnknownPool(D, { capacity: 3 });
    const ids = [1, 2, 3, 4, 5].map((s) => pool.add(vec(s)));
    assert.equal(pool.size, 3);
    assert.equal(pool.dropped, 2);
    assert.deepEqual(
      pool.all().map((f) => f.id),
      ids.slice(2),
    );
    assert.equal(new UnknownPool(D).capacity, 5000);
  });

  it('hands out copies, so callers cannot change what it keeps', () => {
    const pool = new UnknownPool(D);
    const input = vec(1);
    const thumb = jpeg('x');
    const id = pool.add(input, { thumbnail: thumb });
    input[0] = 42;
    thumb[0] = 0;
    const got = pool.get(id) as UnknownFace;
    got.embedding[1] = 42;
    got.thumbnail?.fill(0);
    assert.deepEqual(pool.get(id)?.embedding, vec(1));
    assert.deepEqual(pool.get(id)?.thumbnail, jpeg('x'));
  });

  it('refuses bad faces with clear errors', () => {
    const pool = new UnknownPool(D);
    const bad = (fn: () => unknown, pattern: RegExp) =>
      assert.throws(fn, (e: unknown) => e instanceof GalleryError && pattern.test(e.message));
    bad(() => pool.add(new Float32Array(3)), /Float32Array of 8 values/);
    bad(() => pool.add([1, 2] as unknown as Float32Array), /Float32Array of 8 values/);
    bad(() => pool.add(vec(1).map(() => Infinity)), /non-finite/);
    bad(() => pool.add(vec(1), { thumbnail: 'abc' as unknown as Buffer }), /thumbnail must be a Buffer/);
    bad(() => pool.add(vec(1), { thumbnail: Buffer.alloc(64 * 1024 + 1) }), /65537 bytes.*64 KiB/);
    bad(() => pool.add(vec(1), { source: 5 as unknown as string }), /source must be a string/);
    bad(() => pool.add(vec(1), { seenAt: 'yesterday-ish' }), /seenAt/);
    bad(() => new UnknownPool(D, { capacity: 0 }), /capacity/);
    assert.doesNotThrow(() => pool.add(vec(1), { thumbnail: Buffer.alloc(64 * 1024) }));
    assert.equal(pool.size, 1, 'refused faces were not kept');
  });
});

describe('gallery/Gallery unknown faces', () => {
  const newGallery = (capacity?: number) =>
    new Gallery('model-a', D, createIndex(D, { backend: 'exact' }), { unknownCapacity: capacity });

  it('keeps its unknown faces in its state, ids and drop count included', () => {
    const g = newGallery();
    g.addEmbedding('ann', vec(0));
    assert.equal('unknowns' in g.toState(), false, 'a never used pool is left out of the state');
    const kept = g.unknowns.add(vec(1), { thumbnail: jpeg('t'), source: 'door' });
    const gone = g.unknowns.add(vec(2));
    g.unknowns.remove([gone]);
    const copy = Gallery.fromState(g.toState(), createIndex(D, { backend: 'exact' }));
    assert.deepEqual(copy.unknowns.all(), g.unknowns.all());
    assert.ok(copy.unknowns.add(vec(3)) > gone, 'the next id survives the round trip');
    g.unknowns.clear();
    const emptied = Gallery.fromState(g.toState(), createIndex(D, { backend: 'exact' }));
    assert.equal(emptied.unknowns.size, 0);
    assert.ok(emptied.unknowns.add(vec(4)) > kept, 'still no reuse after clearing');
  });

  it('drops the oldest stored faces when loaded with a smaller capacity', () => {
    const g = newGallery();
    for (let i = 0; i < 5; i++) g.unknowns.add(vec(i));
    const small = Gallery.fromState(g.toState(), createIndex(D, { backend: 'exact' }), {
      unknownCapacity: 2,
    });
    assert.deepEqual(
      small.unknowns.all().map((f) => f.id),
      [4, 5],
    );
    assert.equal(small.unknowns.dropped, 3);
  });

  it('refuses a state whose unknown faces do not hold together, changing nothing', () => {
    const g = newGallery();
    g.addEmbedding('ann', vec(0));
    g.unknowns.add(vec(1));
    const state = g.toState();
    const broken = {
      ...state,
      unknowns: { ...state.unknowns!, records: [...state.unknowns!.records, { id: 1, seenAt: 'x' }] },
    };
    assert.throws(() => g.replaceState(broken), /vector values for 2 faces/);
    assert.equal(g.unknowns.size, 1);
    assert.equal(g.embeddingCount, 1);
  });
});

describe('gallery/GalleryFile unknown faces', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-unknowns-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const options = { modelId: 'model-a', dimension: D, backend: 'exact' as const };

  it('opens a file written in the layout before unknown faces, and upgrades it on save', async () => {
    const file = path.join(dir, 'old.ffg');
    const old = new Gallery('model-a', D, createIndex(D, { backend: 'exact' }));
    old.addEmbedding('ann', vec(0));
    const { unknowns: _none, ...withoutUnknowns } = old.toState();
    assert.equal(_none, undefined);
    await new GalleryStore(file).save(withoutUnknowns);
    assert.equal(readFileSync(file).readUInt16LE(5), 1, 'the old layout');

    const opened = await GalleryFile.open(file, options);
    assert.deepEqual(opened.problems, []);
    assert.equal(opened.gallery.match(vec(0), { threshold: 0.9 }).name, 'ann');
    assert.equal(opened.gallery.unknowns.size, 0);
    await opened.save();
    assert.equal(readFileSync(file).readUInt16LE(5), 1, 'nothing needs version 2 yet');

    opened.gallery.unknowns.add(vec(5), { thumbnail: jpeg('new'), source: 'cam' });
    await opened.save();
    assert.equal(readFileSync(file).readUInt16LE(5), 2);
    const again = await GalleryFile.open(file, options);
    assert.deepEqual(again.gallery.unknowns.all(), opened.gallery.unknowns.all());
  });

  for (const how of ['removeUnknowns', 'clearUnknowns'] as const) {
    it(`${how} deletes the faces from the file and every backup`, async () => {
      const file = path.join(dir, `${how}.ffg`);
      const marker = jpeg(`stranger-${how}`);
      const base64 = Buffer.from(marker.toString('base64'));
      const g = await GalleryFile.open(file, options);
      const secret = g.gallery.unknowns.add(vec(1), { thumbnail: marker, source: `secret-source-${how}` });
      g.gallery.unknowns.add(vec(2));
      await g.save();
      g.gallery.addEmbedding('ann', vec(3));
      await g.save();
      const holders = () =>
        readdirSync(dir)
          .filter((f) => f.startsWith(`${how}.ffg`))
          .filter((f) => readFileSync(path.join(dir, f)).includes(base64));
      assert.ok(holders().length >= 2, 'the thumbnail is in the file and a backup before deleting');

      const removed = how === 'removeUnknowns' ? await g.removeUnknowns([secret]) : await g.clearUnknowns();
      assert.equal(removed, how === 'removeUnknowns' ? 1 : 2);
      assert.deepEqual(holders(), []);
      assert.deepEqual(
        readdirSync(dir)
          .filter((f) => f.startsWith(`${how}.ffg`))
          .sort(),
        [`${how}.ffg`, `${how}.ffg.gen`], // the generation record holds a number, no personal data
      );
      const reopened = await GalleryFile.open(file, options);
      assert.equal(reopened.gallery.unknowns.has(secret), false);
      assert.equal(reopened.gallery.unknowns.size, how === 'removeUnknowns' ? 1 : 0);
      assert.equal(reopened.gallery.has('ann'), true);
    });
  }

  it('keeps unknown faces encrypted in a keyed file', async () => {
    const file = path.join(dir, 'keyed.ffg');
    const g = await GalleryFile.open(file, { ...options, key: 'a long passphrase' });
    g.gallery.unknowns.add(vec(1), { thumbnail: jpeg('keyed-stranger'), source: 'keyed-cam' });
    await g.save();
    const bytes = readFileSync(file);
    assert.equal(bytes.includes(Buffer.from('keyed-cam')), false);
    assert.equal(bytes.includes(Buffer.from(jpeg('keyed-stranger').toString('base64'))), false);
    const reopened = await GalleryFile.open(file, { ...options, key: 'a long passphrase' });
    assert.deepEqual(reopened.gallery.unknowns.all(), g.gallery.unknowns.all());
  });
});
