import assert from 'node:assert/strict';

import { CameraRunner, type CameraObserver, type CameraState } from '../src/io/cameraRunner';
import { CameraSource, type CameraEvent } from '../src/io/cameraSource';
import { runningFfmpegCount } from '../src/io/ffmpegProcess';
import type { Frame } from '../src/types';
import { waitForNoLeftovers } from './helpers/processes';
import { requireSharedData, shared } from './helpers/shared';

const HAMILTON = shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4');

/** Everything a runner tells its holder, in order. */
function recorder() {
  const seen = {
    states: [] as CameraState[],
    frames: [] as Frame[],
    events: [] as CameraEvent[],
    logs: [] as string[],
    failures: [] as string[],
    counted: [] as string[],
  };
  const hooks = {
    frame: (f: Frame) => seen.frames.push(f),
    event: (e: CameraEvent) => seen.events.push(e),
    state: (s: CameraState) => seen.states.push(s),
    log: (l: { text: string }) => seen.logs.push(l.text),
    failed: (err: Error) => seen.failures.push(err.message),
  };
  const observer: CameraObserver = {
    starting: () => seen.counted.push('starting'),
    frame: () => seen.counted.push('frame'),
    event: (e) => seen.counted.push(`event:${e.type}`),
    failed: () => seen.counted.push('failed'),
    stopped: () => seen.counted.push('stopped'),
    close: () => seen.counted.push('close'),
  };
  return { seen, hooks, observer };
}

const until = async (check: () => boolean, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('io: a camera run on demand (CameraRunner, what the camera node shows)', function () {
  this.timeout(60_000);

  it('goes connecting → up → fps with frames, and stops for good on stop(), leaving no ffmpeg', async function () {
    requireSharedData(this);
    const { seen, hooks, observer } = recorder();
    const runner = new CameraRunner(
      new CameraSource({ kind: 'file', path: HAMILTON, loop: true }, { cameraId: 'hall' }),
      hooks,
      observer,
    );
    runner.start();
    runner.start(); // a second start while running is ignored
    assert.equal(runner.isRunning, true);
    await until(() => seen.states.some((s) => s.state === 'fps'));
    const kinds = seen.states.map((s) => s.state);
    assert.deepEqual(kinds.slice(0, 2), ['connecting', 'up']);
    const up = seen.states[1] as { width: number; height: number };
    assert.ok(up.width > 0 && up.height > 0);
    const fps = seen.states.find((s) => s.state === 'fps') as { fps: number };
    assert.ok(fps.fps > 1, `fps ${fps.fps}`);
    assert.ok(seen.frames.length > 5);
    assert.ok(seen.events.every((e) => e.cameraId === 'hall'));
    assert.deepEqual(seen.counted.slice(0, 1), ['starting']);

    runner.stop();
    assert.equal(runner.isRunning, false);
    assert.deepEqual(seen.states.at(-1), { state: 'stopped' });
    assert.equal(seen.counted.at(-1), 'stopped');
    const framesAtStop = seen.frames.length;
    await waitForNoLeftovers();
    assert.equal(runningFfmpegCount(), 0);
    assert.equal(seen.frames.length, framesAtStop, 'no frame after stop()');
    runner.close();
    assert.equal(seen.counted.at(-1), 'close');
  });

  it('reports a file that is not there as failed, once, and may be started again', async () => {
    const { seen, hooks, observer } = recorder();
    const runner = new CameraRunner(
      new CameraSource({ kind: 'file', path: '/nonexistent/clip.mp4' }, { cameraId: 'gone' }),
      hooks,
      observer,
    );
    runner.start();
    await until(() => seen.failures.length > 0);
    assert.equal(runner.isRunning, false);
    assert.equal(seen.failures.length, 1);
    const failed = seen.states.find((s) => s.state === 'failed') as { message: string };
    assert.match(failed.message, /clip\.mp4/);
    assert.ok(seen.counted.includes('failed'));
    runner.start();
    await until(() => seen.failures.length > 1);
    runner.close();
  });

  it('tells a camera that stays away once: one down and one retry per reason, while the status shows every attempt', async () => {
    const { seen, hooks, observer } = recorder();
    const runner = new CameraRunner(
      new CameraSource(
        { kind: 'rtsp', url: 'rtsp://127.0.0.1:9/nobody-listens', transport: 'tcp' },
        { cameraId: 'away', reconnect: { baseMs: 50, maxMs: 100, jitter: 0 } },
      ),
      hooks,
      observer,
    );
    runner.start();
    try {
      await until(() => seen.states.filter((s) => s.state === 'reconnecting').length >= 4);
    } finally {
      runner.close();
    }
    const told = seen.events.map((e) => e.type).filter((t) => t !== 'log');
    assert.deepEqual(told, ['connecting', 'down', 'reconnecting'], told.join());
    const lastTold = seen.events.findIndex((e) => e.type === 'reconnecting');
    assert.ok(
      seen.events.slice(lastTold).every((e) => e.type !== 'log'),
      'no ffmpeg line of the attempts after the first',
    );
    assert.ok(seen.counted.filter((c) => c === 'event:down').length >= 4, 'every attempt is counted');
  });
});
