import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inspect } from 'node:util';
import { firstValueFrom, lastValueFrom, Observable, toArray } from 'rxjs';
import { backoffDelay, CameraSource, rtspFrames } from '../src/io/cameraSource';
import { CameraError, ffmpegPath, ffmpegVersion, FFMPEG_ENV, hasFpsMode } from '../src/io/ffmpeg';
import { ffmpegArgs } from '../src/io/ffmpegArgs';
import { parseLogLine, runningFfmpegCount } from '../src/io/ffmpegProcess';
import { FrameCutter } from '../src/io/frameCutter';
import { latestFrame } from '../src/io/latestFrame';
import { maskUrl, SecretMasker } from '../src/io/maskUrl';
import type { CameraEvent } from '../src/io/cameraSource';
import { waitForNoLeftovers } from './helpers/processes';
import { silentTcpServer } from './helpers/rtspServer';

describe('io: URL masking', () => {
  it('masks the password of a URL and keeps everything else', () => {
    assert.equal(
      maskUrl('rtsp://admin:hunter22@10.0.0.5:554/live?ch=1'),
      'rtsp://admin:***@10.0.0.5:554/live?ch=1',
    );
    assert.equal(maskUrl('rtsps://u:p%40ss@cam/x'), 'rtsps://u:***@cam/x');
    // A raw '@' in the password: userinfo runs to the last '@' before the path, as ffmpeg reads it.
    assert.equal(maskUrl('rtsp://admin:p@ss@cam.local/stream'), 'rtsp://admin:***@cam.local/stream');
    assert.equal(maskUrl('rtsp://cam.local/stream'), 'rtsp://cam.local/stream');
    assert.equal(maskUrl('rtsp://viewer@cam.local/stream'), 'rtsp://viewer@cam.local/stream');
    assert.equal(maskUrl('http://cam/snap.jpg?user=a&pwd=zz9&x=1'), 'http://cam/snap.jpg?user=a&pwd=***&x=1');
    assert.equal(maskUrl('/videos/a:b@c.mp4'), '/videos/a:b@c.mp4');
  });

  it('keeps the URL out of what inspecting a camera source prints', () => {
    const camera = new CameraSource({ kind: 'rtsp', url: 'rtsp://admin:Inspect-Me-9@cam/s' });
    assert.equal(camera.label, 'rtsp://admin:***@cam/s');
    assert.equal(camera.cameraId, 'cam/s');
    assert.ok(!inspect(camera, { depth: 10, showHidden: true }).includes('Inspect-Me-9'));
  });

  it('masks the secrets of one URL anywhere in free text', () => {
    const url = 'rtsp://admin:S%3Acret-42@cam:554/s';
    const masker = new SecretMasker(url);
    const basic = Buffer.from('admin:S:cret-42').toString('base64');
    const text = [
      `Input #0, rtsp, from '${url}':`,
      'rtsp://other:pw12@elsewhere/x failed',
      'password S%3Acret-42 and decoded S:cret-42',
      `Authorization: Basic ${basic}`,
    ].join('\n');
    const out = masker.mask(text);
    for (const secret of ['S%3Acret-42', 'S:cret-42', 'pw12', basic]) assert.ok(!out.includes(secret), out);
    assert.match(out, /rtsp:\/\/admin:\*\*\*@cam:554\/s/);
    assert.match(out, /rtsp:\/\/other:\*\*\*@elsewhere/);
  });
});

