import assert from 'node:assert/strict';
import { decodeImage } from '../src/image/decode';
import { loadModel } from '../src/models/registry';
import type { Detector } from '../src/models/roles';
import { iou, nonMaxSuppression } from '../src/models/nms';
import type { Box, Face, Frame } from '../src/types';
import { MODELS, requireSharedData, shared } from './helpers/shared';

/** The people visible in each group photo, counted by eye. */
const GROUP_FACES: Record<string, number> = { bbt1: 4, bbt2: 3, bbt3: 5, bbt4: 6, bbt5: 5 };

function assertWellFormed(face: Face, frame: Frame, label: string): void {
  const [x1, y1, x2, y2] = face.box;
  assert.ok(x1 >= 0 && y1 >= 0 && x2 <= frame.width && y2 <= frame.height, `${label}: box inside the frame`);
  assert.ok(x2 - x1 > 10 && y2 - y1 > 10, `${label}: box has a size`);
  assert.equal(face.landmarks.length, 5, `${label}: 5 landmarks`);
  for (const [x, y] of face.landmarks) {
    assert.ok(x >= x1 && x <= x2 && y >= y1 && y <= y2, `${label}: landmark (${x}, ${y}) inside ${face.box}`);
  }
  const [leftEye, rightEye, nose, leftMouth, rightMouth] = face.landmarks;
  // "Left" is as seen in the image: the left eye and mouth corner have the smaller x.
  assert.ok(leftEye[0] < rightEye[0], `${label}: left eye left of right eye`);
  assert.ok(leftMouth[0] < rightMouth[0], `${label}: left mouth corner left of right one`);
  // Upright faces: eyes above the nose, nose above the mouth.
  assert.ok(Math.max(leftEye[1], rightEye[1]) < nose[1], `${label}: eyes above nose`);
  assert.ok(nose[1] < Math.max(leftMouth[1], rightMouth[1]), `${label}: nose above mouth`);
}

describe('models/nms', () => {
  it('measures overlap as intersection over union', () => {
    assert.equal(iou([0, 0, 10, 10], [0, 0, 10, 10]), 1);
    assert.equal(iou([0, 0, 10, 10], [10, 10, 20, 20]), 0);
    assert.equal(iou([0, 0, 10, 10], [5, 0, 15, 10]), 50 / 150);
  });

  it('keeps the best of overlapping boxes and every separate one', () => {
    const boxes: Box[] = [
      [0, 0, 10, 10],
      [1, 1, 11, 11],
      [50, 50, 60, 60],
      [0, 0, 10, 9],
    ];
    assert.deepEqual(nonMaxSuppression(boxes, [0.8, 0.9, 0.5, 0.7], 0.4), [1, 2]);
    assert.deepEqual(nonMaxSuppression(boxes, [0.8, 0.9, 0.5, 0.7], 0.95), [1, 0, 3, 2]);
    assert.deepEqual(nonMaxSuppression(boxes, [0.8, 0.9, 0.5, 0.7], 0.4, 1), [1]);
  });
});

for (const [name, file] of [
  ['SCRFD-500M (fixed 640 input)', MODELS.scrfd500m],
  ['SCRFD-2.5G (dynamic input)', MODELS.scrfd2_5g],
] as const) {
  describe(`models/scrfd: ${name}`, () => {
    let detector: Detector;
    before(async function () {
      requireSharedData(this);
      const loaded = await loadModel(file, { threads: 2 });
      assert.equal(loaded.model.role, 'detector');
      detector = loaded.model as Detector;
    });
    after(async () => detector?.dispose());

    for (const [photo, count] of Object.entries(GROUP_FACES)) {
      it(`finds the ${count} people of ${photo}.jpg with landmarks inside their boxes`, async () => {
        const frame = await decodeImage(shared('bbt', 'group', `${photo}.jpg`));
        const faces = await detector.detect(frame);
        assert.equal(faces.length, count);
        faces.forEach((f, i) => assertWellFormed(f, frame, `${photo} face ${i}`));
      });
    }

    it('finds Obama and Biden (and the girl at the lower right) in obama_and_biden.jpg', async () => {
      const frame = await decodeImage(
        shared('face_recognition_examples', 'knn', 'test', 'obama_and_biden.jpg'),
      );
      const faces = await detector.detect(frame);
      assert.equal(faces.length, 3);
      faces.forEach((f, i) => assertWellFormed(f, frame, `face ${i}`));
      const byX = [...faces].sort((a, b) => a.box[0] - b.box[0]);
      // Biden stands left of Obama, both near the top; the partly hidden girl is lower right.
      const [biden, obama, girl] = byX;
      assert.ok(
        Math.abs(biden.box[0] - 759) < 15 && Math.abs(biden.box[1] - 389) < 15,
        `Biden at ${biden.box}`,
      );
      assert.ok(
        Math.abs(obama.box[0] - 1140) < 15 && Math.abs(obama.box[1] - 358) < 15,
        `Obama at ${obama.box}`,
      );
      assert.ok(girl.box[1] > 1000, `the girl is low in the picture: ${girl.box}`);
      assert.ok(Math.min(biden.score, obama.score) > 0.8);
    });

    it('applies the score threshold and the face limit', async () => {
      const frame = await decodeImage(shared('bbt', 'group', 'bbt4.jpg'));
      const all = await detector.detect(frame, { scoreThreshold: 0.3 });
      const strict = await detector.detect(frame, { scoreThreshold: 0.85 });
      assert.ok(strict.length < all.length);
      assert.ok(strict.every((f) => f.score >= 0.85));
      assert.equal((await detector.detect(frame, { maxFaces: 2 })).length, 2);
    });

    it('finds nothing in a blank frame and in a frame smaller than a stride', async () => {
      const grey: Frame = {
        cameraId: '',
        seq: 0,
        ts: 0,
        width: 320,
        height: 240,
        rgb: Buffer.alloc(320 * 240 * 3, 128),
      };
      assert.deepEqual(await detector.detect(grey), []);
      const tiny: Frame = { cameraId: '', seq: 0, ts: 0, width: 3, height: 2, rgb: Buffer.alloc(18, 90) };
      assert.deepEqual(await detector.detect(tiny), []);
    });

    it('reports boxes in source pixels whatever the frame size', async () => {
      // The same photo at two sizes: boxes must scale with it.
      const sharp = (await import('sharp')).default;
      const big = await decodeImage(shared('bbt', 'group', 'bbt3.jpg'));
      const small = await decodeImage(
        await sharp(shared('bbt', 'group', 'bbt3.jpg'))
          .resize(Math.round(big.width / 2))
          .png()
          .toBuffer(),
      );
      const a = (await detector.detect(big)).sort((p, q) => p.box[0] - q.box[0]);
      const b = (await detector.detect(small)).sort((p, q) => p.box[0] - q.box[0]);
      assert.equal(a.length, b.length);
      a.forEach((f, i) => {
        const scaled: Box = b[i].box.map((v) => v * (big.width / small.width)) as Box;
        assert.ok(iou(f.box, scaled) > 0.75, `face ${i}: ${f.box} vs ${scaled}`);
      });
    });
  });
}
