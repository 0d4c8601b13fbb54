import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

import { ffmpegPath } from '../src/io/ffmpeg';
import { faceLook, lookChanged, lookDistance, type FaceLook } from '../src/tracking/faceLook';
import { FaceTracking } from '../src/tracking/operators';
import type { Box, Face, Frame, Identity } from '../src/types';
import { frameFromI420, i420Size, pendingI420 } from '../src/util/i420';
import { requireSharedData, shared } from './helpers/shared';

const SIZE = 250; // LFW's photos: 250×250, the face in the middle
const FACE_BOX: Box = [70, 70, 180, 190];
const MOVED_BOX: Box = [73, 68, 183, 188];

/** A photo as a camera frame: I420 planes as ffmpeg decodes video, RGB made only when read. */
async function cameraFrame(file: string, seq = 0): Promise<Frame> {
  const { stdout } = await promisify(execFile)(
    ffmpegPath(),
    ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'yuv420p', 'pipe:1'],
    { encoding: 'buffer', maxBuffer: 16 * 2 ** 20 },
  );
  assert.equal(stdout.length, i420Size(SIZE, SIZE), file);
  return frameFromI420(
    { cameraId: 'door', seq, ts: 1_000_000 + seq * 66, width: SIZE, height: SIZE },
    stdout,
  );
}

/** The first photo of every `stride`-th person in LFW, `count` of them. */
function lfwPhotos(count: number, stride: number): string[] {
  const root = shared('lfw', 'images');
  const people = readdirSync(root).sort();
  const out: string[] = [];
  for (let i = 0; i < people.length && out.length < count; i += stride) {
    const dir = path.join(root, people[i]);
    out.push(path.join(dir, readdirSync(dir).sort()[0]));
  }
  return out;
}

function face(box: Box): Face {
  return { box, score: 0.9, landmarks: [] };
}

function named(name: string, similarity: number): Identity {
  return { name, similarity, margin: 0.2, topK: [{ name, similarity }] };
}

describe("tracking/faceLook: noticing that a track's box shows another face", function () {
  this.timeout(60_000);
  let photos: string[];
  let frames: Frame[];

  before(async function () {
    requireSharedData(this);
    photos = lfwPhotos(12, 97);
    frames = await Promise.all(photos.map((p) => cameraFrame(p)));
  });

  it('keeps the look of a face moved a little, and tells most other people in the same place', () => {
    const looks = frames.map((f) => faceLook(f, FACE_BOX) as FaceLook);
    for (const [i, f] of frames.entries()) {
      const moved = faceLook(f, MOVED_BOX) as FaceLook;
      assert.equal(
        lookChanged(looks[i], moved),
        false,
        `${photos[i]} moved 3 px: ${JSON.stringify(lookDistance(looks[i], moved))}`,
      );
    }
    let pairs = 0;
    let told = 0;
    for (let i = 0; i < looks.length; i++) {
      for (let j = i + 1; j < looks.length; j++) {
        pairs++;
        if (lookChanged(looks[i], looks[j])) told++;
      }
    }
    // The worst case, two people framed exactly alike: bench/faceLook.ts measures 91 % of 44,850 pairs told apart.
    assert.ok(told >= 0.8 * pairs, `${told} of ${pairs} pairs told apart`);
    // Thresholds nobody can pass turn the check off.
    assert.equal(lookChanged(looks[0], looks[1], { chroma: 1000, layout: -2 }), false);
  });

  it('reads the planes without making the frame RGB, and the RGB of the same frame gives the same look', async () => {
    const planesFrame = await cameraFrame(photos[0]);
    const fromPlanes = faceLook(planesFrame, FACE_BOX) as FaceLook;
    assert.ok(pendingI420(planesFrame), 'the look made no RGB');
    const rgbFrame = await cameraFrame(photos[0]);
    assert.ok(rgbFrame.rgb.length > 0);
    assert.equal(pendingI420(rgbFrame), undefined);
    const fromRgb = faceLook(rgbFrame, FACE_BOX) as FaceLook;
    const d = lookDistance(fromPlanes, fromRgb);
    assert.ok(d.chroma < 1.5, `chroma ${d.chroma}`);
    assert.ok(d.layout > 0.98, `layout ${d.layout}`);
  });

  it('clips the box to the frame, has no look outside it, and takes a flat box for another face', () => {
    const frame = frames[0];
    const clipped = faceLook(frame, [-40, -30, 100, 110]) as FaceLook;
    const inside = faceLook(frame, [0, 0, 100, 110]) as FaceLook;
    assert.deepEqual(lookDistance(clipped, inside).chroma, 0);
    assert.equal(faceLook(frame, [300, 300, 400, 400]), undefined);
    assert.equal(faceLook(frame, [NaN, 0, 10, 10]), undefined);
    assert.equal(faceLook(frame, [50, 50, 50, 90]), undefined, 'an empty box');
    const grey: Frame = {
      cameraId: 'door',
      seq: 0,
      ts: 0,
      width: 64,
      height: 64,
      rgb: Buffer.alloc(64 * 64 * 3, 128),
    };
    const flat = faceLook(grey, [8, 8, 56, 56]) as FaceLook;
    assert.ok(flat.flat && flat.layout.every((v) => v === 0));
    assert.equal(lookChanged(faceLook(frame, FACE_BOX) as FaceLook, flat), true);
    assert.equal(
      lookChanged(flat, faceLook(grey, [4, 4, 40, 40]) as FaceLook),
      false,
      'two flat boxes are alike',
    );
  });

  it('embeds a settled track at once when its box passes to another face, and not before its pace without the check', () => {
    // Person A in the box for 40 frames, then person B in the very same box (a cut, a photo held up);
    // B is the first of the photos whose look differs from A's (most do, see above).
    const a = faceLook(frames[0], FACE_BOX) as FaceLook;
    const b = frames.findIndex((f) => lookChanged(a, faceLook(f, FACE_BOX) as FaceLook));
    assert.ok(b > 0);
    const run = (lookCheck: boolean): number[] => {
      const tracking = new FaceTracking({ minHits: 1, lookCheck });
      const embeddedAt: number[] = [];
      for (let seq = 0; seq < 50; seq++) {
        const source = seq < 40 ? frames[0] : frames[b];
        const frame = frameFromI420(
          { cameraId: 'door', seq, ts: 1_000_000 + seq * 66, width: SIZE, height: SIZE },
          pendingI420(source) as Buffer,
        );
        const { faces } = tracking.trackFrame(frame, [face(FACE_BOX)]);
        const f = faces[0];
        if (tracking.needsEmbedding(f.trackId, f, frame)) {
          embeddedAt.push(seq);
          tracking.vote(f.trackId as number, named(seq < 40 ? 'amy' : 'raj', 0.7), undefined, 0.5);
        }
      }
      return embeddedAt;
    };
    // Two agreeing votes 5 frames apart settle the track: the next embedding 30 frames on.
    assert.deepEqual(run(true), [0, 5, 35, 40, 45]);
    assert.deepEqual(run(false), [0, 5, 35]);
  });
});
