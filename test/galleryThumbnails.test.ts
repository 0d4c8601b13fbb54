import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';

import { FaceFlow } from '../src/faceflow';
import { enrollImage } from '../src/gallery/enroll';
import { ExactIndex } from '../src/gallery/exactIndex';
import { exportGallery, importGallery } from '../src/gallery/exchange';
import { Gallery } from '../src/gallery/gallery';
import { GalleryFile } from '../src/gallery/galleryFile';
import { HEADER_BYTES } from '../src/gallery/store';
import { MAX_THUMBNAIL_BYTES } from '../src/gallery/unknownPool';
import { requireSharedData, shared } from './helpers/shared';

const D = 4;
const MODEL = 'thumb-test';
const options = { modelId: MODEL, dimension: D, backend: 'exact' as const };
const unit = (i: number) => Float32Array.from({ length: D }, (_, k) => (k === i % D ? 1 : 0));

/** A real little JPEG, different for each colour, so that a mix-up between people shows. */
const jpeg = (background: string) =>
  sharp({ create: { width: 112, height: 112, channels: 3, background } })
    .jpeg()
    .toBuffer();

const newGallery = () => new Gallery(MODEL, D, new ExactIndex(D));

/** Every file in `dir`, main file and backups alike, as bytes. */
async function everyFile(dir: string): Promise<Buffer[]> {
  const names = await fs.readdir(dir);
  return Promise.all(names.map((n) => fs.readFile(path.join(dir, n))));
}