describe('io: ffmpeg command lines', () => {
  const tail = ['-f', 'rawvideo', '-pix_fmt', 'yuv420p', 'pipe:1'];

  it('reads a file by absolute path through the file: protocol, optionally looped and at native rate', () => {
    const args = ffmpegArgs(
      { kind: 'file', path: 'clip.mp4', loop: true, realtime: true },
      {},
      { fpsMode: false },
    );
    assert.deepEqual(args.slice(0, 5), ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'level+info']);
    const i = args.indexOf('-i');
    assert.equal(args[i + 1], `file:${path.resolve('clip.mp4')}`);
    assert.ok(args.indexOf('-re') < i && args.indexOf('-stream_loop') < i);
    assert.equal(args[args.indexOf('-stream_loop') + 1], '-1');
    assert.deepEqual(args.slice(-7), ['-vsync', 'passthrough', ...tail]);
  });

  it('uses TCP for RTSP unless told udp, and rejects other transports and URLs', () => {
    const tcp = ffmpegArgs({ kind: 'rtsp', url: 'rtsp://cam/s' }, {}, { fpsMode: true });
    assert.equal(tcp[tcp.indexOf('-rtsp_transport') + 1], 'tcp');
    assert.deepEqual(tcp.slice(-7), ['-fps_mode', 'passthrough', ...tail]);
    const udp = ffmpegArgs({ kind: 'rtsp', url: 'rtsp://cam/s', transport: 'udp' }, {}, { fpsMode: true });
    assert.equal(udp[udp.indexOf('-rtsp_transport') + 1], 'udp');
    assert.throws(
      () =>
        ffmpegArgs({ kind: 'rtsp', url: 'rtsp://cam/s', transport: 'http' as 'tcp' }, {}, { fpsMode: true }),
      CameraError,
    );
    assert.throws(
      () => ffmpegArgs({ kind: 'rtsp', url: 'http://u:secret1@cam/s' }, {}, { fpsMode: true }),
      (err: Error) =>
        err instanceof CameraError && !err.message.includes('secret1') && /rtsp:\/\//.test(err.message),
    );
  });

  it('decodes on one thread unless told otherwise; inputArgs still have the last word', () => {
    const threadsOf = (args: string[]) => {
      const i = args.indexOf('-threads');
      assert.ok(i >= 0 && i < args.indexOf('-i'), 'an input option');
      return args.slice(i + 1, args.indexOf('-i')).join(' ');
    };
    const rtsp = { kind: 'rtsp', url: 'rtsp://cam/s' } as const;
    assert.equal(threadsOf(ffmpegArgs(rtsp, {}, { fpsMode: true })), '1');
    assert.equal(threadsOf(ffmpegArgs(rtsp, { decoderThreads: 0 }, { fpsMode: true })), '0');
    assert.equal(threadsOf(ffmpegArgs(rtsp, { decoderThreads: 4 }, { fpsMode: true })), '4');
    assert.equal(
      threadsOf(ffmpegArgs(rtsp, { inputArgs: ['-threads', '3'] }, { fpsMode: true })),
      '1 -threads 3',
      'ffmpeg takes the last -threads given',
    );
    for (const bad of [-1, 1.5, 65, Number.NaN]) {
      assert.throws(
        () => ffmpegArgs(rtsp, { decoderThreads: bad }, { fpsMode: true }),
        (err: Error) =>
          err instanceof CameraError && /decoderThreads must be a whole number from 0/.test(err.message),
        String(bad),
      );
    }
  });

  it('builds V4L2 device arguments, and refuses them off Linux', () => {
    const args = ffmpegArgs(
      { kind: 'device', device: '/dev/video2', inputFormat: 'mjpeg', captureSize: '1280x720', framerate: 15 },
      { width: 640, fps: 5 },
      { fpsMode: false, platform: 'linux' },
    );
    const i = args.indexOf('-i');
    assert.deepEqual(args.slice(i - 10, i + 2), [
      '-f',
      'v4l2',
      '-input_format',
      'mjpeg',
      '-video_size',
      '1280x720',
      '-framerate',
      '15',
      '-threads',
      '1',
      '-i',
      '/dev/video2',
    ]);
    assert.deepEqual(args.slice(i + 2), [
      '-map',
      '0:v:0',
      '-an',
      '-sn',
      '-dn',
      '-vf',
      'scale=640:-2',
      '-r',
      '5',
      '-vsync',
      'vfr',
      ...tail,
    ]);
    assert.throws(
      () => ffmpegArgs({ kind: 'device', device: '/dev/video0' }, {}, { fpsMode: false, platform: 'darwin' }),
      /V4L2, which needs Linux/,
    );
    assert.throws(
      () => ffmpegArgs({ kind: 'device', device: 'video0' }, {}, { fpsMode: false }),
      /absolute path/,
    );
    assert.throws(
      () =>
        ffmpegArgs({ kind: 'device', device: '/dev/video0', captureSize: '720p' }, {}, { fpsMode: false }),
      /captureSize/,
    );
    assert.throws(
      () =>
        ffmpegArgs(
          { kind: 'device', device: '/dev/video0', inputFormat: 'mjpeg;rm' },
          {},
          { fpsMode: false },
        ),
      /inputFormat/,
    );
  });

  it('scales to a fixed size or by one side, and validates sizes and rates', () => {
    const both = ffmpegArgs(
      { kind: 'file', path: '/a.mp4' },
      { width: 320, height: 240 },
      { fpsMode: false },
    );
    assert.equal(both[both.indexOf('-vf') + 1], 'scale=320:240');
    const h = ffmpegArgs({ kind: 'file', path: '/a.mp4' }, { height: 240 }, { fpsMode: false });
    assert.equal(h[h.indexOf('-vf') + 1], 'scale=-2:240');
    assert.throws(
      () => ffmpegArgs({ kind: 'file', path: '/a.mp4' }, { width: 10.5 }, { fpsMode: false }),
      /width/,
    );
    assert.throws(() => ffmpegArgs({ kind: 'file', path: '/a.mp4' }, { fps: 0 }, { fpsMode: false }), /fps/);
    // A bad option fails when the source is built, not at the first subscription.
    assert.throws(() => new CameraSource({ kind: 'file', path: '/a.mp4' }, { height: -1 }), CameraError);
  });

  it('reads level and component from ffmpeg log lines', () => {
    assert.deepEqual(parseLogLine('[rtsp @ 0x55d0c0a1] [error] method DESCRIBE failed: 401 Unauthorized'), {
      level: 'error',
      message: 'rtsp: method DESCRIBE failed: 401 Unauthorized',
    });
    assert.deepEqual(parseLogLine('[warning] -vsync is deprecated. Use -fps_mode'), {
      level: 'warning',
      message: '-vsync is deprecated. Use -fps_mode',
    });
    assert.deepEqual(parseLogLine('no prefix at all'), { level: 'info', message: 'no prefix at all' });
  });
});

