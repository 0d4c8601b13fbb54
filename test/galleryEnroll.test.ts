import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { firstValueFrom, lastValueFrom, of } from 'rxjs';
import sharp from 'sharp';

import { FaceFlow } from '../src/faceflow';
import {
  DEFAULT_MIN_SHARPNESS,
  enrollEmbedding,
  enrollFolder,
  enrollImage,
  enrolledHashes,
} from '../src/gallery/enroll';
import { Gallery, GalleryError } from '../src/gallery/gallery';
import { ExactIndex } from '../src/gallery/exactIndex';
import { decodeImage } from '../src/image/decode';
import { collectUnknowns, matchFaces } from '../src/pipeline/operators';
import { faceSharpness, laplacianVariance } from '../src/quality/sharpness';
import { UNKNOWN, type FaceFrame } from '../src/types';
import { requireSharedData, shared } from './helpers/shared';

const knn = (...p: string[]) => shared('face_recognition_examples', 'knn', ...p);
const bbt = (...p: string[]) => shared('bbt', ...p);

describe('quality/sharpness', () => {
  it('is zero on a flat image and grows with detail', () => {
    const flat = Buffer.alloc(32 * 32 * 3, 128);
    assert.equal(laplacianVariance(flat, 32, 32), 0);
    const stripes = Buffer.alloc(32 * 32 * 3);
    for (let i = 0; i < 32 * 32; i++) stripes.fill(((i % 32) >> 1) % 2 ? 255 : 0, i * 3, i * 3 + 3);
    const soft = Buffer.alloc(32 * 32 * 3);
    for (let i = 0; i < 32 * 32; i++) soft.fill(((i % 32) >> 1) % 2 ? 140 : 116, i * 3, i * 3 + 3);
    assert.ok(laplacianVariance(stripes, 32, 32) > laplacianVariance(soft, 32, 32));
    assert.ok(laplacianVariance(soft, 32, 32) > 0);
  });

  it('rejects a buffer of the wrong size and a margin that leaves nothing', () => {
    assert.throws(() => laplacianVariance(Buffer.alloc(10), 4, 4), /expected 48 bytes/);
    assert.throws(() => laplacianVariance(Buffer.alloc(48), 4, 4, 2), /too small/);
  });

  it('leaves out pixels marked invalid', () => {
    const img = Buffer.alloc(16 * 16 * 3, 100);
    img.fill(255, (8 * 16 + 8) * 3, (8 * 16 + 9) * 3); // one bright dot
    const valid = new Uint8Array(16 * 16).fill(1);
    assert.ok(laplacianVariance(img, 16, 16, 0, valid) > 0);
    for (let y = 6; y < 11; y++) for (let x = 6; x < 11; x++) valid[y * 16 + x] = 0;
    assert.equal(laplacianVariance(img, 16, 16, 0, valid), 0);
  });
});