describe('gallery: one thumbnail per identity', () => {
  let dir: string;
  let file: string;
  let red: Buffer;
  let blue: Buffer;

  before(async () => {
    red = await jpeg('#c03030');
    blue = await jpeg('#3030c0');
  });
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-thumbs-'));
    file = path.join(dir, 'people.fgal');
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it('keeps a copy, says so in lists, follows a rename and goes with the identity', () => {
    const g = newGallery();
    g.addEmbedding('ann', unit(0));
    g.addEmbedding('bob', unit(1));
    const given = Buffer.from(red);
    g.setThumbnail('ann', given);
    given.fill(0); // the caller's buffer is not the gallery's
    assert.ok(g.thumbnailOf('ann')?.equals(red));
    assert.equal(g.thumbnailOf('bob'), undefined);
    assert.deepEqual(
      g.list().items.map((p) => [p.name, p.hasThumbnail]),
      [
        ['ann', true],
        ['bob', false],
      ],
    );
    // One photo is flagged, so lists can ask for more; a second one clears the flag.
    assert.equal(g.identity('bob')?.singlePhoto, true);
    g.addEmbedding('bob', unit(3));
    assert.equal(g.identity('bob')?.singlePhoto, false);
    g.rename('ann', 'anne');
    assert.ok(g.thumbnailOf('anne')?.equals(red));
    g.setThumbnail('anne', undefined);
    assert.equal(g.identity('anne')?.hasThumbnail, false);
    g.setThumbnail('anne', blue);
    g.removeIdentity('anne');
    g.addEmbedding('anne', unit(2));
    assert.equal(g.thumbnailOf('anne'), undefined, 'a new identity of the same name starts without one');
    assert.throws(() => g.thumbnailOf('nobody'), /no identity named 'nobody'/);
  });

  it('refuses what is not a small JPEG', async () => {
    const g = newGallery();
    g.addEmbedding('ann', unit(0));
    const png = await sharp(red).png().toBuffer();
    assert.throws(() => g.setThumbnail('ann', png), /must be a JPEG/);
    assert.throws(() => g.setThumbnail('ann', 'x' as unknown as Buffer), /Buffer of JPEG bytes/);
    const big = Buffer.concat([red, Buffer.alloc(MAX_THUMBNAIL_BYTES)]);
    assert.throws(() => g.setThumbnail('ann', big), /at most 65536/);
    assert.throws(() => g.setThumbnail('nobody', red), /no identity named/);
    assert.equal(g.identity('ann')?.hasThumbnail, false);
  });

  it('is saved in the file and read back, encrypted with the rest when there is a key', async () => {
    for (const key of [undefined, 'correct horse battery staple']) {
      const opened = await GalleryFile.open(file, { ...options, key });
      opened.gallery.addEmbedding('ann', unit(0));
      opened.gallery.addEmbedding('bob', unit(1));
      opened.gallery.setThumbnail('ann', red);
      await opened.save();
      const bytes = await fs.readFile(file);
      // Nothing in a thumbnail needs the unknown-faces layout: the file stays version 1.
      assert.equal(bytes.readUInt16LE(5), 1);
      assert.equal(bytes.includes(Buffer.from(red.toString('base64'))), key === undefined);
      const again = await GalleryFile.open(file, { ...options, key });
      assert.ok(again.gallery.thumbnailOf('ann')?.equals(red));
      assert.equal(again.gallery.identity('bob')?.hasThumbnail, false);
      await fs.rm(dir, { recursive: true });
      await fs.mkdir(dir);
    }
  });

  it('opens a file written before thumbnails existed, and adds one to it', async () => {
    // Laid out byte by byte as faceflow wrote version 1 files: identities with name, meta and createdAt only.
    const json = Buffer.from(
      JSON.stringify({
        modelId: MODEL,
        dimension: D,
        nextId: 2,
        identities: [{ name: 'ann', meta: { team: 'red' }, createdAt: '2024-01-01T00:00:00.000Z' }],
        embeddings: [{ id: 1, name: 'ann', addedAt: '2024-01-01T00:00:00.000Z' }],
      }),
    );
    const vec = Buffer.alloc(D * 4);
    unit(0).forEach((x, i) => vec.writeFloatLE(x, i * 4));
    const header = Buffer.alloc(HEADER_BYTES);
    header.write('FFGAL', 0, 'ascii');
    header.writeUInt16LE(1, 5);
    header.writeUInt32LE(json.length, 8);
    header.writeUInt32LE(D, 12);
    createHash('sha256').update(header.subarray(0, 64)).update(json).update(vec).digest().copy(header, 64);
    await fs.writeFile(file, Buffer.concat([header, json, vec]));

    const old = await GalleryFile.open(file, options);
    assert.deepEqual(old.problems, []);
    assert.equal(old.recoveredFrom, undefined);
    assert.deepEqual(
      old.gallery.list().items.map((p) => [p.name, p.embeddings, p.hasThumbnail, p.meta]),
      [['ann', 1, false, { team: 'red' }]],
    );
    old.gallery.setThumbnail('ann', blue);
    await old.save();
    assert.ok((await GalleryFile.open(file, options)).gallery.thumbnailOf('ann')?.equals(blue));
  });

  it('leaves out a stored thumbnail that is not a JPEG instead of refusing the gallery', async () => {
    const opened = await GalleryFile.open(file, options);
    opened.gallery.addEmbedding('ann', unit(0));
    await opened.save();
    const bytes = await fs.readFile(file);
    const jsonLength = bytes.readUInt32LE(8);
    const doc = JSON.parse(bytes.subarray(HEADER_BYTES, HEADER_BYTES + jsonLength).toString('utf8'));
    doc.identities[0].thumbnail = Buffer.from('GIF89a not a jpeg').toString('base64');
    const json = Buffer.from(JSON.stringify(doc));
    const vec = bytes.subarray(HEADER_BYTES + jsonLength);
    const header = Buffer.from(bytes.subarray(0, HEADER_BYTES));
    header.writeUInt32LE(json.length, 8);
    createHash('sha256').update(header.subarray(0, 64)).update(json).update(vec).digest().copy(header, 64);
    await fs.writeFile(file, Buffer.concat([header, json, vec]));

    const again = await GalleryFile.open(file, options);
    assert.equal(again.gallery.embeddingCount, 1);
    assert.equal(again.gallery.identity('ann')?.hasThumbnail, false);
  });

  it('is deleted with its identity from the file and every backup', async () => {
    const opened = await GalleryFile.open(file, { ...options, backups: 3 });
    opened.gallery.addEmbedding('ann', unit(0));
    opened.gallery.addEmbedding('bob', unit(1));
    opened.gallery.setThumbnail('ann', red);
    opened.gallery.setThumbnail('bob', blue);
    await opened.save();
    await opened.save(); // now a backup holds ann's picture too
    const picture = Buffer.from(red.toString('base64'));
    assert.ok((await everyFile(dir)).filter((b) => b.includes(picture)).length >= 2);

    await opened.removeIdentity('ann');
    assert.deepEqual(
      (await everyFile(dir)).filter((b) => b.includes(picture)),
      [],
    );
    const again = await GalleryFile.open(file, options);
    assert.equal(again.gallery.has('ann'), false);
    assert.ok(again.gallery.thumbnailOf('bob')?.equals(blue));
  });

  it('travels through export and import, and an import keeps a picture the gallery has', () => {
    const g = newGallery();
    g.addEmbedding('ann', unit(0));
    g.addEmbedding('bob', unit(1));
    g.setThumbnail('ann', red);
    const doc = exportGallery(g);
    assert.equal(doc.identities.find((p) => p.name === 'ann')?.thumbnail, red.toString('base64'));
    assert.equal(
      doc.identities.find((p) => p.name === 'bob')?.thumbnail,
      undefined,
      'no empty field for someone without one',
    );

    const copy = newGallery();
    importGallery(copy, JSON.parse(JSON.stringify(doc)));
    assert.ok(copy.thumbnailOf('ann')?.equals(red));
    assert.equal(copy.identity('bob')?.hasThumbnail, false);

    const other = newGallery();
    other.addEmbedding('ann', unit(2));
    other.setThumbnail('ann', blue);
    other.addEmbedding('bob', unit(3));
    const blueDoc = exportGallery(other);
    blueDoc.identities.find((p) => p.name === 'bob')!.thumbnail = blue.toString('base64');
    importGallery(copy, blueDoc, { onConflict: 'merge' });
    assert.ok(copy.thumbnailOf('ann')?.equals(red), 'the picture already there stays');
    assert.ok(copy.thumbnailOf('bob')?.equals(blue), 'a merge gives one to an identity without');

    const bad = exportGallery(g);
    bad.identities[0].thumbnail = Buffer.from('not a jpeg at all').toString('base64');
    assert.throws(
      () => importGallery(newGallery(), bad),
      /\$\.identities\[0\]\.thumbnail: a thumbnail must be a JPEG/,
    );
  });
});

