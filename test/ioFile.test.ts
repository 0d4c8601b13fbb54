import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import { CameraSource, fileFrames, type CameraEvent } from '../src/io/cameraSource';
import { CameraError, ffmpegVersion } from '../src/io/ffmpeg';
import { runningFfmpegCount } from '../src/io/ffmpegProcess';
import type { Frame } from '../src/types';
import { leftoverProcesses, waitForNoLeftovers } from './helpers/processes';
import { requireSharedData, shared } from './helpers/shared';

const HAMILTON = shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4');
const BBT = shared('bbt', 'video', 'short.mp4');

describe('io: video files through ffmpeg', function () {
  this.timeout(60_000);
  let dir: string;

  before(function () {
    requireSharedData(this);
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-io-'));
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => assert.deepEqual(await waitForNoLeftovers(), [], 'no ffmpeg left behind'));

  it('decodes every frame of a clip at its size, in order, and completes', async () => {
    const events: CameraEvent[] = [];
    const frames = await lastValueFrom(
      fileFrames(HAMILTON, { onEvent: (e) => events.push(e) }).pipe(toArray()),
    );
    assert.equal(frames.length, 275);
    for (const [i, f] of frames.entries()) {
      assert.equal(f.seq, i);
      assert.equal(f.width, 640);
      assert.equal(f.height, 360);
      assert.equal(f.rgb.length, 640 * 360 * 3);
      assert.equal(f.cameraId, 'short_hamilton_clip');
      if (i > 0) assert.ok(f.ts >= frames[i - 1].ts);
    }
    // Real pixels, not a blank buffer.
    assert.ok(meanByte(frames[100]) > 20 && meanByte(frames[100]) < 235);
    assert.deepEqual(
      events.map((e) => e.type),
      ['connecting', 'up', 'end'],
    );
    const up = events[1];
    assert.ok(up.type === 'up' && up.width === 640 && up.height === 360);
  });

  it('reads the size from ffmpeg for a non-square-pixel clip, and scales and caps the rate when asked', async () => {
    const raw = await lastValueFrom(fileFrames(BBT).pipe(toArray()));
    assert.deepEqual(
      raw.map((f) => [f.width, f.height]),
      Array(5).fill([820, 460]),
    );
    const small = await lastValueFrom(
      fileFrames(HAMILTON, { width: 320, height: 180, fps: 5, cameraId: 'hall' }).pipe(toArray()),
    );
    // 10 s at a cap of 5 fps: about 50 frames, none duplicated.
    assert.ok(small.length >= 45 && small.length <= 51, `${small.length} frames`);
    assert.ok(small.every((f) => f.width === 320 && f.height === 180 && f.rgb.length === 320 * 180 * 3));
    assert.equal(small[0].cameraId, 'hall');
  });

  it('loops a file without end when asked, until unsubscribed', async () => {
    const frames = await lastValueFrom(fileFrames(BBT, { loop: true }).pipe(take(23), toArray()));
    assert.equal(frames.length, 23);
    assert.deepEqual(
      frames.map((f) => f.seq),
      [...Array(23).keys()],
    );
    // Frame 5 is frame 0 again.
    assert.ok(frames[5].rgb.equals(frames[0].rgb));
  });

  it('reads at the native frame rate with realtime', async () => {
    const started = Date.now();
    await lastValueFrom(fileFrames(HAMILTON, { realtime: true }).pipe(take(16), toArray()));
    // 15 frame intervals at 29.97 fps are 500 ms; without -re this takes a few tens of ms.
    assert.ok(Date.now() - started >= 400, `${Date.now() - started} ms`);
  });

  it('names the path of a missing file, and starts no process', async () => {
    const missing = path.join(dir, 'nope.mp4');
    await assert.rejects(firstValueFrom(fileFrames(missing)), (err: Error) => {
      assert.ok(err instanceof CameraError);
      assert.equal(err.message, `${missing}: no such file`);
      return true;
    });
    assert.equal(runningFfmpegCount(), 0);
  });

  it('names the path and the reason for a corrupt or truncated file, and leaves no process', async () => {
    const garbage = path.join(dir, 'garbage.mp4');
    writeFileSync(garbage, Buffer.alloc(20_000, 0x5a));
    const truncated = path.join(dir, 'truncated.mp4');
    writeFileSync(truncated, readFileSync(HAMILTON).subarray(0, 4000));
    for (const file of [garbage, truncated]) {
      const events: CameraEvent[] = [];
      await assert.rejects(
        firstValueFrom(fileFrames(file, { onEvent: (e) => events.push(e) })),
        (err: Error) => {
          assert.ok(err instanceof CameraError);
          assert.ok(err.message.startsWith(`${file}: `), err.message);
          assert.match(err.message, /Invalid data found|moov atom not found/);
          return true;
        },
      );
      assert.ok(events.some((e) => e.type === 'down'));
      assert.ok(!events.some((e) => e.type === 'reconnecting'), 'a broken file is not retried');
    }
    assert.deepEqual(await waitForNoLeftovers(), []);
  });

  it('leaves no ffmpeg and no zombie after 50 start/stop cycles', async function () {
    const before = leftoverProcesses().length;
    assert.equal(before, 0);
    for (let i = 0; i < 50; i++) {
      // Half looped (ffmpeg would run for ever), half ordinary: both must be stopped by unsubscribing.
      const frame = await firstValueFrom(fileFrames(i % 2 ? HAMILTON : BBT, { loop: i % 2 === 0 }));
      assert.ok(frame.rgb.length > 0);
    }
    const left = await waitForNoLeftovers();
    assert.deepEqual(left, [], `left over: ${JSON.stringify(left)}`);
    assert.equal(runningFfmpegCount(), 0);
  });

  it('keeps only the newest frame for a slow consumer, counting and reporting what it drops', async () => {
    const events: CameraEvent[] = [];
    const camera = new CameraSource(
      { kind: 'file', path: HAMILTON },
      { dropReportMs: 100, onEvent: (e) => events.push(e) },
    );
    let inWork = 0;
    let maxInWork = 0;
    const processed = await lastValueFrom(
      camera
        .processLatest((frame: Frame) => {
          inWork++;
          maxInWork = Math.max(maxInWork, inWork);
          return new Promise<number>((resolve) =>
            setTimeout(() => {
              inWork--;
              resolve(frame.seq);
            }, 25),
          );
        })
        .pipe(toArray()),
    );
    const drops = events.filter((e) => e.type === 'dropped');
    const dropped = drops.reduce((sum, e) => sum + (e.type === 'dropped' ? e.count : 0), 0);
    assert.equal(maxInWork, 1);
    assert.equal(processed.length + dropped, 275, 'every frame processed or reported dropped');
    assert.ok(dropped > 200, `${dropped} dropped`);
    assert.equal(processed.at(-1), 274, 'the last frame is processed');
    const last = drops.at(-1);
    assert.ok(last?.type === 'dropped' && last.total === dropped);
  });

  describe('with the system ffmpeg', () => {
    before(function () {
      if (!existsSync('/usr/bin/ffmpeg')) {
        console.warn('    skipped: no system ffmpeg at /usr/bin/ffmpeg (apt-get install ffmpeg)');
        this.skip();
      }
    });

    it('gives the same frames as the bundled build, within rounding', async () => {
      const system = await ffmpegVersion('/usr/bin/ffmpeg');
      const a = await lastValueFrom(fileFrames(HAMILTON).pipe(toArray()));
      const b = await lastValueFrom(fileFrames(HAMILTON, { ffmpeg: '/usr/bin/ffmpeg' }).pipe(toArray()));
      assert.equal(b.length, a.length);
      let sum = 0;
      let max = 0;
      for (const i of [0, 137, 274]) {
        for (let k = 0; k < a[i].rgb.length; k++) {
          const d = Math.abs(a[i].rgb[k] - b[i].rgb[k]);
          sum += d;
          if (d > max) max = d;
        }
      }
      const mean = sum / (3 * a[0].rgb.length);
      console.log(
        `      system ${system.banner.split(' Copyright')[0]}: mean |Δ| ${mean.toFixed(3)}, max ${max}`,
      );
      assert.ok(mean < 2, `mean difference ${mean}`);
    });
  });
});

function meanByte(frame: Frame): number {
  let sum = 0;
  for (let i = 0; i < frame.rgb.length; i += 97) sum += frame.rgb[i];
  return sum / Math.ceil(frame.rgb.length / 97);
}
