import assert from 'node:assert/strict';
import * as path from 'node:path';
import { lastValueFrom, take, toArray } from 'rxjs';
import sharp from 'sharp';

import { fileFrames } from '../src/io/cameraSource';
import { BlazeFaceDetector } from '../src/models/blazeface';
import { buildModels, builtPaths } from '../src/models/pack/build';
import '../src/models/pack/builders';
import { loadSources } from '../src/models/pack/sources';
import { openSession, signatureOf, type ModelSession, type ModelSignature } from '../src/models/session';
import type { Face, Frame } from '../src/types';
import { iou } from '../src/util/vectors';
import { requireSharedData, shared, PROJECT_ROOT } from './helpers/shared';

const SAMPLES = path.join(PROJECT_ROOT, 'node_modules', '@vladmandic', 'face-api', 'demo');

/** A signature with the input shape replaced: how a model with a fixed input presents itself. */
function withInput(signature: ModelSignature, shape: (number | string)[]): ModelSignature {
  return { ...signature, inputs: [{ ...signature.inputs[0], shape }] };
}

/** A 16:9 cut of a face-api sample photo (1920 wide), at `width`. */
async function wideFrame(file: string, width: number): Promise<Frame> {
  const height = Math.round((width * 9) / 16);
  const { data } = await sharp(path.join(SAMPLES, file))
    .extract({ left: 0, top: 0, width: 1920, height: 1080 })
    .resize(width, height)
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { cameraId: 'photo', seq: 0, ts: 0, width, height, rgb: data };
}

/**
 * Faces found by one input shape are found by the other: every clear face (score ≥ 0.7) of either has a
 * counterpart in the same place, about as sure. Faces at the 0.6 threshold may come and go, as they do
 * from frame to frame.
 */
function assertSameFaces(a: Face[], b: Face[], label: string): number {
  let compared = 0;
  for (const [from, to] of [
    [a, b],
    [b, a],
  ]) {
    for (const face of from.filter((f) => f.score >= 0.7)) {
      const same = to.find((f) => iou(f.box, face.box) > 0.85);
      assert.ok(same, `${label}: the face at ${face.box.map(Math.round).join(',')} is found one way only`);
      assert.ok(Math.abs(same.score - face.score) < 0.1, `${label}: score ${same.score} vs ${face.score}`);
      compared++;
    }
  }
  return compared;
}

describe('models/blazeface: the input takes the frame’s shape', function () {
  this.timeout(120000);
  let session: ModelSession;
  let signature: ModelSignature;
  let free: BlazeFaceDetector;
  /** The same network, every frame letterboxed into 256×256 as before the input was freed. */
  let square: BlazeFaceDetector;

  before(async () => {
    const source = loadSources().find((s) => s.id === 'human-blazeface');
    assert.ok(source);
    const [report] = await buildModels({ ids: [source.id] });
    assert.notEqual(report.status, 'failed', report.error);
    session = await openSession(builtPaths(source).onnxPath, { threads: 1 });
    signature = signatureOf(session);
    free = new BlazeFaceDetector('free', session, signature);
    square = new BlazeFaceDetector('square', session, withInput(signature, [1, 256, 256, 3]));
  });
  after(async () => session?.release());

  it('is built with a free height and width', () => {
    const shape = signature.inputs[0].shape;
    assert.equal(shape.length, 4);
    assert.equal(typeof shape[1], 'string');
    assert.equal(typeof shape[2], 'string');
    assert.equal(shape[3], 3);
  });

  it('sizes the input to the frame: long side 256, short side rounded up to whole 32-px cells', () => {
    const size = (width: number, height: number) => free.inputSizeFor({ width, height });
    assert.deepEqual(size(1280, 720), [256, 160]);
    assert.deepEqual(size(640, 360), [256, 160]);
    assert.deepEqual(size(640, 480), [256, 192]);
    assert.deepEqual(size(250, 250), [256, 256], 'square photos (LFW) see exactly what they saw before');
    assert.deepEqual(size(720, 1280), [160, 256], 'a portrait camera');
    assert.deepEqual(size(4000, 10), [256, 32], 'never thinner than one cell');
    assert.deepEqual(size(100, 60), [256, 160], 'small frames are scaled up to the trained size');
    assert.deepEqual(square.inputSizeFor({ width: 1280, height: 720 }), [256, 256], 'a fixed input is kept');
  });

  it('refuses inputs that are not BlazeFace’s', () => {
    const bad: (number | string)[][] = [
      [1, 256, 128, 3],
      [1, 'h', 256, 3],
      [1, 256, 256, 1],
      [1, 256, 256],
    ];
    for (const shape of bad) {
      assert.throws(
        () => new BlazeFaceDetector('bad', session, withInput(signature, shape)),
        /expected an N×S×S×3 BlazeFace input/,
        shape.join(','),
      );
    }
  });

  it('finds the faces of wide photos that the square letterbox finds', async () => {
    let compared = 0;
    for (const file of ['sample1.jpg', 'sample2.jpg', 'sample3.jpg', 'sample4.jpg']) {
      for (const width of [1280, 640]) {
        const frame = await wideFrame(file, width);
        const a = await square.detect(frame);
        const b = await free.detect(frame);
        assert.equal(b.length, a.length, `${file} at ${width}: ${b.length} faces against ${a.length}`);
        compared += assertSameFaces(a, b, `${file} at ${width}`);
      }
    }
    assert.ok(compared >= 16, `${compared} faces compared`);
  });

  it('reuses input tensors per shape: frames of two shapes in turn give what fresh tensors give', async () => {
    const wide = await wideFrame('sample1.jpg', 1280);
    const { data, info } = await sharp(path.join(SAMPLES, 'sample2.jpg'))
      .resize(640, 640, { fit: 'cover' })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const box: Frame = {
      cameraId: 'photo',
      seq: 1,
      ts: 0,
      width: info.width,
      height: info.height,
      rgb: data,
    };
    const fresh = new BlazeFaceDetector('fresh', session, signature);
    const wideFirst = await fresh.detect(wide);
    const boxFirst = await new BlazeFaceDetector('fresh2', session, signature).detect(box);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await free.detect(wide), wideFirst);
      assert.deepEqual(await free.detect(box), boxFirst);
    }
    assert.ok(wideFirst.length > 0 && boxFirst.length > 0);
  });

  it('finds the faces of real video frames, from their planes, that the square letterbox finds', async function () {
    requireSharedData(this);
    const clip = shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4');
    let compared = 0;
    for (const width of [1280, 640]) {
      const frames = await lastValueFrom(
        fileFrames(clip, { cameraId: 'stage', width }).pipe(take(90), toArray()),
      );
      let countA = 0;
      let countB = 0;
      for (const frame of frames.filter((_, i) => i % 3 === 0)) {
        const a = await square.detect(frame);
        const b = await free.detect(frame);
        countA += a.length;
        countB += b.length;
        compared += assertSameFaces(a, b, `frame ${frame.seq} at ${width}`);
      }
      assert.ok(Math.abs(countA - countB) <= 2, `at ${width}: ${countB} faces against ${countA}`);
    }
    assert.ok(compared >= 20, `${compared} faces compared`);
  });
});
