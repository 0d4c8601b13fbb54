/**
 * Issue 15, weak spot: a camera that refuses connections was reported at every retry, for ever.
 * Now the log gets the first failure, changes of reason, sparse reminders and the recovery.
 */
import assert from 'node:assert/strict';

import { CameraLog, type CameraLogLine } from '../src/io/cameraLog';
import { CameraSource, type CameraEvent } from '../src/io/cameraSource';
import { duration, FailureLog } from '../src/io/failureLog';
import { freePort } from './helpers/demoProcess';
import { waitForNoLeftovers } from './helpers/processes';
import { requireGstRtspServer, RtspTestServer } from './helpers/rtspServer';
import { requireSharedData, shared } from './helpers/shared';

const MIN = 60_000;

describe('FailureLog: which retries of a failing connection are logged', () => {
  it('logs the first failure, then only a change of reason, reminders at 1 min, 10 min and hourly, and the recovery', () => {
    let now = 1_000_000;
    const log = new FailureLog('camera door', { now: () => now });
    const lines: [number, string][] = [];
    const fail = (reason: string, kind?: string) => {
      const line = log.failed(reason, kind);
      if (line !== undefined) lines.push([now, line]);
    };
    // Two and a half hours of a retry every 2 s.
    const start = now;
    for (let t = 0; t <= 150 * MIN; t += 2000) {
      now = start + t;
      fail('connection refused');
    }
    assert.deepEqual(
      lines.map(([t]) => (t - start) / MIN),
      [0, 1, 10, 70, 130],
      lines.map(([, l]) => l).join('\n'),
    );
    assert.match(
      lines[0][1],
      /^camera door: connection refused \(retrying; logged again if the reason changes, after 1 min, 10 min, every 1 h/,
    );
    assert.match(lines[1][1], /^camera door: still failing after 1 min: connection refused \(31 attempts\)$/);
    assert.equal(log.failing, true);

    now += 2000;
    fail('authentication failed (401 Unauthorized)', 'auth');
    assert.match(lines.at(-1)![1], /now authentication failed .*attempt 4502, failing for 2 h 30 min/);
    now += 2000;
    fail('authentication failed (401 Unauthorized)', 'auth');
    assert.equal(lines.length, 6, 'the same new reason again is not logged');

    now += 2000;
    const back = log.recovered();
    assert.match(back ?? '', /^camera door: works again after 4503 failed attempts in 2 h 30 min$/);
    assert.equal(log.recovered(), undefined, 'said once');
    assert.equal(log.failing, false);
    // A new outage starts a new story.
    assert.match(log.failed('connection refused') ?? '', /^camera door: connection refused \(retrying/);
  });

  it('skips reminders whose time passed while nothing was retried', () => {
    let now = 0;
    const log = new FailureLog('broker', { now: () => now });
    log.failed('refused');
    now = 5 * 3_600_000;
    assert.match(log.failed('refused') ?? '', /still failing after 5 h/);
    now += 60_000;
    assert.equal(log.failed('refused'), undefined);
  });

  it('formats durations for people', () => {
    assert.deepEqual([45_000, 600_000, 3_600_000, 7_500_000].map(duration), [
      '45 s',
      '10 min',
      '1 h',
      '2 h 5 min',
    ]);
  });
});

describe("CameraLog: a camera's events as log lines", () => {
  const base = { cameraId: 'clip', source: '/videos/clip.mp4', ts: 0 };
  const down = {
    ...base,
    type: 'down',
    reason: 'Invalid data found when processing input',
    cause: 'failed',
    frames: 0,
    code: 1,
    signal: null,
  } as const;

  it('says nothing of a failure that is not retried: the error that ends the stream is logged as such', () => {
    const log = new CameraLog('clip');
    assert.equal(log.note(down), undefined);
    assert.equal(log.note({ ...base, type: 'connecting', attempt: 0 }), undefined);
  });

  it('logs a retried failure once, at its reconnecting event', () => {
    const log = new CameraLog('door');
    assert.equal(log.note(down), undefined);
    assert.match(
      log.note({ ...base, type: 'reconnecting', attempt: 1, delayMs: 1000 })?.text ?? '',
      /^camera door: Invalid data/,
    );
    assert.equal(log.note(down), undefined);
    assert.equal(log.note({ ...base, type: 'reconnecting', attempt: 2, delayMs: 2000 }), undefined);
  });
});

describe('CameraSource against a refused port (real ffmpeg, 127.0.0.1)', function () {
  this.timeout(90_000);

  afterEach(async () => {
    assert.deepEqual(await waitForNoLeftovers(), [], 'no ffmpeg left behind');
  });

  /** A camera on a port where nothing listens, retried every 20–50 ms, its log lines and events recorded. */
  async function refusedCamera(port: number) {
    const camera = new CameraSource(
      { kind: 'rtsp', url: `rtsp://viewer:n0t-in-logs@127.0.0.1:${port}/stream`, transport: 'tcp' },
      { cameraId: 'door', width: 160, reconnect: { baseMs: 20, maxMs: 50, jitter: 0 } },
    );
    const health = new CameraLog(camera.cameraId);
    const lines: CameraLogLine[] = [];
    const events: CameraEvent[] = [];
    camera.events$.subscribe((event) => {
      events.push(event);
      const line = health.note(event);
      if (line) lines.push(line);
    });
    const running = camera.frames$.subscribe({ error: () => undefined });
    const until = async (what: string, check: () => boolean) => {
      const deadline = Date.now() + 60_000;
      while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(check(), `timed out waiting for ${what}`);
    };
    const downs = () => events.filter((e) => e.type === 'down');
    return { lines, events, downs, until, stop: () => running.unsubscribe() };
  }

  it('logs one line over many refused retries', async () => {
    const cam = await refusedCamera(await freePort());
    try {
      await cam.until('8 refused attempts', () => cam.downs().length >= 8);
      const refused = cam.downs();
      assert.ok(
        refused.every((e) => e.type === 'down' && e.cause === 'refused'),
        JSON.stringify(refused.find((e) => e.type === 'down' && e.cause !== 'refused')),
      );
      assert.equal(cam.lines.length, 1, cam.lines.map((l) => l.text).join('\n'));
      assert.equal(cam.lines[0].level, 'warn');
      assert.match(cam.lines[0].text, /^camera door: connection refused \(retrying/);
      assert.ok(!cam.lines[0].text.includes('n0t-in-logs'));
    } finally {
      cam.stop();
    }
  });

  it('logs one line when the refusing camera comes up (real RTSP server on that port)', async function () {
    requireSharedData(this);
    requireGstRtspServer(this);
    const port = await freePort();
    const cam = await refusedCamera(port);
    let server: RtspTestServer | undefined;
    try {
      await cam.until('3 refused attempts', () => cam.downs().length >= 3);
      server = await RtspTestServer.start({
        file: shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4'),
        port,
      });
      await cam.until('the camera up', () => cam.events.some((e) => e.type === 'up'));
      assert.equal(cam.lines.length, 2, cam.lines.map((l) => l.text).join('\n'));
      assert.equal(cam.lines[1].level, 'info');
      assert.match(cam.lines[1].text, /^camera door: works again after \d+ failed attempts in \d+ s$/);
    } finally {
      cam.stop();
      await server?.stop();
    }
  });
});
