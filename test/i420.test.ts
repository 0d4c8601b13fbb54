import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { lastValueFrom, take, toArray } from 'rxjs';
import sharp from 'sharp';

import { warpAffineRgb } from '../src/align';
import type { SimilarityTransform } from '../src/align/similarity';
import { FaceFlow } from '../src/faceflow';
import { isFrame } from '../src/image/frameInput';
import {
  frameFromI420,
  i420Size,
  i420ToRgb,
  pendingDetectorPicture,
  pendingI420,
  shrinkI420,
} from '../src/util/i420';
import { seededRandom } from '../src/util/seededRandom';
import { letterbox } from '../src/image/letterbox';
import { fileFrames } from '../src/io/cameraSource';
import { ffmpegPath } from '../src/io/ffmpeg';
import { annotateFrame } from '../src/output/annotate';
import type { Box, Face, Frame } from '../src/types';
import { requireSharedData, shared } from './helpers/shared';

/** One frame of ffmpeg's test picture, as ffmpeg writes it in `pixFmt`. */
async function testPicture(width: number, height: number, pixFmt: 'yuv420p' | 'rgb24'): Promise<Buffer> {
  const { stdout } = await promisify(execFile)(
    ffmpegPath(),
    [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      // testsrc2 draws even sizes only; the scale filter makes odd ones.
      `testsrc2=size=${width + (width % 2)}x${height + (height % 2)}:rate=1,scale=${width}:${height}`,
      '-frames:v',
      '1',
      '-f',
      'rawvideo',
      '-pix_fmt',
      pixFmt,
      'pipe:1',
    ],
    { encoding: 'buffer', maxBuffer: 64 * 2 ** 20 },
  );
  return stdout;
}

