/**
 * The detector's picture: ffmpeg shrinking each camera frame to the detector's letterbox size beside the
 * full frame (`detectorInput`), paired with its frame, used by the letterbox, forgotten when the frame's
 * pixels are read or replaced.
 */
import assert from 'node:assert/strict';
import { lastValueFrom, take, toArray } from 'rxjs';

import { fitInside, letterbox } from '../src/image/letterbox';
import { fileFrames } from '../src/io/cameraSource';
import { CameraError } from '../src/io/ffmpeg';
import { detectorBox, ffmpegArgs } from '../src/io/ffmpegArgs';
import { FramePairer, type UnpairedFrame } from '../src/io/framePairer';
import type { Frame } from '../src/types';
import {
  frameFromI420,
  i420Size,
  pendingDetectorPicture,
  pendingI420,
  shrinkI420,
  type DetectorPicture,
} from '../src/util/i420';
import { waitForNoLeftovers } from './helpers/processes';
import { requireSharedData, shared } from './helpers/shared';

const HAMILTON = shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4');
const NORM = {
  mean: [127.5, 127.5, 127.5] as [number, number, number],
  std: [127.5, 127.5, 127.5] as [number, number, number],
};

/** What the letterbox would make of the frame's planes itself, as packed RGB rounded to bytes. */
function shrunkInJs(frame: Frame, width: number, height: number): Buffer {
  const out = Buffer.alloc(width * height * 3);
  shrinkI420(pendingI420(frame)!, frame.width, frame.height, width, height, (x, y, r, g, b) => {
    const i = (y * width + x) * 3;
    out[i] = Math.round(r);
    out[i + 1] = Math.round(g);
    out[i + 2] = Math.round(b);
  });
  return out;
}

function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

