import assert from 'node:assert/strict';
import * as path from 'node:path';
import { firstValueFrom, from, lastValueFrom, of, toArray } from 'rxjs';
import { alignFace, applyTransform, ARCFACE_TEMPLATE_112 } from '../src/align';
import { FaceFlow } from '../src/faceflow';
import { MemoryGallery } from '../src/gallery/memoryGallery';
import { decodeImage } from '../src/image/decode';
import { alignFaces, decodeImages, detectFaces, embedFaces, matchFaces } from '../src/pipeline/operators';
import { UNKNOWN, type FaceFrame, type Frame } from '../src/types';
import { requireSharedData, SHARED_DATA, shared } from './helpers/shared';

const knn = (...p: string[]) => shared('face_recognition_examples', 'knn', ...p);

describe('pipeline operators on real photos', () => {
  let flow: FaceFlow;
  let gallery: MemoryGallery;
  before(async function () {
    requireSharedData(this);
    flow = await FaceFlow.open({ models: path.join(SHARED_DATA, 'models'), threads: 2 });
    gallery = new MemoryGallery(flow.embedder.id);
    for (const [name, file] of [
      ['obama', knn('train', 'obama', 'obama.jpg')],
      ['biden', knn('train', 'biden', 'biden.jpg')],
      ['kit_harington', knn('train', 'kit_harington', 'john1.jpeg')],
    ]) {
      const face = await flow.singleFace(await decodeImage(file), file);
      gallery.add(name, face.embedding as Float32Array);
    }
  });
  after(async () => flow?.dispose());

  it('decode → detect → align → embed → match names the people in a photo', async () => {
    const results = await lastValueFrom(
      from([knn('test', 'obama_and_biden.jpg'), knn('test', 'obama1.jpg')]).pipe(
        decodeImages({ cameraId: 'photos' }),
        detectFaces(flow.detector),
        alignFaces(),
        embedFaces(flow.embedder),
        matchFaces(gallery, { threshold: flow.threshold, topK: 2 }),
        toArray(),
      ),
    );
    assert.equal(results.length, 2);
    assert.deepEqual(
      results.map((r) => r.frame.seq),
      [0, 1],
      'order kept',
    );
    const leftToRight = [...results[0].faces]
      .sort((a, b) => a.box[0] - b.box[0])
      .map((f) => f.identity?.name);
    assert.deepEqual(leftToRight, ['biden', 'obama', UNKNOWN]);
    assert.deepEqual(
      results[1].faces.map((f) => f.identity?.name),
      ['obama'],
    );
    for (const f of results[0].faces) {
      assert.equal(f.aligned?.length, 112 * 112 * 3);
      assert.equal(f.embedding?.length, 128);
      assert.equal(f.identity?.topK.length, 2);
    }
  });

  it('passes frames without faces through untouched', async () => {
    const blank: Frame = {
      cameraId: 'c',
      seq: 3,
      ts: 0,
      width: 64,
      height: 64,
      rgb: Buffer.alloc(64 * 64 * 3),
    };
    const out = await firstValueFrom(
      of(blank).pipe(
        detectFaces(flow.detector),
        alignFaces(),
        embedFaces(flow.embedder),
        matchFaces(gallery, { threshold: 0.3 }),
      ),
    );
    assert.equal(out.frame, blank);
    assert.deepEqual(out.faces, []);
  });

  it('errors clearly when stages are out of order or the input is bad', async () => {
    const frame = await decodeImage(knn('test', 'obama1.jpg'));
    const detected = await firstValueFrom(of(frame).pipe(detectFaces(flow.detector)));
    await assert.rejects(
      firstValueFrom(of(detected).pipe(embedFaces(flow.embedder))),
      /put alignFaces\(\) before it/,
    );
    await assert.rejects(
      firstValueFrom(of(detected).pipe(matchFaces(gallery, { threshold: 0.3 }))),
      /put embedFaces\(\) before it/,
    );
    await assert.rejects(firstValueFrom(of('no-such-file.jpg').pipe(decodeImages())), /no such file/);
  });

  it('aligns real faces so their eyes land on the template within 2 px', async () => {
    for (const file of [
      knn('test', 'obama1.jpg'),
      shared('face_recognition_examples', 'misc', 'lin-manuel-miranda.png'),
    ]) {
      const frame = await decodeImage(file);
      const [face] = await flow.detect(frame);
      const { aligned, transform } = alignFace(frame, face.landmarks);
      // The fitted transform puts the detected eyes near the template...
      for (const i of [0, 1]) {
        const [x, y] = applyTransform(transform, face.landmarks[i]);
        const [tx, ty] = ARCFACE_TEMPLATE_112[i];
        assert.ok(Math.hypot(x - tx, y - ty) < 3, `${file}: transformed eye ${i} at (${x}, ${y})`);
      }
      // ...and the pixels follow: detecting again on the aligned crop finds the eyes there.
      const crop: Frame = { cameraId: '', seq: 0, ts: 0, width: 112, height: 112, rgb: aligned };
      const [again] = await flow.analyzePortrait(crop);
      assert.ok(again, `${file}: a face in the aligned crop`);
      for (const i of [0, 1]) {
        const [x, y] = again.landmarks[i];
        const [tx, ty] = ARCFACE_TEMPLATE_112[i];
        assert.ok(
          Math.hypot(x - tx, y - ty) < 2,
          `${file}: eye ${i} re-detected at (${x}, ${y}), template (${tx}, ${ty})`,
        );
      }
    }
  });

  it('keeps the order of frames under concurrency', async () => {
    const frame = await decodeImage(knn('test', 'obama1.jpg'));
    const frames = Array.from({ length: 4 }, (_, seq): Frame => ({ ...frame, seq }));
    const out: FaceFrame[] = await lastValueFrom(from(frames).pipe(detectFaces(flow.detector), toArray()));
    assert.deepEqual(
      out.map((r) => r.frame.seq),
      [0, 1, 2, 3],
    );
  });
});
