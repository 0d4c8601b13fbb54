import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { inspect } from 'node:util';

import { cameraInput } from '../nodes/lib/source';
import { pendingDetectorPicture, pendingI420 } from '../src/util/i420';
import { freePort } from './helpers/demoProcess';
import { leftoverProcesses, waitForNoLeftovers } from './helpers/processes';
import { requireGstRtspServer, RtspTestServer } from './helpers/rtspServer';
import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const rtspInNode = require(path.join(PROJECT_ROOT, 'dist', 'nodes', 'faceflow-rtsp-in.js'));

helper.init(require.resolve('node-red'));

const HAMILTON = shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4');

const onTab = (nodes: Record<string, unknown>[]) => [
  { id: 'f1', type: 'tab' },
  ...nodes.map((n) => ({ z: 'f1', ...n })),
];

interface Status {
  fill?: string;
  shape?: string;
  text?: string;
}

interface FrameMsg {
  topic: string;
  payload: { cameraId: string; seq: number; width: number; height: number; rgb: Buffer };
}

/** Every status the node shows, in order (the helper reports them as `call:status`). */
function recordStatuses(node: { on(e: string, f: (c: { args: [Status] }) => void): void }): Status[] {
  const statuses: Status[] = [];
  node.on('call:status', (call) => statuses.push(call.args[0]));
  return statuses;
}

/** Resolves with the first `count` messages a helper node receives. */
function collect<T>(id: string, count: number): Promise<T[]> {
  const got: T[] = [];
  return new Promise((resolve) => {
    helper.getNode(id).on('input', (msg: T) => {
      got.push(msg);
      if (got.length === count) resolve(got);
    });
  });
}

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ffmpegCount = () => leftoverProcesses().filter((c) => c.comm.startsWith('ffmpeg')).length;