describe('io: frame cutting', () => {
  it('reassembles frames exactly from chunks of any size, copying only frames that straddle chunks', () => {
    const frameSize = 7 * 5 * 3;
    const stream = Buffer.alloc(frameSize * 40);
    for (let i = 0; i < stream.length; i++) stream[i] = (i * 31 + (i >> 7)) & 0xff;
    for (const chunkSize of [
      1,
      13,
      frameSize - 1,
      frameSize,
      frameSize + 1,
      3 * frameSize + 2,
      stream.length,
    ]) {
      const frames: Buffer[] = [];
      const chunks: Buffer[] = [];
      const cutter = new FrameCutter(frameSize, (f) => frames.push(Buffer.from(f)));
      const views: boolean[] = [];
      // Small buffers share Node's pool, so "a view of a chunk" means: inside that chunk's bytes.
      const inside = (f: Buffer, c: Buffer): boolean =>
        f.buffer === c.buffer &&
        f.byteOffset >= c.byteOffset &&
        f.byteOffset + f.length <= c.byteOffset + c.length;
      const probe = new FrameCutter(frameSize, (f) => views.push(chunks.some((c) => inside(f, c))));
      for (let o = 0; o < stream.length; o += chunkSize) {
        const chunk = Buffer.from(stream.subarray(o, o + chunkSize));
        chunks.push(chunk);
        cutter.push(chunk);
        probe.push(chunk);
      }
      assert.equal(frames.length, 40, `chunk ${chunkSize}`);
      assert.ok(Buffer.concat(frames).equals(stream), `chunk ${chunkSize}`);
      assert.equal(cutter.pendingBytes, 0);
      // Whole chunks of one frame or more give views into the chunk, no copies.
      if (chunkSize === frameSize || chunkSize === stream.length) assert.ok(views.every(Boolean));
      if (chunkSize < frameSize) assert.ok(!views.some(Boolean));
    }
  });

  it('stops mid-chunk when told to from inside the frame callback', () => {
    const seen: number[] = [];
    const cutter: FrameCutter = new FrameCutter(2, (f) => {
      seen.push(f[0]);
      if (seen.length === 2) cutter.stop();
    });
    cutter.push(Buffer.from([1, 1, 2, 2, 3, 3, 4, 4]));
    assert.deepEqual(seen, [1, 2]);
  });
});