describe('gallery enrolment from real photos', function () {
  let flow: FaceFlow;
  let tmp: string;
  const newGallery = () =>
    new Gallery(flow.embedder.id, flow.embedder.dimension, new ExactIndex(flow.embedder.dimension));

  before(async function () {
    requireSharedData(this);
    flow = await FaceFlow.open();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-enroll-'));
  });
  after(async () => {
    await flow?.dispose();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it('enrols a folder tree, one identity per folder, photos in sub-folders too, with progress', async () => {
    const root = path.join(tmp, 'people');
    await fs.mkdir(path.join(root, 'obama', '2009'), { recursive: true });
    await fs.mkdir(path.join(root, 'biden'), { recursive: true });
    await fs.copyFile(knn('train', 'obama', 'obama.jpg'), path.join(root, 'obama', 'a.jpg'));
    await fs.copyFile(knn('train', 'obama', 'obama2.jpg'), path.join(root, 'obama', '2009', 'b.jpg'));
    await fs.copyFile(knn('train', 'biden', 'biden.jpg'), path.join(root, 'biden', 'a.jpg'));
    const gallery = newGallery();
    const progress: number[] = [];
    const report = await enrollFolder(flow, gallery, root, {
      onProgress: ({ done, total }) => progress.push(done / total),
    });
    assert.equal(report.enrolled, 3, report.results.map((r) => r.message).join('\n'));
    assert.equal(report.rejected, 0);
    assert.deepEqual(progress, [1 / 3, 2 / 3, 1]);
    assert.deepEqual(
      gallery.list().items.map((i) => [i.name, i.embeddings]),
      [
        ['biden', 1],
        ['obama', 2],
      ],
    );
    // The enrolled people are recognised in a photo they were not enrolled from.
    const frame = await decodeImage(knn('test', 'obama_and_biden.jpg'));
    const faces = await flow.analyze(frame);
    const named = await firstValueFrom(
      of({ frame, faces }).pipe(matchFaces(gallery, { threshold: flow.threshold })),
    );
    // (The photo also shows a child, who must stay Unknown.)
    const names = named.faces.map((f) => f.identity?.name);
    assert.deepEqual(names.filter((n) => n !== UNKNOWN).sort(), ['biden', 'obama']);
  });

  it('refuses the photos of a folder whose name the gallery cannot take, and enrols the others', async () => {
    const root = path.join(tmp, 'named');
    await fs.mkdir(path.join(root, 'Unknown'), { recursive: true });
    await fs.mkdir(path.join(root, 'biden'), { recursive: true });
    await fs.copyFile(knn('train', 'obama', 'obama.jpg'), path.join(root, 'Unknown', 'a.jpg'));
    await fs.copyFile(knn('train', 'biden', 'biden.jpg'), path.join(root, 'biden', 'a.jpg'));
    const gallery = newGallery();
    const report = await enrollFolder(flow, gallery, root);
    const byName = new Map(report.results.map((r) => [r.name, r]));
    assert.equal(byName.get('biden')?.ok, true);
    assert.equal(byName.get('Unknown')?.problem, 'invalid-name');
    assert.match(byName.get('Unknown')?.message ?? '', /a\.jpg: .*Unknown/);
    assert.deepEqual(
      gallery.list().items.map((i) => i.name),
      ['biden'],
    );
  });

  it('refuses the same photo twice by content, whatever its file name', async () => {
    const gallery = newGallery();
    const first = await enrollImage(flow, gallery, 'obama', knn('train', 'obama', 'obama.jpg'));
    assert.ok(first.ok, first.message);
    const copy = path.join(tmp, 'renamed-copy.jpg');
    await fs.copyFile(knn('train', 'obama', 'obama.jpg'), copy);
    const again = await enrollImage(flow, gallery, 'someone else', copy);
    assert.equal(again.problem, 'duplicate');
    assert.equal(gallery.embeddingCount, 1);
    assert.ok(enrolledHashes(gallery).has(first.sha256 as string));
  });

  it('rejects a group photo, a photo with no face, an unreadable file and a missing file', async () => {
    const gallery = newGallery();
    const group = await enrollImage(flow, gallery, 'x', bbt('group', 'bbt1.jpg'));
    assert.equal(group.problem, 'several-faces', group.message);
    const blank = await sharp({ create: { width: 300, height: 300, channels: 3, background: '#7a8b9c' } })
      .jpeg()
      .toBuffer();
    const none = await enrollImage(flow, gallery, 'x', blank, { label: 'blank.jpg' });
    assert.equal(none.problem, 'no-face');
    assert.match(none.message, /^blank\.jpg: no face found/);
    const jpeg = await fs.readFile(knn('train', 'obama', 'obama.jpg'));
    const truncated = await enrollImage(flow, gallery, 'x', jpeg.subarray(0, 40));
    assert.equal(truncated.problem, 'unreadable');
    const missing = await enrollImage(flow, gallery, 'x', path.join(tmp, 'nope.jpg'));
    assert.equal(missing.problem, 'unreadable');
    assert.match(missing.message, /ENOENT/);
    assert.equal(gallery.embeddingCount, 0);
  });

  it('rejects a face that is too small or too blurry, and says by how much', async () => {
    const gallery = newGallery();
    const tiny = await sharp(knn('train', 'obama', 'obama.jpg'))
      .resize({ width: 110 })
      .jpeg()
      .toBuffer();
    const small = await enrollImage(flow, gallery, 'obama', tiny);
    assert.equal(small.problem, 'too-small', small.message);
    assert.match(small.message, /smaller than 48 px/);
    const blurred = await sharp(bbt('faces', 'leonard', 'leonard1.png'))
      .blur(3)
      .png()
      .toBuffer();
    const soft = await enrollImage(flow, gallery, 'leonard', blurred);
    assert.equal(soft.problem, 'too-blurry', soft.message);
    assert.ok((soft.sharpness as number) < DEFAULT_MIN_SHARPNESS);
    // The same photo unblurred is fine: the check is on blur, not on the person or the photo size.
    const sharpOne = await enrollImage(flow, gallery, 'leonard', bbt('faces', 'leonard', 'leonard1.png'));
    assert.ok(sharpOne.ok, sharpOne.message);
    assert.equal(gallery.embeddingCount, 1);
  });

  it('measures a sharp original as sharper than its blurred copy', async () => {
    const original = await decodeImage(knn('train', 'biden', 'biden.jpg'));
    const blurred = await decodeImage(
      await sharp(knn('train', 'biden', 'biden.jpg'))
        .blur(4)
        .png()
        .toBuffer(),
    );
    const [face] = await flow.detect(original);
    assert.ok(faceSharpness(original, face.landmarks) > 4 * faceSharpness(blurred, face.landmarks));
  });

  it('collectUnknowns keeps unmatched faces once each, with thumbnails, and skips small ones', async () => {
    const gallery = newGallery();
    const first = await enrollImage(flow, gallery, 'obama', knn('train', 'obama', 'obama.jpg'));
    assert.ok(first.ok, first.message);
    const frame = await decodeImage(knn('test', 'obama_and_biden.jpg'), { cameraId: 'porch' });
    const faces = await flow.analyze(frame);
    const item = { frame, faces };
    // The same frame twice, as a camera would deliver a person standing still.
    await lastValueFrom(
      of(item, item).pipe(matchFaces(gallery, { threshold: flow.threshold }), collectUnknowns(gallery)),
    );
    const kept = gallery.unknowns.all();
    assert.equal(kept.length, 2, 'biden and the child, each once; obama is known');
    for (const u of kept) {
      assert.equal(u.source, 'porch');
      assert.deepEqual([...(u.thumbnail as Buffer).subarray(0, 2)], [0xff, 0xd8]);
    }
    const strict = newGallery();
    await lastValueFrom(
      of(item).pipe(matchFaces(strict, { threshold: 0.99 }), collectUnknowns(strict, { minFaceSize: 170 })),
    );
    assert.equal(strict.unknowns.size, 2, 'the child (158 px) is too small at 170 px');
  });

  it('refuses a gallery of another model and a bad name before reading anything', async () => {
    const other = new Gallery(
      'another-model',
      flow.embedder.dimension,
      new ExactIndex(flow.embedder.dimension),
    );
    await assert.rejects(enrollImage(flow, other, 'obama', knn('train', 'obama', 'obama.jpg')), GalleryError);
    await assert.rejects(enrollFolder(flow, other, knn('train')), /holds embeddings of 'another-model'/);
    await assert.rejects(
      enrollImage(flow, newGallery(), '  ', knn('train', 'obama', 'obama.jpg')),
      /non-empty/,
    );
    await assert.rejects(enrollFolder(flow, newGallery(), path.join(tmp, 'no-such-dir')), /no such folder/);
  });
});

describe('gallery enrolment from embeddings', () => {
  const gallery = () => new Gallery('m', 3, new ExactIndex(3));

  it('normalises the vector and matches it', () => {
    const g = gallery();
    const id = enrollEmbedding(g, 'ann', [3, 0, 4], { modelId: 'm' });
    assert.deepEqual([...g.vectorsOf('ann')[0].vector], [...Float32Array.from([0.6, 0, 0.8])]);
    assert.equal(g.vectorsOf('ann')[0].record.id, id);
    assert.equal(g.match(Float32Array.from([0.6, 0, 0.8]), { threshold: 0.5 }).name, 'ann');
    assert.equal(g.match(Float32Array.from([0, 1, 0]), { threshold: 0.5 }).name, UNKNOWN);
  });

  it('refuses another model, zero, non-finite and wrongly sized vectors', () => {
    const g = gallery();
    assert.throws(
      () => enrollEmbedding(g, 'ann', [1, 0, 0], { modelId: 'other' }),
      /holds embeddings of 'm'/,
    );
    assert.throws(() => enrollEmbedding(g, 'ann', [0, 0, 0], { modelId: 'm' }), /non-zero finite/);
    assert.throws(() => enrollEmbedding(g, 'ann', [NaN, 0, 1], { modelId: 'm' }), /non-zero finite/);
    assert.throws(() => enrollEmbedding(g, 'ann', [1, 0], { modelId: 'm' }), /3 values/);
    assert.equal(g.embeddingCount, 0);
  });

  it("matchFaces uses the gallery's calibrated threshold when none is given, and says when there is none", async () => {
    const g = gallery();
    enrollEmbedding(g, 'ann', [1, 0, 0], { modelId: 'm' });
    const frame = { cameraId: '', seq: 0, ts: 0, width: 1, height: 1, rgb: Buffer.alloc(3) };
    const face = { box: [0, 0, 1, 1], score: 1, landmarks: [], embedding: Float32Array.from([0.8, 0.6, 0]) };
    const run = (options = {}) =>
      firstValueFrom(of({ frame, faces: [face] } as unknown as FaceFrame).pipe(matchFaces(g, options)));
    await assert.rejects(run(), /needs a threshold/);
    g.threshold = 0.7;
    assert.equal((await run()).faces[0].identity?.name, 'ann');
    g.threshold = 0.9;
    assert.equal((await run()).faces[0].identity?.name, UNKNOWN);
    assert.equal((await run({ threshold: 0.5, mode: 'centroid' })).faces[0].identity?.name, 'ann');
  });
});

describe('gallery/enroll: a face that already answers to another name', function () {
  this.timeout(60_000);
  let flow: FaceFlow;
  before(async function () {
    requireSharedData(this);
    flow = await FaceFlow.open({ threads: 2 });
  });
  after(async () => flow?.dispose());

  const newGallery = () =>
    new Gallery(flow.embedder.id, flow.embedder.dimension, new ExactIndex(flow.embedder.dimension));

  it('is refused with both names, unless look-alikes are allowed', async () => {
    const g = newGallery();
    assert.ok((await enrollImage(flow, g, 'obama', knn('train', 'obama', 'obama.jpg'))).ok);
    assert.ok((await enrollImage(flow, g, 'biden', knn('train', 'biden', 'biden.jpg'))).ok, 'another person');

    const refused = await enrollImage(flow, g, 'barack', knn('train', 'obama', 'obama2.jpg'));
    assert.equal(refused.ok, false);
    assert.equal(refused.problem, 'looks-like-another');
    assert.equal(refused.lookalike?.name, 'obama');
    assert.ok((refused.lookalike?.similarity ?? 0) >= flow.threshold);
    assert.match(refused.message, /face matches 'obama' .*not enrolled as 'barack'/);
    assert.equal(g.has('barack'), false, 'nothing of the refused person is kept');

    // More photos of the same person are what enrolment is for.
    assert.ok((await enrollImage(flow, g, 'obama', knn('train', 'obama', 'obama2.jpg'))).ok);
    // Twins, or a second name on purpose.
    const allowed = await enrollImage(flow, g, 'barack', knn('test', 'obama1.jpg'), { allowLookalike: true });
    assert.ok(allowed.ok, allowed.message);
  });

  it("uses the gallery's calibrated threshold when it has one", async () => {
    const g = newGallery();
    assert.ok((await enrollImage(flow, g, 'obama', knn('train', 'obama', 'obama.jpg'))).ok);
    g.threshold = 0.999;
    const r = await enrollImage(flow, g, 'barack', knn('train', 'obama', 'obama2.jpg'));
    assert.ok(r.ok, 'under a stricter threshold the two photos are not the same person');
  });
});
