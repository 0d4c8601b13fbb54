import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';

import { PROJECT_ROOT } from './helpers/shared';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper');
const nodeFile = (name: string) => path.join(PROJECT_ROOT, 'dist', 'nodes', `${name}.js`);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const mjpegOutNode = require(nodeFile('faceflow-mjpeg-out'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const faceEventsNode = require(nodeFile('faceflow-face-events'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const catchNode = require('@node-red/nodes/core/common/25-catch.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const completeNode = require('@node-red/nodes/core/common/24-complete.js');

helper.init(require.resolve('node-red'));

const onTab = (nodes: Record<string, unknown>[]) => [
  { id: 'f1', type: 'tab' },
  ...nodes.map((n) => ({ z: 'f1', ...n })),
];

interface Status {
  fill?: string;
  text?: string;
}

function recordStatuses(node: { on(e: string, f: (c: { args: [Status] }) => void): void }): Status[] {
  const statuses: Status[] = [];
  node.on('call:status', (call) => statuses.push(call.args[0]));
  return statuses;
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A gradient, so the JPEG is a real picture rather than a flat colour. */
function testFrame(seq: number, cameraId = 'door', ts = 1_700_000_000_000 + seq * 100) {
  const width = 64;
  const height = 48;
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    rgb[i * 3] = (i * 7 + seq) & 255;
    rgb[i * 3 + 1] = (i >> 3) & 255;
    rgb[i * 3 + 2] = 128;
  }
  return { cameraId, seq, ts, width, height, rgb };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The first JPEG of an MJPEG stream, read by its Content-Length, then the connection is closed. */
function firstJpeg(
  port: number,
  headers: Record<string, string>,
): Promise<{ status: number; type: string; jpeg?: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/live.mjpg', headers, agent: false }, (res) => {
      const type = res.headers['content-type'] ?? '';
      if (res.statusCode !== 200) {
        res.resume();
        resolve({ status: res.statusCode ?? 0, type });
        return;
      }
      let buffer = Buffer.alloc(0);
      res.on('data', (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        const headEnd = buffer.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const length = Number(/content-length:\s*(\d+)/i.exec(buffer.subarray(0, headEnd).toString())?.[1]);
        if (buffer.length < headEnd + 4 + length) return;
        req.destroy();
        resolve({ status: 200, type, jpeg: buffer.subarray(headEnd + 4, headEnd + 4 + length) });
      });
    });
    req.on('error', reject);
  });
}

const known = (name: string, trackId?: number) => ({
  box: [10.4, 12.6, 30, 40],
  score: 0.9,
  landmarks: [
    [15, 20],
    [25, 20],
    [20, 26],
    [16, 32],
    [24, 32],
  ],
  ...(trackId === undefined ? {} : { trackId }),
  identity: { name, similarity: 0.71234567, margin: 0.3, topK: [] },
});

const basic = (user: string, password: string) => ({
  Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

describe('node: faceflow-mjpeg-out (real Node-RED runtime, loopback HTTP)', function () {
  this.timeout(30_000);
  let port: number;
  let feeder: NodeJS.Timeout | undefined;

  before((done) => {
    helper.startServer(done);
  });
  after((done) => {
    helper.stopServer(done);
  });
  beforeEach(async () => {
    port = await freePort();
  });
  afterEach(async () => {
    clearInterval(feeder);
    await helper.unload();
  });

  const mjpegFlow = (extra: Record<string, unknown> = {}) =>
    onTab([
      {
        id: 'view',
        type: 'faceflow-mjpeg-out',
        port: String(port),
        host: '127.0.0.1',
        path: '/live.mjpg',
        maxFps: '20',
        user: 'viewer',
        ...extra,
      },
    ]);

  /** Frames keep coming, as from a camera, so a viewer always has a new one to get. */
  function feed(): void {
    let seq = 0;
    feeder = setInterval(() => {
      const node = helper.getNode('view');
      node?.receive({
        payload: testFrame(seq++),
        faces: [known('alice', 1)],
      });
    }, 50);
  }

  it('streams the pushed frames as multipart JPEG to a viewer with the password, and 401 without', async () => {
    await helper.load(mjpegOutNode, mjpegFlow(), { view: { password: 'pw-123' } });
    const statuses = recordStatuses(helper.getNode('view'));
    feed();
    const refused = await firstJpeg(port, {});
    assert.equal(refused.status, 401);
    assert.equal((await firstJpeg(port, basic('viewer', 'wrong'))).status, 401);

    const got = await firstJpeg(port, basic('viewer', 'pw-123'));
    assert.equal(got.status, 200);
    assert.match(got.type, /^multipart\/x-mixed-replace; boundary=/);
    assert.ok(got.jpeg && got.jpeg[0] === 0xff && got.jpeg[1] === 0xd8, 'a JPEG (FF D8)');
    await until('a viewers status', () => statuses.some((s) => /^\d+ viewers?$/.test(s.text ?? '')));
  });

  it('frees its port on redeploy, so the changed node binds the same port again', async () => {
    await helper.load(mjpegOutNode, mjpegFlow({ user: '' }));
    feed();
    assert.equal((await firstJpeg(port, {})).status, 200);
    // A viewer still watching when the redeploy comes: its stream must end, not hang on.
    const watcherEnded = new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/live.mjpg', agent: false }, (res) => {
          res.resume();
          res.on('close', () => resolve());
        })
        .on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 200));

    await helper.setFlows(mjpegFlow({ user: '', maxFps: '10' }), 'nodes');
    await watcherEnded;
    const statuses = recordStatuses(helper.getNode('view'));
    const got = await firstJpeg(port, {});
    assert.equal(got.status, 200);
    assert.ok(got.jpeg && got.jpeg.length > 100);
    assert.ok(
      statuses.every((s) => s.fill !== 'red'),
      JSON.stringify(statuses),
    );
    // The helper's log spy sees every node.error, including one before `statuses` was listening.
    const log = helper.log();
    const errors = log.args.filter((a: [{ level: number }]) => a[0].level === log.ERROR);
    assert.deepEqual(errors, [], 'no node error: the port was free again');
  });

  it('says in red when its port is taken, and reports the messages it cannot serve', async () => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    try {
      await helper.load(
        [mjpegOutNode, catchNode],
        onTab([
          { id: 'view', type: 'faceflow-mjpeg-out', port: String(port), host: '127.0.0.1' },
          { id: 'c1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
          { id: 'caught', type: 'helper' },
        ]),
      );
      const view = helper.getNode('view');
      const statuses = recordStatuses(view);
      const errors: unknown[] = [];
      view.on('call:error', (call: { args: unknown[] }) => errors.push(call.args[0]));
      await until('a red status', () => statuses.some((s) => s.fill === 'red'));
      assert.equal(statuses.find((s) => s.fill === 'red')!.text, `port ${port} in use`);
      assert.ok(errors.some((e) => /already in use/.test(String(e))));

      const caught = new Promise<{ error: { message: string } }>((resolve) =>
        helper.getNode('caught').on('input', resolve),
      );
      view.receive({ payload: testFrame(0) });
      assert.match((await caught).error.message, /already in use/);
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  });

  it('refuses a payload that is not a frame, through Catch', async () => {
    await helper.load(
      [mjpegOutNode, catchNode],
      onTab([
        { id: 'view', type: 'faceflow-mjpeg-out', port: String(port) },
        { id: 'c1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper' },
      ]),
    );
    const caught = new Promise<{ error: { message: string } }>((resolve) =>
      helper.getNode('caught').on('input', resolve),
    );
    helper.getNode('view').receive({ payload: 'hello' });
    assert.match((await caught).error.message, /expected a frame in msg.payload/);
  });
});

interface EventMsg {
  topic: string;
  payload: { type?: string; camera: string; name?: string; trackId?: number; ts: number; snapshot?: string };
  retain?: boolean;
}

describe('node: faceflow-face-events (real Node-RED runtime)', function () {
  this.timeout(30_000);
  before((done) => {
    helper.startServer(done);
  });
  after((done) => {
    helper.stopServer(done);
  });
  afterEach(() => helper.unload());

  /** Feeds the messages and returns what came out once every one was done (a Complete node says). */
  async function run(settings: Record<string, unknown>, messages: unknown[]): Promise<EventMsg[]> {
    await helper.load(
      [faceEventsNode, completeNode],
      onTab([
        { id: 'events', type: 'faceflow-face-events', wires: [['out']], ...settings },
        { id: 'out', type: 'helper' },
        { id: 'done1', type: 'complete', scope: ['events'], uncaught: false, wires: [['completed']] },
        { id: 'completed', type: 'helper' },
      ]),
    );
    const got: EventMsg[] = [];
    helper.getNode('out').on('input', (m: EventMsg) => got.push(m));
    let completed = 0;
    helper.getNode('completed').on('input', () => completed++);
    const node = helper.getNode('events');
    for (const msg of messages) node.receive(msg);
    await until('every message handled', () => completed === messages.length);
    return got;
  }

  const frameMsg = (seq: number, faces: unknown[], cameraId = 'door') => ({
    payload: testFrame(seq, cameraId),
    faces,
    topic: cameraId,
  });

  it('announces each track once, on <prefix>/<camera>/recognized, with a retained last sighting', async () => {
    const messages = [0, 1, 2, 3, 4].map((i) => frameMsg(i, [known('alice', 1)]));
    messages.push(frameMsg(5, [known('alice', 1), known('bob', 2)]));
    const got = await run({ prefix: 'home/faces', presence: true }, messages);
    const recognized = got.filter((m) => m.topic.endsWith('/recognized'));
    assert.deepEqual(
      recognized.map((m) => [m.topic, m.payload.name, m.payload.trackId]),
      [
        ['home/faces/door/recognized', 'alice', 1],
        ['home/faces/door/recognized', 'bob', 2],
      ],
    );
    assert.deepEqual(recognized[0].payload, {
      type: 'recognized',
      camera: 'door',
      name: 'alice',
      similarity: 0.7123,
      trackId: 1,
      box: [10, 13, 30, 40],
      ts: testFrame(0).ts,
    });
    const persons = got.filter((m) => m.topic.startsWith('home/faces/person/'));
    assert.deepEqual(
      persons.map((m) => [m.topic, m.retain, m.payload]),
      [
        ['home/faces/person/alice', true, { camera: 'door', ts: testFrame(0).ts }],
        ['home/faces/person/bob', true, { camera: 'door', ts: testFrame(5).ts }],
      ],
    );
  });

  it("reports each camera's fps, lag and faces on <prefix>/<camera>/status, and fps 0 once it stops", async () => {
    const now = Date.now();
    const live = (cameraId: string, faces: unknown[]) => ({
      payload: { ...testFrame(0, cameraId), ts: now - 40 },
      faces,
      topic: cameraId,
    });
    const messages = [live('door', [known('alice', 1)]), live('door', []), live('garden', [])];
    const got = await run({ prefix: 'home', statusEvery: '0.3' }, messages);
    const reports = async () => {
      await until('two status reports', () => got.filter((m) => m.topic.endsWith('/status')).length >= 4);
      return got.filter((m) => m.topic.endsWith('/status'));
    };
    const [first, second, third, fourth] = await reports();
    const byCamera = new Map([first, second].map((m) => [m.topic, m]));
    const door = byCamera.get('home/door/status');
    const garden = byCamera.get('home/garden/status');
    assert.ok(door && garden, `topics: ${[first.topic, second.topic]}`);
    assert.equal(door.retain, false, 'the retained online/offline on this topic must stay');
    const figures = door.payload as unknown as { fps: number; lagMs: number; faces: number };
    assert.ok(figures.fps > 0 && figures.fps <= 2 / 0.3 + 0.1, `fps ${figures.fps}`);
    assert.ok(figures.lagMs >= 40, `lag ${figures.lagMs}`);
    assert.equal(figures.faces, 0, 'faces in the latest frame');
    // No frames since: both cameras are still reported, as stopped.
    assert.deepEqual([third, fourth].map((m) => m.payload).sort(), [
      { fps: 0, lagMs: null, faces: 0 },
      { fps: 0, lagMs: null, faces: 0 },
    ]);
  });

  it('keeps the cooldown across messages: a new track of a recent name is not a new arrival', async () => {
    // Frames 100 ms apart; cooldown 1 s from the last sighting.
    const messages = [
      frameMsg(0, [known('alice', 1)]),
      frameMsg(5, [known('alice', 2)]), // 0.5 s later, another track: same arrival
      frameMsg(30, [known('alice', 3)]), // 2.5 s after the last sighting: a new arrival
    ];
    const got = await run({ cooldown: '1' }, messages);
    assert.deepEqual(
      got.map((m) => [m.topic, m.payload.trackId]),
      [
        ['faceflow/door/recognized', 1],
        ['faceflow/door/recognized', 3],
      ],
    );
    assert.ok(
      got.every((m) => m.retain === undefined),
      'no last sightings unless asked',
    );
  });

  it('takes per-person and per-camera cooldowns from its settings (name=seconds)', async () => {
    // Frames 100 ms apart; the default cooldown (1 s) would hold back every second arrival.
    const messages = [
      frameMsg(0, [known('alice', 1), known('bob', 2)]),
      frameMsg(5, [known('alice', 3), known('bob', 4)]), // 0.5 s later, new tracks
      frameMsg(10, [known('bob', 5)], 'garden'),
      frameMsg(15, [known('bob', 6)], 'garden'),
    ];
    const got = await run(
      { cooldown: '1', personCooldowns: 'alice = 0', cameraCooldowns: 'garden=0.2,\nhall=60' },
      messages,
    );
    assert.deepEqual(
      got.map((m) => [m.topic, m.payload.name, m.payload.trackId]),
      [
        ['faceflow/door/recognized', 'alice', 1],
        ['faceflow/door/recognized', 'bob', 2],
        ['faceflow/door/recognized', 'alice', 3],
        ['faceflow/garden/recognized', 'bob', 5],
        ['faceflow/garden/recognized', 'bob', 6],
      ],
    );
  });

  it('announces an unknown track only after it stayed unknown for the set frames', async () => {
    const messages = [0, 1, 2, 3, 4, 5].map((i) => frameMsg(i, [known('Unknown', 7)], 'yard/gate'));
    const got = await run({ unknownAfter: '3', presence: true, snapshot: true }, messages);
    assert.equal(got.length, 1, JSON.stringify(got.map((m) => m.topic)));
    assert.equal(got[0].topic, 'faceflow/yard%2Fgate/unknown');
    // The camera id as one topic level: its '/' is escaped (collision-free), not a level of its own.
    assert.equal(got[0].payload.camera, 'yard/gate');
    assert.equal(got[0].payload.ts, testFrame(2).ts);
    assert.match(got[0].payload.snapshot ?? '', /^\/9j\//, 'a base64 JPEG');
  });

  it('Home Assistant discovery: one retained config per person and camera, before their first sighting', async () => {
    const messages = [
      ...[0, 1, 2].map((i) => frameMsg(i, [known('alice', 1)])),
      frameMsg(3, [known('alice', 1), known('bob', 2)]),
      frameMsg(4, [known('Unknown', 3)]),
      // alice leaves; back after the cooldown (1 s) on a new track: a new arrival, no new config
      frameMsg(40, [known('alice', 4)]),
      // then at another camera: that camera's sensor is configured once
      frameMsg(41, [known('alice', 5)], 'yard'),
      frameMsg(42, [known('alice', 5)], 'yard'),
    ];
    const got = await run(
      { cooldown: '1', unknownAfter: '1', discovery: true, presence: false, awayAfter: '600' },
      messages,
    );
    const topics = got.map((m) => m.topic);
    const config = (camera: string, name: string) =>
      `homeassistant/binary_sensor/faceflow_${camera}_${name}/config`;
    assert.deepEqual(
      topics.filter((t) => t.startsWith('homeassistant/')),
      [config('door', 'alice'), config('door', 'bob'), config('yard', 'alice')],
    );
    // Each config comes right before the sighting it is for; discovery turns last sightings on.
    for (const [camera, name] of [
      ['door', 'alice'],
      ['door', 'bob'],
      ['yard', 'alice'],
    ]) {
      const i = topics.indexOf(config(camera, name));
      assert.equal(topics[i + 1], `faceflow/person/${name}`);
      assert.deepEqual(got[i + 1].payload, { camera, ts: got[i + 1].payload.ts });
    }
    const discovery = got.filter((m) => m.topic.startsWith('homeassistant/'));
    assert.ok(discovery.every((m) => m.retain === true));
    assert.deepEqual(
      (discovery[0].payload as unknown as { off_delay: number; state_topic: string }).off_delay,
      600,
    );
    assert.equal(
      got.filter((m) => m.topic === 'faceflow/person/alice').length,
      3,
      'arrivals at the door twice and at the yard once',
    );
    assert.ok(!topics.some((t) => t.includes('Unknown')), 'no sensor for Unknown');
  });

  it('refreshes the last sighting of a person who stays in view, well within the away time', async () => {
    // Frames 100 ms apart for 4 s; away after 3 s, so a sighting at least every second.
    const messages = Array.from({ length: 41 }, (_, i) => frameMsg(i, [known('alice', 1)]));
    const got = await run({ discovery: true, awayAfter: '3' }, messages);
    const sightings = got.filter((m) => m.topic === 'faceflow/person/alice').map((m) => m.payload.ts);
    const t0 = testFrame(0).ts;
    assert.deepEqual(
      sightings.map((ts) => ts - t0),
      [0, 1000, 2000, 3000, 4000],
    );
    assert.equal(got.filter((m) => m.topic.startsWith('homeassistant/')).length, 1);
  });

  it('reports wrong Home Assistant and status settings to Catch nodes with the frames it cannot handle', async () => {
    for (const [settings, error] of [
      [{ awayAfter: '0' }, /away after must be a whole number of seconds ≥ 1, got '0'/],
      [{ awayAfter: 'soon' }, /away after must be a whole number/],
      [{ discoveryPrefix: 'home/+' }, /discovery prefix must be a topic without/],
      [{ statusEvery: 'often' }, /camera status must be a number of seconds \(or empty\), got 'often'/],
      [{ personCooldowns: 'Ann=soon' }, /per-person cooldowns: 'Ann=soon' is not name=seconds/],
      [{ personCooldowns: 'Ann=1, Ann=2' }, /per-person cooldowns: 'Ann' is given twice/],
      [{ cameraCooldowns: 'door' }, /per-camera cooldowns: 'door' is not name=seconds/],
      [{ cameraCooldowns: 'door=-5' }, /per-camera cooldowns: 'door=-5' is not name=seconds/],
    ] as const) {
      await helper.load(
        [faceEventsNode, catchNode],
        onTab([
          { id: 'events', type: 'faceflow-face-events', discovery: true, ...settings, wires: [[]] },
          { id: 'c1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
          { id: 'caught', type: 'helper' },
        ]),
      );
      const caught = new Promise<{ error: { message: string } }>((resolve) =>
        helper.getNode('caught').once('input', resolve),
      );
      helper.getNode('events').receive(frameMsg(0, [known('alice', 1)]));
      assert.match((await caught).error.message, error);
      await helper.unload();
    }
  });
});