describe('io: latestFrame under a slow consumer', () => {
  it('keeps at most one waiting value, drops and counts the rest, and ends on the newest', async () => {
    const total = 200;
    let held = 0;
    let maxHeld = 0;
    const dropped: number[] = [];
    // 1 value per ms against work of 15 ms: about 14 of 15 values must go.
    const source = new Observable<number>((sub) => {
      let i = 0;
      const t = setInterval(() => {
        sub.next(i++);
        if (i === total) {
          clearInterval(t);
          sub.complete();
        }
      }, 1);
      return () => clearInterval(t);
    });
    const done = await lastValueFrom(
      source.pipe(
        latestFrame(
          (v) => {
            held++;
            maxHeld = Math.max(maxHeld, held);
            return new Promise<number>((resolve) =>
              setTimeout(() => {
                held--;
                resolve(v);
              }, 15),
            );
          },
          {
            onDrop: (v, n) => {
              dropped.push(v);
              assert.equal(n, dropped.length);
            },
          },
        ),
        toArray(),
      ),
    );
    assert.equal(maxHeld, 1);
    assert.equal(done.length + dropped.length, total, 'every value is processed or counted as dropped');
    assert.ok(dropped.length > total / 2, `dropped ${dropped.length}`);
    assert.equal(done.at(-1), total - 1, 'the newest value is processed last');
    assert.deepEqual(
      [...done].sort((a, b) => a - b),
      done,
      'order kept',
    );
  });

  it('passes everything through when the consumer keeps up', async () => {
    const out = await lastValueFrom(
      new Observable<number>((s) => {
        [1, 2, 3].forEach((v) => s.next(v));
        s.complete();
      }).pipe(
        latestFrame((v) => [v * 10]),
        toArray(),
      ),
    );
    assert.deepEqual(out, [10, 20, 30]);
  });
});

describe('io: reconnection back-off', () => {
  const settings = { baseMs: 1000, maxMs: 30_000, jitter: 0.2, stableMs: 30_000, maxAttempts: Infinity };

  it('doubles from 1 s to the 30 s cap, jitter only ever shortening', () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const full = Math.min(30_000, 1000 * 2 ** (attempt - 1));
      for (let k = 0; k < 50; k++) {
        const d = backoffDelay(attempt, settings);
        assert.ok(d <= full && d >= full * 0.8 - 1, `attempt ${attempt}: ${d}`);
      }
    }
    // Jitter spreads cameras that failed together.
    const spread = new Set(Array.from({ length: 20 }, () => backoffDelay(3, settings)));
    assert.ok(spread.size > 5);
  });
});