function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { mean: number; max: number } {
  assert.equal(a.length, b.length);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

function iou(a: Box, b: Box): number {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const area = (r: Box) => (r[2] - r[0]) * (r[3] - r[1]);
  return (w * h) / (area(a) + area(b) - w * h);
}

const fields = (width: number, height: number) => ({ cameraId: 'cam', seq: 0, ts: 1, width, height });

describe('util/i420: camera frames kept as ffmpeg decodes them', () => {
  it('sizes planes with chroma rounded up for odd sizes', () => {
    assert.equal(i420Size(4, 2), 8 + 2 * 2 * 1);
    assert.equal(i420Size(321, 241), 321 * 241 + 2 * 161 * 121);
  });

  it("converts to RGB as ffmpeg's own conversion does, even and odd sizes", async () => {
    for (const [w, h] of [
      [320, 240],
      [321, 241],
    ]) {
      const planes = await testPicture(w, h, 'yuv420p');
      // ffmpeg's conversion of these very planes (no scaling in between).
      const reference = execFileSync(
        ffmpegPath(),
        ['-v', 'error', '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-s', `${w}x${h}`, '-i', 'pipe:0'].concat([
          '-f',
          'rawvideo',
          '-pix_fmt',
          'rgb24',
          'pipe:1',
        ]),
        { input: planes, maxBuffer: 64 * 2 ** 20 },
      );
      assert.equal(planes.length, i420Size(w, h));
      const { mean } = meanAbsDiff(i420ToRgb(planes, w, h), reference);
      // ffmpeg interpolates chroma between samples; this takes each 2×2 block's sample as it is. At an odd
      // width ffmpeg also stretches the ⌈w/2⌉ chroma samples over the row, so on this picture of hard
      // colour edges a few columns near the right differ (a real camera's picture: 0.5 levels at 321×241).
      const bound = w % 2 === 0 ? 1.5 : 4;
      assert.ok(mean < bound, `${w}×${h}: mean difference ${mean.toFixed(2)} levels`);
    }
  });

  it('converts exactly: limited-range black and white, saturated colours clamp', () => {
    // 2×2: luma 16 (black) and 235 (white) with neutral chroma, then a strong red chroma.
    const rgb = i420ToRgb(Buffer.from([16, 235, 16, 235, 128, 128]), 2, 2);
    assert.deepEqual([...rgb], [0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255]);
    // Below black and above white saturate instead of wrapping round.
    assert.deepEqual(
      [...i420ToRgb(Buffer.from([0, 255, 0, 255, 128, 128]), 2, 2).subarray(0, 6)],
      [0, 0, 0, 255, 255, 255],
    );
    const [r, g, b] = i420ToRgb(Buffer.from([82, 82, 82, 82, 90, 240]), 2, 2);
    assert.ok(r === 255 && g <= 2 && b <= 2, `BT.601 red: ${r},${g},${b}`);
  });

  it('makes a frame whose RGB is converted once, on first read, and then is plain RGB', async () => {
    const planes = await testPicture(64, 48, 'yuv420p');
    const frame = frameFromI420(fields(64, 48), planes);
    assert.equal(pendingI420(frame), planes);
    assert.ok(isFrame(frame), 'a valid frame before conversion');
    assert.equal(pendingI420(frame), planes, 'isFrame did not convert it');
    assert.deepEqual(Object.keys(frame), ['cameraId', 'seq', 'ts', 'width', 'height', 'rgb']);
    const rgb = frame.rgb;
    assert.equal(rgb.length, 64 * 48 * 3);
    assert.equal(frame.rgb, rgb, 'converted once');
    assert.equal(pendingI420(frame), undefined, 'the planes are forgotten once RGB is out');
    assert.deepEqual(rgb, i420ToRgb(planes, 64, 48));
  });

  it('copies (spread, JSON) carry RGB; writing rgb replaces the pixels the detector sees', async () => {
    const planes = await testPicture(64, 48, 'yuv420p');
    const copy = { ...frameFromI420(fields(64, 48), planes) };
    assert.equal(pendingI420(copy), undefined);
    assert.ok(Buffer.isBuffer(copy.rgb) && copy.rgb.length === 64 * 48 * 3);
    const json = JSON.parse(JSON.stringify(frameFromI420(fields(64, 48), planes))) as {
      rgb: { type: string };
    };
    assert.equal(json.rgb.type, 'Buffer');

    const frame = frameFromI420(fields(64, 48), planes);
    const grey = Buffer.alloc(64 * 48 * 3, 128);
    frame.rgb = grey;
    assert.equal(frame.rgb, grey);
    assert.equal(pendingI420(frame), undefined);
    const lb = await letterbox(frame, 64, 64, { mean: [0, 0, 0], std: [1, 1, 1] }, 'nhwc');
    assert.equal(lb.data[0], 128, 'the letterbox reads the RGB written, not the old planes');
  });

  it('refuses planes of the wrong length', () => {
    assert.throws(() => frameFromI420(fields(4, 4), Buffer.alloc(4 * 4 * 3)), /not a 4×4 I420 frame/);
    assert.throws(
      () => shrinkI420(Buffer.alloc(i420Size(4, 4)), 4, 4, 8, 2, () => undefined),
      /cannot shrink/,
    );
  });

  it('shrinks by area: a flat colour stays that colour, uneven factors included', () => {
    for (const [w, h, ow, oh] of [
      [40, 20, 8, 4],
      [41, 21, 16, 9],
      [10, 10, 7, 7],
    ]) {
      const planes = Buffer.alloc(i420Size(w, h));
      planes.fill(120, 0, w * h);
      planes.fill(100, w * h, w * h + Math.ceil(w / 2) * Math.ceil(h / 2));
      planes.fill(150, w * h + Math.ceil(w / 2) * Math.ceil(h / 2));
      const [r, g, b] = i420ToRgb(Buffer.from([120, 100, 150]), 1, 1);
      let seen = 0;
      shrinkI420(planes, w, h, ow, oh, (x, y, rr, gg, bb) => {
        seen++;
        assert.ok(x < ow && y < oh);
        for (const [got, want] of [
          [rr, r],
          [gg, g],
          [bb, b],
        ])
          assert.ok(Math.abs(got - want) < 1.5, `${w}×${h}→${ow}×${oh}: ${got} vs ${want}`);
      });
      assert.equal(seen, ow * oh);
    }
  });

  it('shrinks a large frame to one pixel without the sums overflowing', () => {
    // 9.6 million pixels of limited-range white: 2.3 × 10⁹ in one sum, past what 32 bits hold.
    const [w, h] = [8000, 1200];
    const planes = Buffer.alloc(i420Size(w, h), 128);
    planes.fill(235, 0, w * h);
    let seen: number[] = [];
    shrinkI420(planes, w, h, 1, 1, (_x, _y, r, g, b) => (seen = [r, g, b]));
    for (const c of seen) assert.ok(Math.abs(c - 255) < 0.5, `${seen.join(',')}`);
  });

  it('shrinks each output pixel to the mean of the source pixels under it, for runs of 1 to 15 pixels', () => {
    // Area means worked out the slow way, per output pixel, against the shrink's runs: 2 to 3 pixels (640 → 256),
    // 5 (1280 → 256), 7 to 8 (1920 → 256), 15 (3840 → 256) and the odd ones of small sizes.
    const bounds = (size: number, n: number, k: number): [number, number] => {
      const step = size / n;
      const from = Math.min(size - 1, step >= 1 ? Math.round(k * step) : Math.floor(k * step));
      return [from, Math.max(from + 1, Math.min(size, Math.round((k + 1) * step)))];
    };
    const r = seededRandom(11);
    for (const [w, h, ow, oh] of [
      [640, 24, 256, 9],
      [1280, 40, 256, 8],
      [1920, 32, 256, 4],
      [3840, 30, 256, 2],
      [41, 21, 16, 9],
    ]) {
      const planes = Buffer.from(Array.from({ length: i420Size(w, h) }, () => Math.floor(r() * 256)));
      const cw = Math.ceil(w / 2);
      const ch = Math.ceil(h / 2);
      const mean = (base: number, stride: number, [x0, x1]: number[], [y0, y1]: number[]) => {
        let s = 0;
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) s += planes[base + y * stride + x];
        return s / ((x1 - x0) * (y1 - y0));
      };
      shrinkI420(planes, w, h, ow, oh, (x, y, rr, gg, bb) => {
        const luma = 1.164 * (mean(0, w, bounds(w, ow, x), bounds(h, oh, y)) - 16);
        const cx = bounds(cw, ow, x);
        const cy = bounds(ch, oh, y);
        const u = mean(w * h, cw, cx, cy) - 128;
        const v = mean(w * h + cw * ch, cw, cx, cy) - 128;
        const clamp = (c: number) => Math.min(255, Math.max(0, c));
        const want = [clamp(luma + 1.596 * v), clamp(luma - 0.391 * u - 0.813 * v), clamp(luma + 2.018 * u)];
        [rr, gg, bb].forEach((got, c) =>
          assert.ok(
            Math.abs(got - want[c]) < 1e-9,
            `${w}×${h}→${ow}×${oh} at ${x},${y}: ${got} vs ${want[c]}`,
          ),
        );
      });
    }
  });

  it("letterboxes from the planes without converting the frame, close to libvips' resize of its RGB", async () => {
    const [w, h] = [1280, 720];
    const planes = await testPicture(w, h, 'yuv420p');
    const norm = {
      mean: [127.5, 127.5, 127.5] as [number, number, number],
      std: [127.5, 127.5, 127.5] as [number, number, number],
    };
    const frame = frameFromI420(fields(w, h), planes);
    const fromPlanes = await letterbox(frame, 256, 256, norm, 'nhwc');
    assert.ok(pendingI420(frame), 'the frame is still unconverted');
    const fromRgb = await letterbox(
      { width: w, height: h, rgb: i420ToRgb(planes, w, h) },
      256,
      256,
      norm,
      'nhwc',
    );
    assert.deepEqual([fromPlanes.scaleX, fromPlanes.scaleY], [fromRgb.scaleX, fromRgb.scaleY]);
    // testsrc2 is all hard edges, the worst case for two different filters; in 0..255 levels:
    const { mean } = meanAbsDiff(fromPlanes.data, fromRgb.data);
    assert.ok(mean * 127.5 < 6, `mean difference ${(mean * 127.5).toFixed(2)} levels`);
    // The padding below the 256×144 image is identical.
    assert.deepEqual(fromPlanes.data.subarray(3 * 256 * 144), fromRgb.data.subarray(3 * 256 * 144));
  });

  it('warps faces out of the planes alone: byte for byte what the whole RGB frame gives, borders included', async () => {
    const [w, h] = [161, 121];
    const planes = await testPicture(w, h, 'yuv420p');
    const rgbFrame = { width: w, height: h, rgb: i420ToRgb(planes, w, h) };
    const turn = (deg: number, scale: number, tx: number, ty: number): SimilarityTransform => {
      const c = scale * Math.cos((deg * Math.PI) / 180);
      const s = scale * Math.sin((deg * Math.PI) / 180);
      return { m: [c, -s, tx, s, c, ty] };
    };
    for (const t of [
      turn(0, 1, -40, -30), // inside
      turn(17, 1.7, -50, -20), // rotated and enlarged
      turn(-30, 0.6, 10, 5), // over the top-left corner
      turn(5, 1, -120, -90), // over the bottom-right corner
      turn(0, 1, 200, 200), // wholly outside: black
    ]) {
      const frame = frameFromI420(fields(w, h), planes);
      const fromPlanes = warpAffineRgb(frame, t, 64, 48);
      assert.ok(pendingI420(frame), 'the frame is still unconverted');
      assert.ok(fromPlanes.equals(warpAffineRgb(rgbFrame, t, 64, 48)), `transform ${t.m.join(', ')}`);
    }
  });

  it('annotates a frame straight from its planes: the same picture, the frame left unconverted', async () => {
    const planes = await testPicture(160, 120, 'yuv420p');
    const frame = frameFromI420(fields(160, 120), planes);
    const face: Face = { box: [20, 20, 60, 70], score: 0.9, landmarks: [] };
    const jpeg = await annotateFrame({ frame, faces: [face] }, { showCamera: false, quality: 95 });
    assert.ok(pendingI420(frame), 'the frame is still unconverted');
    const rgbFrame: Frame = { ...fields(160, 120), rgb: i420ToRgb(planes, 160, 120) };
    const reference = await annotateFrame(
      { frame: rgbFrame, faces: [face] },
      { showCamera: false, quality: 95 },
    );
    const decode = (j: Buffer) => sharp(j).raw().toBuffer();
    const { mean } = meanAbsDiff(await decode(jpeg), await decode(reference));
    assert.ok(mean < 0.5, `mean difference ${mean.toFixed(2)}`);
  });
});