describe('gallery: enrolment gives an identity its thumbnail (real photos and models)', function () {
  this.timeout(120_000);
  let flow: FaceFlow;
  const knn = (...p: string[]) => shared('face_recognition_examples', 'knn', ...p);

  before(async function () {
    requireSharedData(this);
    flow = await FaceFlow.open();
  });
  after(async () => {
    await flow?.dispose();
  });

  it('takes it from the first accepted photo, not from refused ones, and keeps it', async () => {
    const g = new Gallery(flow.embedder.id, flow.embedder.dimension, new ExactIndex(flow.embedder.dimension));
    const group = await enrollImage(flow, g, 'obama', knn('test', 'obama_and_biden.jpg'));
    assert.equal(group.problem, 'several-faces');
    assert.equal(g.has('obama'), false);

    const first = await enrollImage(flow, g, 'obama', knn('train', 'obama', 'obama.jpg'));
    assert.ok(first.ok, first.message);
    const thumb = g.thumbnailOf('obama') as Buffer;
    assert.deepEqual([...thumb.subarray(0, 2)], [0xff, 0xd8]);
    const meta = await sharp(thumb).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 112, 112]);
    // A face, not the photo's corner: the middle of the picture is far from uniform.
    const stats = await sharp(thumb).extract({ left: 28, top: 28, width: 56, height: 56 }).stats();
    assert.ok(stats.channels[0].stdev > 10, `stdev ${stats.channels[0].stdev}`);

    const second = await enrollImage(flow, g, 'obama', knn('train', 'obama', 'obama2.jpg'));
    assert.ok(second.ok, second.message);
    assert.ok(g.thumbnailOf('obama')?.equals(thumb), 'the first picture stays');
  });
});