describe('io: choosing the ffmpeg binary', () => {
  let dir: string;
  const savedEnv = process.env[FFMPEG_ENV];
  const savedPath = process.env.PATH;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-ffmpeg-'));
  });
  afterEach(() => {
    if (savedEnv === undefined) delete process.env[FFMPEG_ENV];
    else process.env[FFMPEG_ENV] = savedEnv;
    process.env.PATH = savedPath;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('defaults to the bundled static build, which runs', async () => {
    delete process.env[FFMPEG_ENV];
    const bundled = ffmpegPath();
    assert.match(bundled, /@ffmpeg-installer/);
    const version = await ffmpegVersion(bundled);
    assert.match(version.banner, /^ffmpeg version/);
    assert.ok(version.libavcodec[0] >= 58);
  });

  it('takes the system ffmpeg from PATH, a path, or the option over the environment', () => {
    const bundled = ffmpegPath({ ffmpeg: 'bundled' });
    symlinkSync(bundled, path.join(dir, 'ffmpeg'));
    process.env.PATH = dir;
    process.env[FFMPEG_ENV] = 'system';
    assert.equal(ffmpegPath(), path.join(dir, 'ffmpeg'));
    process.env[FFMPEG_ENV] = path.join(dir, 'ffmpeg');
    assert.equal(ffmpegPath(), path.join(dir, 'ffmpeg'));
    assert.equal(ffmpegPath({ ffmpeg: 'bundled' }), bundled);
  });

  it('says clearly when the chosen ffmpeg is missing, and the stream errors without starting anything', async () => {
    process.env.PATH = path.join(dir, 'empty');
    process.env[FFMPEG_ENV] = 'system';
    assert.throws(() => ffmpegPath(), /ffmpeg not found on PATH \(asked for by FACEFLOW_FFMPEG\)/);
    assert.throws(
      () => ffmpegPath({ ffmpeg: '/opt/none/ffmpeg' }),
      /not found or not executable at \/opt\/none\/ffmpeg/,
    );
    await assert.rejects(
      firstValueFrom(rtspFrames('rtsp://u:pw1234@127.0.0.1:9/x', { ffmpeg: '/opt/none/ffmpeg' })),
      (err: Error) => err instanceof CameraError && /\/opt\/none\/ffmpeg/.test(err.message),
    );
    assert.equal(runningFfmpegCount(), 0);
  });

  it('knows which spelling of -vsync each version wants', () => {
    assert.equal(hasFpsMode({ banner: '', libavcodec: [58, 42] }), false);
    assert.equal(hasFpsMode({ banner: '', libavcodec: [59, 37] }), true);
    assert.equal(hasFpsMode({ banner: '', libavcodec: [61, 3] }), true);
  });
});

describe('io: stall watchdog (a server that accepts and never answers)', function () {
  this.timeout(30_000);

  it('reports stalled, kills ffmpeg and reconnects, with the password masked throughout', async () => {
    const server = await silentTcpServer();
    const password = 'Qz7-stall-pw';
    const events: CameraEvent[] = [];
    try {
      const sub = rtspFrames(`rtsp://cam:${password}@127.0.0.1:${server.port}/live`, {
        stallTimeoutMs: 800,
        stopGraceMs: 1000,
        reconnect: { baseMs: 100 },
        logLevel: 'info',
        onEvent: (e) => events.push(e),
      }).subscribe({ error: (e) => assert.fail(e) });
      const deadline = Date.now() + 15_000;
      while (events.filter((e) => e.type === 'stalled').length < 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      sub.unsubscribe();
      const types = events.map((e) => e.type).filter((t) => t !== 'log');
      assert.deepEqual(types.slice(0, 6), [
        'connecting',
        'stalled',
        'down',
        'reconnecting',
        'connecting',
        'stalled',
      ]);
      const down = events.find((e) => e.type === 'down');
      assert.ok(down && down.type === 'down' && /no frame for 0.8 s/.test(down.reason));
      assert.ok(server.connections() >= 2, 'it connected again');
      assert.ok(!JSON.stringify(events).includes(password));
      assert.ok(events.every((e) => e.source === 'rtsp://cam:***@127.0.0.1:' + server.port + '/live'));
      assert.deepEqual(await waitForNoLeftovers(), []);
    } finally {
      await server.close();
    }
  });
});