/**
 * Every clear face (score ≥ 0.7) of `reference` is in `candidate` too, in the same place (IoU above `minIou`)
 * and as sure (score within 0.05); returns how many were compared.
 */
function assertClearFacesFound(reference: Face[], candidate: Face[], seq: number, minIou: number): number {
  let compared = 0;
  for (const face of reference.filter((f) => f.score >= 0.7)) {
    const same = candidate.find((f) => iou(f.box, face.box) > minIou);
    assert.ok(same, `frame ${seq}: the face at ${face.box.map(Math.round).join(',')} is missing`);
    assert.ok(Math.abs(same.score - face.score) < 0.05, `frame ${seq}: ${same.score} vs ${face.score}`);
    compared++;
  }
  return compared;
}

describe('util/i420: the detector on camera frames', function () {
  this.timeout(120_000);
  let flow: FaceFlow;

  before(async function () {
    requireSharedData(this);
    flow = await FaceFlow.open();
  });
  after(async () => flow?.dispose());

  it('finds the same faces in a frame from its planes as from its RGB (the old path)', async () => {
    const clip = shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4');
    const frames = await lastValueFrom(
      fileFrames(clip, { cameraId: 'stage', width: 1280 }).pipe(take(60), toArray()),
    );
    let compared = 0;
    let facesFromPlanes = 0;
    let facesFromRgb = 0;
    for (const frame of frames.filter((_, i) => i % 3 === 0)) {
      assert.ok(pendingI420(frame), 'camera frames arrive as planes');
      const fromPlanes = await flow.detector.detect(frame);
      assert.ok(pendingI420(frame), 'detection did not convert the frame');
      // A copy reads the frame's RGB, so it is made only now.
      const fromRgb = await flow.detector.detect({ ...frame });
      facesFromPlanes += fromPlanes.length;
      facesFromRgb += fromRgb.length;
      // libvips' resize and this area average differ a little: BlazeFace's boxes move by a few percent (as
      // from one frame to the next), and faces near the 0.6 score threshold can come and go. A clear face
      // must be found both ways, in the same place, as sure.
      compared += assertClearFacesFound(fromRgb, fromPlanes, frame.seq, 0.75);
    }
    // On this clip the planes find the small pianist's face more often (a measured property, not a law).
    assert.ok(
      facesFromPlanes >= facesFromRgb,
      `${facesFromPlanes} faces from planes, ${facesFromRgb} from RGB`,
    );
    assert.ok(compared >= 5, `${compared} faces compared`);
  });

  it("finds the same faces, as sure, from ffmpeg's detector picture as from the planes", async () => {
    const frames = await lastValueFrom(
      fileFrames(shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4'), {
        width: 1280,
        detectorInput: 256,
      }).pipe(take(60), toArray()),
    );
    let compared = 0;
    for (const frame of frames.filter((_, i) => i % 3 === 0)) {
      assert.ok(pendingDetectorPicture(frame));
      const fromPicture = await flow.detector.detect(frame);
      // The same frame without its picture: the letterbox shrinks the planes itself.
      const fromPlanes = await flow.detector.detect(
        frameFromI420(
          {
            cameraId: frame.cameraId,
            seq: frame.seq,
            ts: frame.ts,
            width: frame.width,
            height: frame.height,
          },
          pendingI420(frame)!,
        ),
      );
      assert.ok(pendingDetectorPicture(frame), 'detection read neither the RGB nor dropped the picture');
      compared += assertClearFacesFound(fromPlanes, fromPicture, frame.seq, 0.8);
    }
    assert.ok(compared >= 5, `${compared} faces compared`);
  });
});
