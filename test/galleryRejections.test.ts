import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { FaceFlow } from '../src/faceflow';
import { runGalleryCommand, CommandError, type GalleryHandle } from '../src/gallery/commands';
import { exportGallery, importGallery } from '../src/gallery/exchange';
import { Gallery, GalleryError } from '../src/gallery/gallery';
import { GalleryFile } from '../src/gallery/galleryFile';
import { createIndex } from '../src/gallery/indexFactory';
import { mergeBaseOf, mergeInto } from '../src/gallery/merge';
import { memoryGalleryFile, queuedGallery } from '../src/gallery/queuedGallery';
import { GalleryStore } from '../src/gallery/store';
import { applyGalleryChange, galleryChanges, galleryDigest, GalleryChangeError } from '../src/gallery/sync';
import { decodeImage } from '../src/image/decode';
import { UNKNOWN } from '../src/types';
import { requireSharedData, shared } from './helpers/shared';

const D = 8;

/** A unit vector at `deg` degrees in the first plane, tilted by `lift` into the third axis. */
function unit(deg: number, lift = 0): Float32Array {
  const v = new Float32Array(D);
  v[0] = Math.cos((deg * Math.PI) / 180);
  v[1] = Math.sin((deg * Math.PI) / 180);
  v[2] = lift;
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

const newGallery = () => new Gallery('model-a', D, createIndex(D, { backend: 'exact' }));

/** Ann at 0°, Bob at 90°; a stranger at 30° looks like Ann (cos 0.87) more than Bob. */
function annAndBob(): Gallery {
  const g = newGallery();
  g.addEmbedding('ann', unit(0));
  g.addEmbedding('bob', unit(90));
  return g;
}

describe('"not this person": rejected faces in the gallery', () => {
  describe('matching', () => {
    it('stops a rejected face, and faces nearer to it than to the person, from matching that person', () => {
      const g = annAndBob();
      const options = { threshold: 0.6, ambiguityMargin: 0 };
      assert.equal(g.match(unit(30), options).name, 'ann', 'the stranger is taken for Ann at first');
      g.reject('ann', unit(30));
      assert.equal(g.match(unit(30), options).name, UNKNOWN);
      // The stranger seen again, a little differently: nearer the rejected face (cos ≈ 0.996) than Ann (≈ 0.82).
      assert.equal(g.match(unit(35), options).name, UNKNOWN);
      // Ann herself still matches, and so does a face that is nearer to Ann than to the rejected face.
      assert.equal(g.match(unit(0), options).name, 'ann');
      assert.equal(g.match(unit(10), options).name, 'ann');
      // Bob is untouched by a rejection held against Ann.
      assert.equal(g.match(unit(80), options).name, 'bob');
    });

    it('leaves the rejected person out of the ranking, so the next one may be named on its own merit', () => {
      const g = annAndBob();
      g.reject('ann', unit(50));
      // At 55° the face is nearer to Bob (cos 0.82) than Ann (0.57), and nearer the rejected face than to Ann.
      const m = g.match(unit(55), { threshold: 0.5, topK: 3, ambiguityMargin: 0 });
      assert.deepEqual(
        m.topK.map((c) => c.name),
        ['bob'],
      );
      assert.equal(m.name, 'bob');
      // In centroid mode too.
      assert.deepEqual(
        g.rank(unit(55), 3, 'centroid').map((c) => c.name),
        ['bob'],
      );
    });

    it('keeps the same face once, follows renames, goes with its person, and can be taken back', () => {
      const g = annAndBob();
      const id = g.reject('ann', unit(30));
      assert.equal(g.reject('ann', unit(30)), id, 'the same face twice is one rejection');
      assert.equal(g.identity('ann')?.rejections, 1);
      assert.equal(g.rejectionCount, 1);
      g.rename('ann', 'anne');
      assert.deepEqual(
        g.rejectionsOf('anne').map((r) => [r.record.id, r.record.name]),
        [[id, 'anne']],
      );
      assert.equal(g.match(unit(30), { threshold: 0.6 }).name, UNKNOWN);
      assert.equal(g.removeRejection(id), 'anne');
      assert.equal(g.match(unit(30), { threshold: 0.5, ambiguityMargin: 0 }).name, 'anne');
      g.reject('anne', unit(30));
      g.removeIdentity('anne');
      assert.equal(g.rejectionCount, 0);
      assert.throws(() => g.removeRejection(id), /no rejection/);
    });

    it('refuses a face for nobody, and vectors of the wrong size or with non-finite values', () => {
      const g = annAndBob();
      assert.throws(() => g.reject('cy', unit(30)), /no identity named 'cy'/);
      assert.throws(() => g.reject('ann', new Float32Array(3)), GalleryError);
      assert.throws(
        () =>
          g.reject(
            'ann',
            unit(30).map(() => NaN),
          ),
        /non-finite/,
      );
      assert.equal(g.rejectionCount, 0);
    });

    it('never hands out an id twice, rejection or embedding, across a save and load', () => {
      const g = annAndBob();
      const r = g.reject('ann', unit(30));
      const back = Gallery.fromState(g.toState(), createIndex(D, { backend: 'exact' }));
      const e = back.addEmbedding('bob', unit(100));
      assert.ok(e > r, `embedding ${e} after rejection ${r}`);
    });

    it('refuses a state whose rejection belongs to nobody or is of the wrong size, and changes nothing', () => {
      const g = annAndBob();
      g.reject('ann', unit(30));
      const state = g.toState();
      const orphan = { ...state, rejections: [{ ...state.rejections![0], name: 'cy' }] };
      assert.throws(() => g.replaceState(orphan), /belongs to unknown identity 'cy'/);
      const short = { ...state, rejections: [{ ...state.rejections![0], vector: new Float32Array(2) }] };
      assert.throws(() => g.replaceState(short), /not a vector of 8 values/);
      assert.equal(g.rejectionCount, 1);
    });
  });

  describe('on disk', () => {
    let dir = '';
    beforeEach(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'faceflow-rejections-'));
    });
    afterEach(() => rm(dir, { recursive: true, force: true }));

    it('are kept across a restart, in format version 3 only when there are some', async () => {
      const file = path.join(dir, 'people.fgal');
      const opened = await GalleryFile.open(file, { modelId: 'model-a', dimension: D });
      opened.gallery.addEmbedding('ann', unit(0));
      await opened.save();
      assert.equal((await fs.readFile(file)).readUInt16LE(5), 1, 'nothing that needs a newer version');
      const id = opened.gallery.reject('ann', unit(30));
      await opened.save();

      assert.equal((await fs.readFile(file)).readUInt16LE(5), 3);

      const again = await GalleryFile.open(file, { modelId: 'model-a', dimension: D });
      assert.deepEqual(
        again.gallery.rejectionsOf('ann').map((r) => [r.record.id, Array.from(r.vector)]),
        [[id, Array.from(unit(30))]],
      );
      assert.equal(again.gallery.match(unit(30), { threshold: 0.6 }).name, UNKNOWN);
      again.gallery.removeRejection(id);
      await again.save();

      assert.equal((await fs.readFile(file)).readUInt16LE(5), 1, 'back to the old layout once none is left');
    });

    it('are kept in an encrypted gallery, inside the ciphertext', async () => {
      const file = path.join(dir, 'secret.fgal');
      const key = 'a passphrase of some length';
      const g = annAndBob();
      g.reject('ann', unit(30));
      await new GalleryStore(file, { key }).save(g.toState());
      const bytes = await fs.readFile(file);
      assert.equal(bytes.includes(Buffer.from('rejections')), false, 'no plaintext field name');
      const { snapshot } = await new GalleryStore(file, { key }).load();
      assert.equal(snapshot?.rejections?.length, 1);
    });

    it('refuses a file that claims version 2 but holds rejections, as damage', async () => {
      const file = path.join(dir, 'old.fgal');
      const g = annAndBob();
      g.reject('ann', unit(30));
      const store = new GalleryStore(file, { backups: 0 });
      await store.save(g.toState());
      const buf = await fs.readFile(file);
      buf.writeUInt16LE(2, 5);
      resealChecksum(buf);
      await fs.writeFile(file, buf);
      await assert.rejects(new GalleryStore(file).load(), /rejections section needs format version 3/);
    });
  });

  describe('between instances and writers', () => {
    it('travel as gallery changes, idempotently, and their removal too', () => {
      const here = annAndBob();
      const there = annAndBob();
      const before = galleryDigest(here);
      here.reject('ann', unit(30));
      const changes = galleryChanges(before, here);
      assert.deepEqual(
        changes.map((c) => [c.type, c.name, 'rejected' in c && c.rejected?.length]),
        [['updated', 'ann', 1]],
      );
      for (const c of changes) assert.equal(applyGalleryChange(there, c), true);
      for (const c of changes) assert.equal(applyGalleryChange(there, c), false, 'applied twice: no change');
      assert.equal(there.match(unit(30), { threshold: 0.6 }).name, UNKNOWN);

      const mid = galleryDigest(here);
      here.removeRejection(here.rejectionsOf('ann')[0].record.id);
      const undo = galleryChanges(mid, here);
      assert.deepEqual(
        undo.map((c) => [c.type, 'unrejected' in c && c.unrejected?.length]),
        [['updated', 1]],
      );
      for (const c of undo) applyGalleryChange(there, c);
      assert.equal(there.rejectionCount, 0);
    });

    it('go with a new person, and refuse a malformed rejected face', () => {
      const here = annAndBob();
      const there = annAndBob();
      const before = galleryDigest(here);
      here.addEmbedding('cy', unit(200));
      here.reject('cy', unit(180));
      for (const c of galleryChanges(before, here)) applyGalleryChange(there, c);
      assert.equal(there.identity('cy')?.rejections, 1);
      const bad = {
        ...galleryChanges(before, here).find((c) => c.type === 'updated')!,
        rejected: [{ key: 1 }],
      };
      assert.throws(() => applyGalleryChange(there, bad), GalleryChangeError);
    });

    it('merge between two writers of one file: a rejection made elsewhere is taken, one made here is kept', () => {
      const base = annAndBob();
      const ours = Gallery.fromState(base.toState(), createIndex(D, { backend: 'exact' }));
      const theirs = Gallery.fromState(base.toState(), createIndex(D, { backend: 'exact' }));
      const mergeBase = mergeBaseOf(base);
      ours.reject('bob', unit(120));
      theirs.reject('ann', unit(30));
      theirs.rename('ann', 'anne');
      mergeInto(ours, mergeBase, theirs);
      assert.equal(ours.identity('anne')?.rejections, 1);
      assert.equal(ours.identity('bob')?.rejections, 1);
      assert.equal(ours.match(unit(30), { threshold: 0.6 }).name, UNKNOWN);
    });

    it('are exported and imported with their person; a malformed one refuses the import', () => {
      const g = annAndBob();
      g.reject('ann', unit(30));
      const doc = exportGallery(g);
      assert.equal(doc.identities.find((p) => p.name === 'ann')?.rejections?.length, 1);
      assert.equal(doc.identities.find((p) => p.name === 'bob')?.rejections, undefined);
      const copy = newGallery();
      importGallery(copy, doc);
      assert.equal(copy.match(unit(30), { threshold: 0.6 }).name, UNKNOWN);
      const broken = structuredClone(doc);
      broken.identities[0].rejections = [{ addedAt: 'yesterday', vector: 'AAAA' }];
      const other = newGallery();
      assert.throws(
        () => importGallery(other, broken),
        /rejections\[0\]\.addedAt[\s\S]*rejections\[0\]\.vector/,
      );
      assert.equal(other.size, 0);
    });
  });

  describe('commands', () => {
    const handle = (g: Gallery): GalleryHandle =>
      queuedGallery(
        memoryGalleryFile(g, async () => undefined),
        { threshold: () => 0.6 },
      );

    it('reject an unknown face by id; the unknowns list then offers the next nearest person', async () => {
      const g = annAndBob();
      const faceId = g.unknowns.add(unit(40));
      const gallery = handle(g);
      const listed = (await runGalleryCommand(gallery, 'unknowns', { nearest: true })) as {
        threshold: number;
        faces: { id: number; nearest?: { name: string } }[];
      };
      assert.equal(listed.threshold, 0.6);
      assert.deepEqual(
        listed.faces.map((f) => [f.id, f.nearest?.name]),
        [[faceId, 'ann']],
      );
      const answer = await runGalleryCommand(gallery, 'reject', { name: 'ann', unknownId: faceId });
      assert.deepEqual(answer, {
        name: 'ann',
        rejectionId: g.rejectionsOf('ann')[0].record.id,
        unknownId: faceId,
        rejections: 1,
      });
      const after = (await runGalleryCommand(gallery, 'unknowns', { nearest: true })) as {
        faces: { nearest?: { name: string } }[];
      };
      assert.equal(after.faces[0].nearest?.name, 'bob', 'the face stays, and Ann is no longer offered');
      const shown = (await runGalleryCommand(gallery, 'show', { name: 'ann' })) as {
        rejected: { id: number }[];
      };
      assert.equal(shown.rejected.length, 1);
      await runGalleryCommand(gallery, 'delete', { rejectionIds: [shown.rejected[0].id] });
      assert.equal(g.rejectionCount, 0);
    });

    it('reject an embedding given as numbers, and forget unknown faces by id ("ignore")', async () => {
      const g = annAndBob();
      const a = g.unknowns.add(unit(40));
      const b = g.unknowns.add(unit(200, 0.5));
      const gallery = handle(g);
      await runGalleryCommand(gallery, 'reject', { name: 'bob', embedding: Array.from(unit(60)) });
      assert.equal(g.identity('bob')?.rejections, 1);
      // A face's Float32Array after JSON (MQTT, a dashboard): {"0": …, "1": …}.
      const viaJson = JSON.parse(JSON.stringify(unit(70))) as Record<string, number>;
      await runGalleryCommand(gallery, 'reject', { name: 'bob', embedding: viaJson });
      assert.deepEqual(Array.from(g.rejectionsOf('bob')[1].vector), Array.from(unit(70)));
      assert.deepEqual(await runGalleryCommand(gallery, 'unknowns', { delete: [a] }), { deleted: 1 });
      assert.deepEqual(
        g.unknowns.all().map((u) => u.id),
        [b],
      );
    });

    it('explain what is wrong with a bad reject, unknowns delete or rejection delete, changing nothing', async () => {
      const g = annAndBob();
      const gallery = handle(g);
      const refused = async (command: 'reject' | 'unknowns' | 'delete', payload: unknown, why: RegExp) =>
        assert.rejects(runGalleryCommand(gallery, command, payload), why);
      await refused('reject', { name: 'ann' }, /either payload.unknownId .* or payload.embedding/);
      await refused('reject', { name: 'ann', unknownId: 1, embedding: [1] }, /either/);
      await refused('reject', { unknownId: 1 }, /payload.name must be a non-empty string/);
      await refused('reject', { name: 'ann', unknownId: 99 }, /no unknown face 99/);
      await refused('reject', { name: 'ann', embedding: ['x'] }, /array of numbers/);
      await refused('reject', { name: 'ann', embedding: { a: 1 } }, /array of numbers/);
      await refused('reject', { name: 'ann', embedding: [1, 2] }, /Float32Array of 8 values/);
      await refused('reject', { name: 'cy', embedding: Array.from(unit(1)) }, /no identity named 'cy'/);
      await refused('unknowns', { delete: [] }, /non-empty array of unknown-face ids/);
      await refused('delete', { rejectionIds: [42] }, /no rejection 42/);
      await assert.rejects(runGalleryCommand(gallery, 'reject', { name: 'ann' }), CommandError);
      assert.equal(g.rejectionCount, 0);
    });
  });

  describe('with real faces', function () {
    this.timeout(120_000);
    let flow: FaceFlow;
    before(async function () {
      requireSharedData(this);
      flow = await FaceFlow.open();
    });
    after(() => flow?.dispose());

    const lfw = (person: string, n: number) =>
      shared('lfw', 'images', person, `${person}_${String(n).padStart(4, '0')}.jpg`);
    // LFW photos are centred on their subject, who is the largest face; some show a bystander too.
    const embed = async (file: string) => {
      const faces = await flow.analyze(await decodeImage(file));
      const area = (f: (typeof faces)[number]) => (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);
      return faces.sort((a, b) => area(b) - area(a))[0].embedding as Float32Array;
    };

    it('a stranger taken for someone at a careless threshold is not taken for them again in another photo', async () => {
      const g = new Gallery(flow.embedder.id, flow.embedder.dimension, createIndex(flow.embedder.dimension));
      g.addEmbedding('Tony Blair', await embed(lfw('Tony_Blair', 1)));
      // A threshold nobody should ship, so that the wrong name happens; the default would say unknown.
      const careless = { threshold: -1, ambiguityMargin: 0 };
      const stranger = [await embed(lfw('Colin_Powell', 1)), await embed(lfw('Colin_Powell', 2))];
      assert.equal(g.match(stranger[0], careless).name, 'Tony Blair');
      assert.equal(g.match(stranger[1], careless).name, 'Tony Blair');
      g.reject('Tony Blair', stranger[0]);
      assert.equal(g.match(stranger[1], careless).name, UNKNOWN, 'another photo of the same stranger');
      assert.equal(g.match(await embed(lfw('Tony_Blair', 2)), careless).name, 'Tony Blair', 'Blair himself');
    });
  });
});

/** Rewrites a gallery file's checksum after its header was edited (as a newer or older writer would have). */
function resealChecksum(buf: Buffer): void {
  createHash('sha256').update(buf.subarray(0, 64)).update(buf.subarray(96)).digest().copy(buf, 64);
}