describe('io: the command line for the detector picture', () => {
  const input = { kind: 'rtsp' as const, url: 'rtsp://127.0.0.1:8554/cam' };
  const context = { fpsMode: true, platform: 'linux' as const };
  /** The frames' output: every decoded frame, raw I420, on stdout. */
  const FRAMES_ONE_FOR_ONE = ['-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'yuv420p', 'pipe:1'];

  it('adds nothing without detectorInput (or with 0)', () => {
    for (const output of [{}, { detectorInput: 0 }]) {
      const args = ffmpegArgs(input, output, context);
      assert.ok(!args.includes('-filter_complex'));
      assert.deepEqual(args.slice(args.indexOf('-map')), [
        '-map',
        '0:v:0',
        '-an',
        '-sn',
        '-dn',
        ...FRAMES_ONE_FOR_ONE,
      ]);
    }
  });

  it('splits the decoded frame: the picture to fd 3 first, then the frame to stdout, both one for one', () => {
    const args = ffmpegArgs(input, { detectorInput: 256 }, context);
    const graph = args[args.indexOf('-filter_complex') + 1];
    assert.match(graph, /^\[0:v\]split=2\[frame\]\[small\];\[small\]scale=w=/);
    // The letterbox's arithmetic, commas escaped for the filter graph.
    assert.ok(graph.includes('w=max(1\\,min(256\\,round(iw*min(256/iw\\,256/ih))))'), graph);
    assert.ok(graph.includes('h=max(1\\,min(256\\,round(ih*min(256/iw\\,256/ih))))'), graph);
    assert.ok(graph.endsWith(':flags=area:in_color_matrix=bt601,format=rgb24[picture]'), graph);
    assert.deepEqual(args.slice(args.indexOf('-filter_complex') + 2), [
      '-map',
      '[picture]',
      '-fps_mode',
      'passthrough',
      '-f',
      'rawvideo',
      'pipe:3',
      '-map',
      '[frame]',
      ...FRAMES_ONE_FOR_ONE,
    ]);
  });

  it('caps both outputs at the same rate, scales before the split, and takes a box of two sides', () => {
    const args = ffmpegArgs(
      input,
      { detectorInput: { width: 320, height: 240 }, fps: 5, width: 960 },
      { fpsMode: false, platform: 'linux' },
    );
    const graph = args[args.indexOf('-filter_complex') + 1];
    assert.match(graph, /^\[0:v\]scale=960:-2,split=2/);
    assert.ok(graph.includes('round(iw*min(320/iw\\,240/ih))'));
    assert.ok(!args.includes('-vf'));
    assert.equal(args.filter((a) => a === '-r').length, 2);
    assert.equal(args.filter((a) => a === '-vsync').length, 2);
    assert.deepEqual(args.slice(args.indexOf('[frame]') - 1), [
      '-map',
      '[frame]',
      '-r',
      '5',
      '-vsync',
      'vfr',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'yuv420p',
      'pipe:1',
    ]);
  });

  it('refuses a bad box with a clear error, and leaves the picture out on Windows', () => {
    for (const bad of [15, 4097, 2.5, -256, '256', { width: 256 }, { width: 256, height: 0 }, null]) {
      assert.throws(
        () => ffmpegArgs(input, { detectorInput: bad as never }, context),
        (err: unknown) =>
          err instanceof CameraError && /^detectorInput must be 0 \(off\), a whole number/.test(err.message),
        JSON.stringify(bad),
      );
    }
    assert.deepEqual(detectorBox({ detectorInput: 256 }, 'linux'), { width: 256, height: 256 });
    assert.equal(detectorBox({ detectorInput: 256 }, 'win32'), undefined);
    assert.ok(
      !ffmpegArgs(input, { detectorInput: 256 }, { fpsMode: true, platform: 'win32' }).includes('pipe:3'),
    );
  });
});

describe('io: FramePairer', () => {
  const frame = (n: number): UnpairedFrame => ({ planes: Buffer.from([n]), width: 1, height: 1 });
  const picture = (n: number): DetectorPicture => ({ rgb: Buffer.from([n, n, n]), width: 1, height: 1 });

  function pairer() {
    const out: Array<[number, number | undefined]> = [];
    const warnings: string[] = [];
    const p = new FramePairer(
      (f, pic) => out.push([f.planes[0], pic?.rgb[0]]),
      (why) => warnings.push(why),
    );
    return { p, out, warnings };
  }

  it('pairs by order whichever pipe is read first', () => {
    const { p, out, warnings } = pairer();
    p.picture(picture(0));
    p.frame(frame(0));
    p.frame(frame(1));
    p.frame(frame(2));
    p.picture(picture(1));
    p.picture(picture(2));
    p.picture(picture(3));
    p.frame(frame(3));
    assert.deepEqual(out, [
      [0, 0],
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    assert.deepEqual(warnings, []);
  });

  it('gives up for good when one side runs four ahead: frames go on without pictures, none lost', () => {
    const { p, out, warnings } = pairer();
    for (let i = 0; i < 4; i++) p.frame(frame(i));
    assert.equal(p.givenUp, true);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /^4 frames came without their partners/);
    p.picture(picture(0));
    p.frame(frame(4));
    assert.deepEqual(
      out,
      [0, 1, 2, 3, 4].map((i) => [i, undefined]),
    );
  });

  it('gives up when told (no size for the pictures), delivering the frames waiting without pictures', () => {
    const { p, out, warnings } = pairer();
    p.frame(frame(0));
    p.giveUp('no size for the detector pictures from ffmpeg');
    p.giveUp('again');
    p.picture(picture(0));
    p.frame(frame(1));
    assert.deepEqual(out, [
      [0, undefined],
      [1, undefined],
    ]);
    assert.deepEqual(warnings, [
      'no size for the detector pictures from ffmpeg; frames go on without detector pictures',
    ]);
  });

  it('delivers the frames still waiting when the stream ends, and none after a stop', () => {
    const ended = pairer();
    ended.p.frame(frame(0));
    ended.p.flush();
    assert.deepEqual(ended.out, [[0, undefined]]);
    const stopped = pairer();
    stopped.p.frame(frame(0));
    stopped.p.clear();
    stopped.p.flush();
    assert.deepEqual(stopped.out, []);
  });
});

describe('util/i420: a frame that carries a detector picture', () => {
  const planes = () => Buffer.alloc(i420Size(8, 4), 128);
  const picture = (): DetectorPicture => ({ rgb: Buffer.alloc(4 * 2 * 3, 200), width: 4, height: 2 });

  it('forgets the picture once the RGB is read or written, as it forgets the planes', () => {
    const read = frameFromI420({ width: 8, height: 4 }, planes(), picture());
    assert.ok(pendingDetectorPicture(read));
    void read.rgb;
    assert.equal(pendingDetectorPicture(read), undefined);
    const written = frameFromI420({ width: 8, height: 4 }, planes(), picture());
    written.rgb = Buffer.alloc(8 * 4 * 3);
    assert.equal(pendingDetectorPicture(written), undefined);
    // A copy is a plain RGB frame.
    assert.equal(
      pendingDetectorPicture({ ...frameFromI420({ width: 8, height: 4 }, planes(), picture()) }),
      undefined,
    );
  });

  it('refuses a picture whose bytes do not match its size', () => {
    assert.throws(
      () => frameFromI420({ width: 8, height: 4 }, planes(), { rgb: Buffer.alloc(10), width: 4, height: 2 }),
      /10 bytes is not a 4×2 RGB picture/,
    );
  });

  it('letterboxes from the picture when it has the inner size, else from the planes', async () => {
    const frame = frameFromI420({ width: 8, height: 4 }, planes(), picture());
    // 8×4 into 8×8 is 8×4: not the picture's size, so the planes (grey 128 → about 130) are used.
    const wide = await letterbox(frame, 8, 8, NORM);
    assert.ok(Math.abs(wide.data[0] * 127.5 + 127.5 - 130.4) < 1, String(wide.data[0]));
    // 8×4 into 4×4 is 4×2: the picture's size, so its 200s are used.
    const small = await letterbox(frame, 4, 4, NORM, 'nhwc');
    assert.ok(Math.abs(small.data[0] * 127.5 + 127.5 - 200) < 1e-4);
    assert.ok(Math.abs(small.data[3 * 4 * 2 - 1] * 127.5 + 127.5 - 200) < 1e-4, 'last pixel of the picture');
    assert.ok(Math.abs(small.data[3 * 4 * 2] * 127.5 + 127.5) < 1e-4, 'padding below it');
    assert.ok(pendingI420(frame), 'neither read the RGB');
  });
});

describe('io: the detector picture from a real ffmpeg', function () {
  this.timeout(120_000);

  before(function () {
    requireSharedData(this);
  });
  afterEach(async () => assert.deepEqual(await waitForNoLeftovers(), [], 'no ffmpeg left behind'));

  for (const [label, options] of [
    ['every frame, 640×360', {}],
    ['a 5 fps cap, scaled to 1280 wide', { fps: 5, width: 1280 }],
  ] as const) {
    it(`comes with every frame, at the letterbox's size, and is that frame's picture (${label})`, async () => {
      const frames = await lastValueFrom(
        fileFrames(HAMILTON, { detectorInput: 256, ...options }).pipe(toArray()),
      );
      assert.ok(frames.length >= 40, `${frames.length} frames`);
      const inner = fitInside(frames[0].width, frames[0].height, 256, 256);
      let same = 0;
      let next = 0;
      for (let k = 0; k < frames.length; k++) {
        const picture = pendingDetectorPicture(frames[k]);
        assert.ok(picture, `frame ${k} has no picture`);
        assert.deepEqual([picture.width, picture.height], [inner.width, inner.height]);
        const own = shrunkInJs(frames[k], inner.width, inner.height);
        const d = meanAbsDiff(own, picture.rgb);
        // ffmpeg's area scaler and src/util/i420.ts agree to a level or two on average.
        assert.ok(d < 3, `frame ${k}: ${d.toFixed(2)} levels from its own frame`);
        same += d;
        if (k + 1 < frames.length) next += meanAbsDiff(own, pendingDetectorPicture(frames[k + 1])!.rgb);
      }
      // Paired one frame off, the pictures would be much further from their frames.
      assert.ok(next > 2 * same, `off by one ${next.toFixed(0)} against ${same.toFixed(0)}`);
    });
  }

  it('stops cleanly in the middle of a stream', async () => {
    const frames = await lastValueFrom(fileFrames(HAMILTON, { detectorInput: 256 }).pipe(take(3), toArray()));
    assert.equal(frames.length, 3);
    assert.ok(frames.every((f) => pendingDetectorPicture(f)));
  });
});