describe('node: faceflow-rtsp-in settings', () => {
  it('puts the credentials into the URL only at run time, encoded and replacing any written there', () => {
    const url = (u: string, credentials: { user?: string; password?: string }) => {
      const input = cameraInput({ kind: 'rtsp', url: u }, credentials);
      return input.kind === 'rtsp' ? input.url : '';
    };
    assert.equal(
      url('rtsp://cam.local:554/s1', { user: 'ad min', password: 'p@ss:w/rd' }),
      'rtsp://ad%20min:p%40ss%3Aw%2Frd@cam.local:554/s1',
    );
    assert.equal(url('rtsp://old:x@cam/s', { user: 'u', password: 'p' }), 'rtsp://u:p@cam/s');
    assert.equal(url('rtsp://cam/s', {}), 'rtsp://cam/s');
    assert.equal(url('rtsp://cam/s', { user: 'viewer' }), 'rtsp://viewer@cam/s');
    // A flow from before the Password field: the password in the URL still connects.
    assert.equal(url('rtsp://admin:old%40pw@cam/s', {}), 'rtsp://admin:old%40pw@cam/s');
  });

  it('names the missing field of each source kind', () => {
    assert.throws(() => cameraInput({ kind: 'rtsp', url: 'http://x' }), /rtsp:\/\//);
    assert.throws(() => cameraInput({ kind: 'file', file: ' ' }), /video file/);
    assert.throws(() => cameraInput({ kind: 'device' }), /device/);
    assert.deepEqual(cameraInput({ kind: 'file', file: '/v.mp4', loop: true }), {
      kind: 'file',
      path: '/v.mp4',
      loop: true,
      realtime: false,
    });
  });
});

describe('node: faceflow-rtsp-in with a video file (real Node-RED runtime, real ffmpeg)', function () {
  this.timeout(60_000);
  before(function (done) {
    requireSharedData(this);
    helper.startServer(done);
  });
  after((done) => {
    helper.stopServer(done);
  });
  afterEach(async () => {
    await helper.unload();
    assert.deepEqual(await waitForNoLeftovers(), [], 'no ffmpeg left behind');
  });

  const fileNode = (extra: Record<string, unknown> = {}) => ({
    id: 'cam',
    type: 'faceflow-rtsp-in',
    source: 'file',
    file: HAMILTON,
    loop: true,
    realtime: true,
    cameraId: 'hall',
    fps: '10',
    width: '320',
    wires: [['frames'], ['events']],
    ...extra,
  });

  it('sends frames of the asked size with the camera id as topic, and shows the fps', async () => {
    await helper.load(
      rtspInNode,
      onTab([fileNode(), { id: 'frames', type: 'helper' }, { id: 'events', type: 'helper' }]),
    );
    const statuses = recordStatuses(helper.getNode('cam'));
    const events: { payload: { type: string } }[] = [];
    helper.getNode('events').on('input', (m: { payload: { type: string } }) => events.push(m));
    const frames = await collect<FrameMsg>('frames', 15);
    for (const msg of frames) {
      assert.equal(msg.topic, 'hall');
      assert.equal(msg.payload.cameraId, 'hall');
      assert.equal(msg.payload.width, 320);
      assert.equal(msg.payload.height, 180);
      assert.equal(msg.payload.rgb.length, 320 * 180 * 3);
    }
    assert.deepEqual(
      frames.map((m) => m.payload.seq),
      frames.map((_, i) => i),
    );
    // The first window can start at a frame ffmpeg sends ahead of its -re pacing: read the second.
    const fpsTexts = () => statuses.filter((s) => /^fps \d/.test(s.text ?? '')).map((s) => s.text ?? '');
    await until('two fps statuses', () => fpsTexts().length >= 2);
    const fps = Number(/^fps (\S+)/.exec(fpsTexts()[1])![1]);
    assert.ok(fps > 5 && fps <= 11, `fps ${fps} near the cap of 10`);
    assert.ok(statuses.filter((s) => /^fps/.test(s.text ?? '')).every((s) => s.fill === 'green'));
    assert.ok(events.some((e) => e.payload.type === 'up'));
  });

  it('stops ffmpeg on a partial redeploy of the node, and starts one for the changed node', async () => {
    const flow = onTab([fileNode(), { id: 'frames', type: 'helper' }, { id: 'events', type: 'helper' }]);
    await helper.load(rtspInNode, flow);
    await collect<FrameMsg>('frames', 2);
    assert.equal(ffmpegCount(), 1);

    const changed = onTab([
      fileNode({ fps: '5' }),
      { id: 'frames', type: 'helper' },
      { id: 'events', type: 'helper' },
    ]);
    await helper.setFlows(changed, 'nodes');
    await collect<FrameMsg>('frames', 2);
    await until('only the new ffmpeg left', () => ffmpegCount() === 1, 5000);

    await helper.setFlows(onTab([{ id: 'frames', type: 'helper' }]), 'nodes');
    assert.deepEqual(await waitForNoLeftovers(), [], 'the removed node left no ffmpeg');
  });

  it('waits for a start message when told to, and stops on a stop message', async () => {
    await helper.load(
      rtspInNode,
      onTab([
        fileNode({ autostart: false }),
        { id: 'frames', type: 'helper' },
        { id: 'events', type: 'helper' },
      ]),
    );
    const cam = helper.getNode('cam');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(ffmpegCount(), 0);
    const first = collect<FrameMsg>('frames', 1);
    cam.receive({ topic: 'start' });
    await first;
    cam.receive({ topic: 'stop' });
    assert.deepEqual(await waitForNoLeftovers(), []);
  });

  it('decodes on the number of threads set, one by default, and refuses a bad number in red', async () => {
    const threadsOfFfmpeg = () => {
      const [child] = leftoverProcesses().filter((c) => c.comm.startsWith('ffmpeg'));
      const args = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
      return args[args.indexOf('-threads') + 1];
    };
    const wires = [
      { id: 'frames', type: 'helper' },
      { id: 'events', type: 'helper' },
    ];
    await helper.load(rtspInNode, onTab([fileNode(), ...wires]));
    await collect<FrameMsg>('frames', 2);
    assert.equal(threadsOfFfmpeg(), '1');
    await helper.setFlows(onTab([fileNode({ decoderThreads: '2' }), ...wires]), 'nodes');
    await until(
      'ffmpeg restarted with 2 threads',
      () => ffmpegCount() === 1 && threadsOfFfmpeg() === '2',
      5000,
    );
    await collect<FrameMsg>('frames', 2);

    const statuses: { fill?: string; text?: string }[] = [];
    const listen = (call: { thisValue: { id: string }; args: [{ fill?: string; text?: string }] }) => {
      if (call.thisValue.id === 'cam') statuses.push(call.args[0]);
    };
    // The status is set while the node is created, so it is caught on the way (the spy's event), not after.
    const nodePrototype = Object.getPrototypeOf(helper.getNode('cam')) as NodeJS.EventEmitter;
    nodePrototype.on('call:status', listen);
    try {
      await helper.setFlows(onTab([fileNode({ decoderThreads: 'many' }), ...wires]), 'nodes');
      await until('a red status', () => statuses.some((s) => s.fill === 'red'));
    } finally {
      nodePrototype.off('call:status', listen);
    }
    // The status is shortened; the log has all of it.
    assert.match(
      statuses.find((st) => st.fill === 'red')?.text ?? '',
      /^decoder threads must be a whole number/,
    );
    const logged = helper.log().args.map((a: { msg: unknown }[]) => String(a[0]?.msg));
    assert.ok(logged.some((m: string) => m.includes("decoder threads must be a whole number, got 'many'")));
    assert.deepEqual(await waitForNoLeftovers(), [], 'no ffmpeg for a node that cannot start');
  });

  it("hands each frame over with ffmpeg's detector picture, 256 by default, none with 0, and refuses a bad size in red", async () => {
    const wires = [
      { id: 'frames', type: 'helper' },
      { id: 'events', type: 'helper' },
    ];
    // A flow saved before the setting existed has no detectorInput: the default applies.
    await helper.load(rtspInNode, onTab([fileNode(), ...wires]));
    for (const msg of await collect<FrameMsg>('frames', 3)) {
      const picture = pendingDetectorPicture(msg.payload);
      assert.ok(picture, 'a picture for the detector');
      assert.deepEqual([picture.width, picture.height], [256, 144]);
    }
    await helper.setFlows(onTab([fileNode({ detectorInput: '0' }), ...wires]), 'nodes');
    const ffmpegArgsNow = () => {
      const [child] = leftoverProcesses().filter((c) => c.comm.startsWith('ffmpeg'));
      try {
        return child ? readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0') : [];
      } catch {
        return []; // exited between the listing and the read
      }
    };
    await until(
      'ffmpeg restarted without the picture',
      () => ffmpegCount() === 1 && ffmpegArgsNow().includes('pipe:1') && !ffmpegArgsNow().includes('pipe:3'),
      5000,
    );
    const plain = await collect<FrameMsg>('frames', 3);
    assert.ok(plain.every((m) => pendingDetectorPicture(m.payload) === undefined && pendingI420(m.payload)));

    await helper.setFlows(onTab([fileNode({ detectorInput: '9999' }), ...wires]), 'nodes');
    await until('nothing running for a bad size', () => ffmpegCount() === 0, 5000);
    const logged = () => helper.log().args.map((a: { msg: unknown }[]) => String(a[0]?.msg));
    await until('the error logged', () =>
      logged().some((m: string) => m.includes('detectorInput must be 0 (off)')),
    );
  });

  it('says what is wrong with a missing file, in red', async () => {
    await helper.load(
      rtspInNode,
      onTab([
        fileNode({ file: '/nonexistent/clip.mp4', loop: false }),
        { id: 'frames', type: 'helper' },
        { id: 'events', type: 'helper' },
      ]),
    );
    const statuses = recordStatuses(helper.getNode('cam'));
    await until('a red status', () => statuses.some((s) => s.fill === 'red'));
    assert.match(statuses.find((s) => s.fill === 'red')!.text!, /^down: \/nonexistent\/clip.mp4: no such/);
  });
});

describe('node: faceflow-rtsp-in against a real RTSP server with credentials', function () {
  this.timeout(90_000);
  const user = 'doorcam';
  const password = 'Zq7-not-for-logs';
  let server: RtspTestServer;

  before(async function () {
    requireSharedData(this);
    requireGstRtspServer(this);
    server = await RtspTestServer.start({ file: HAMILTON, user, password });
    await new Promise<void>((resolve) => helper.startServer(resolve));
  });
  after(async () => {
    await server?.stop();
    await new Promise<void>((resolve) => helper.stopServer(resolve));
  });
  afterEach(async () => {
    await helper.unload();
    assert.deepEqual(await waitForNoLeftovers(), [], 'no ffmpeg left behind');
  });

  it('receives frames, never shows the password, and reconnects in yellow when the server goes', async () => {
    await helper.load(
      rtspInNode,
      onTab([
        {
          id: 'cam',
          type: 'faceflow-rtsp-in',
          source: 'rtsp',
          url: server.url(),
          cameraId: 'door',
          fps: '5',
          width: '320',
          wires: [['frames'], ['events']],
        },
        { id: 'frames', type: 'helper' },
        { id: 'events', type: 'helper' },
      ]),
      { cam: { user, password } },
    );
    const cam = helper.getNode('cam');
    const statuses = recordStatuses(cam);
    const events: unknown[] = [];
    helper.getNode('events').on('input', (m: unknown) => events.push(m));
    const frames = await collect<FrameMsg>('frames', 3);
    assert.equal(frames[0].topic, 'door');
    assert.equal(frames[0].payload.width, 320);

    await server.stop();
    try {
      await until('a reconnecting status', () =>
        statuses.some((s) => s.fill === 'yellow' && /^reconnecting \(attempt \d+, in \d/.test(s.text ?? '')),
      );
    } finally {
      await server.restart();
    }
    const types = events.map((e) => (e as { payload: { type: string } }).payload.type);
    assert.ok(types.includes('up') && types.includes('down') && types.includes('reconnecting'), types.join());

    const shown = inspect({ statuses, events, log: helper.log().args }, { depth: Infinity });
    assert.ok(!shown.includes(password), 'the password appears in no status, event or log line');
    assert.ok(
      events.some((e) => (e as { payload: { source: string } }).payload.source.includes(':***@')),
      'events name the source with the password masked',
    );
  });
});

describe('node: faceflow-rtsp-in with a password full of URL characters (real RTSP server)', function () {
  this.timeout(90_000);
  const user = 'door cam';
  const password = 'p@ss:w/rd%40#?&= é';
  let server: RtspTestServer;

  before(async function () {
    requireSharedData(this);
    requireGstRtspServer(this);
    server = await RtspTestServer.start({ file: HAMILTON, user, password });
    await new Promise<void>((resolve) => helper.startServer(resolve));
  });
  after(async () => {
    await server?.stop();
    await new Promise<void>((resolve) => helper.stopServer(resolve));
  });
  afterEach(async () => {
    await helper.unload();
    assert.deepEqual(await waitForNoLeftovers(), [], 'no ffmpeg left behind');
  });

  const camera = (url: string) =>
    onTab([
      {
        id: 'cam',
        type: 'faceflow-rtsp-in',
        source: 'rtsp',
        url,
        fps: '5',
        width: '160',
        wires: [['frames'], ['events']],
      },
      { id: 'frames', type: 'helper' },
      { id: 'events', type: 'helper' },
    ]);

  it('logs in with the password from the Password field', async () => {
    await helper.load(rtspInNode, camera(server.url()), { cam: { user, password } });
    const frames = await collect<FrameMsg>('frames', 2);
    assert.equal(frames[0].payload.width, 160);
  });

  it('is refused with a wrong password (the server does check it)', async () => {
    await helper.load(rtspInNode, camera(server.url()), { cam: { user, password: `${password}x` } });
    const down = await new Promise<{ cause: string }>((resolve) => {
      helper.getNode('events').on('input', (m: { payload: { type: string; cause: string } }) => {
        if (m.payload.type === 'down') resolve(m.payload);
      });
    });
    assert.equal(down.cause, 'auth');
  });

  it('still logs in with the password percent-encoded in the URL of an older flow', async () => {
    await helper.load(rtspInNode, camera(server.url({ user, password })));
    const frames = await collect<FrameMsg>('frames', 2);
    assert.equal(frames[0].payload.width, 160);
  });
});

describe('node: faceflow-rtsp-in against a refused port (real Node-RED runtime, real ffmpeg)', function () {
  this.timeout(60_000);
  before((done) => {
    helper.startServer(done);
  });
  after((done) => {
    helper.stopServer(done);
  });
  afterEach(async () => {
    await helper.unload();
    assert.deepEqual(await waitForNoLeftovers(), [], 'no ffmpeg left behind');
  });

  it('logs one warning over several refused retries, keeps the reason in its status, and warns once about a password in the URL', async () => {
    const port = await freePort(); // nothing listens there
    await helper.load(
      rtspInNode,
      onTab([
        {
          id: 'cam',
          type: 'faceflow-rtsp-in',
          source: 'rtsp',
          // An imported flow with the password in the URL: it still connects, with one warning.
          url: `rtsp://viewer:n0t-in-logs@127.0.0.1:${port}/stream`,
          cameraId: 'door',
          wires: [[], ['events']],
        },
        { id: 'events', type: 'helper' },
      ]),
    );
    const statuses = recordStatuses(helper.getNode('cam'));
    const downs: unknown[] = [];
    helper.getNode('events').on('input', (m: { payload: { type: string } }) => {
      if (m.payload.type === 'down') downs.push(m.payload);
    });
    // The default back-off: 1, 2 then 4 s. The status shows every attempt; output 2 tells the failure once.
    const attempts = () =>
      new Set(statuses.map((s) => /^reconnecting \(attempt (\d+)/.exec(s.text ?? '')?.[1]).filter(Boolean))
        .size;
    await until('3 refused attempts', () => attempts() >= 3, 30_000);
    assert.equal(downs.length, 1, 'one down event for a camera that stays away for the same reason');
    const log = helper.log();
    const warnings = log.args
      .filter((a: [{ level: number; id?: string }]) => a[0].level === log.WARN && a[0].id === 'cam')
      .map((a: [{ msg: unknown }]) => String(a[0].msg));
    const failing = warnings.filter((w: string) => w.startsWith('camera door:'));
    assert.equal(failing.length, 1, warnings.join('\n'));
    assert.match(failing[0], /^camera door: connection refused \(retrying/);
    assert.equal(
      warnings.filter((w: string) => /stored in clear in flows\.json/.test(w)).length,
      1,
      warnings.join('\n'),
    );
    assert.ok(
      statuses.some((s) =>
        /^reconnecting \(attempt \d+, in [\d.]+s\): connection refused$/.test(s.text ?? ''),
      ),
      JSON.stringify(statuses),
    );
    assert.ok(!inspect({ statuses, downs, log: log.args }, { depth: Infinity }).includes('n0t-in-logs'));
  });
});
