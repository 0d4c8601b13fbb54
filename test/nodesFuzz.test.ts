/**
 * Issue 7, bad input: 10,000 fuzzed messages into the faceflow nodes (1,000 per node) — wrong
 * types, huge and tiny images, truncated JPEGs, NaN boxes, negative sizes, unknown topics. Each
 * must end in an output or in a `node.error` a person can read (not a bare TypeError from deep
 * inside), and the node must still handle a good message afterwards. FACEFLOW_LONG_TESTS=1 sends
 * 10,000 per node.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';

import { samplePhotosDir } from '../src/demo/sampleMedia';
import { seededRandom } from '../src/util/seededRandom';
import { freePort } from './helpers/demoProcess';
import { PROJECT_ROOT } from './helpers/shared';

/* eslint-disable @typescript-eslint/no-require-imports */
const helper = require('node-red-node-test-helper');
const ours = (name: string) => require(path.join(PROJECT_ROOT, 'dist', 'nodes', `${name}.js`));
const core = (file: string) =>
  require(path.join(PROJECT_ROOT, 'node_modules', '@node-red', 'nodes', 'core', file));
/* eslint-enable @typescript-eslint/no-require-imports */

helper.init(require.resolve('node-red'));

const PER_NODE = process.env.FACEFLOW_LONG_TESTS === '1' ? 10_000 : 1_000;

/** Messages that come from an uncaught slip in our code rather than from a check meant for a person. */
const RAW_JS_ERROR =
  /Cannot read propert|Cannot set propert|is not a function|is not iterable|undefined \(reading|Invalid array length|Maximum call stack|out of range index|ERR_OUT_OF_RANGE|ERR_BUFFER_OUT_OF_BOUNDS/;

interface Fixtures {
  jpeg: Buffer;
  frame: { cameraId: string; seq: number; ts: number; width: number; height: number; rgb: Buffer };
}

async function fixtures(): Promise<Fixtures> {
  const photo = path.join(samplePhotosDir(), 'sample1.jpg');
  const jpeg = await sharp(photo).resize(480).jpeg().toBuffer();
  const { data, info } = await sharp(jpeg).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    jpeg,
    frame: { cameraId: 'door', seq: 0, ts: Date.now(), width: info.width, height: info.height, rgb: data },
  };
}

/** One fuzzed message: mostly wrong, sometimes nearly right, drawn from a seeded generator. */
function fuzzedMessage(rand: () => number, fx: Fixtures, seq: number): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const num = () =>
    pick([0, -1, 1, 0.5, -1e9, 1e9, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, 3, 112, 65_536, -0.0001]);
  const box = () =>
    pick([[num(), num(), num(), num()], [1, 2], 'box', null, [10, 10, 5, 5], [0, 0, 1e7, 1e7]]);
  const points = () =>
    pick([
      [],
      [[1, 2]],
      Array.from({ length: 5 }, () => [num(), num()]),
      'eyes',
      null,
      Array.from({ length: 5 }, () => [rand() * 400, rand() * 300]),
    ]);
  const face = () =>
    pick([
      {},
      null,
      7,
      { box: box(), score: num(), landmarks: points() },
      {
        box: [50, 50, 150, 170],
        score: 0.9,
        landmarks: points(),
        trackId: num(),
        embedding: pick([[1, 2], 'e', new Float32Array(3)]),
      },
      {
        box: box(),
        score: 0.9,
        landmarks: points(),
        aligned: pick([Buffer.alloc(5), 'x', Buffer.alloc(112 * 112 * 3)]),
      },
      {
        box: [10, 10, 60, 60],
        score: 0.9,
        landmarks: points(),
        identity: pick([null, 'bob', { name: 5 }, { name: 'bob', similarity: num() }]),
      },
    ]);
  const frame = () => {
    const width = pick([fx.frame.width, num(), 1, 0, 100_000]);
    const height = pick([fx.frame.height, num(), 1, 0, 100_000]);
    return {
      cameraId: pick(['door', '', 5, null, 'a/b+#', 'x'.repeat(5000)]),
      seq: pick([seq, num(), 'one']),
      ts: pick([Date.now(), num(), 'now', undefined]),
      width,
      height,
      rgb: pick([
        fx.frame.rgb,
        fx.frame.rgb.subarray(0, 100),
        Buffer.alloc(0),
        'pixels',
        null,
        Buffer.alloc(3),
      ]),
    };
  };
  const payload = pick([
    undefined,
    null,
    0,
    Number.NaN,
    '',
    'hello',
    '/nonexistent/photo.jpg',
    '../../../etc/passwd',
    [],
    {},
    [1, 2, 3],
    Buffer.alloc(0),
    Buffer.from('not an image at all'),
    fx.jpeg.subarray(0, Math.floor(rand() * fx.jpeg.length)),
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    Buffer.from(Array.from({ length: 64 }, () => Math.floor(rand() * 256))),
    frame(),
    frame(),
    { ...fx.frame, seq },
    {
      name: pick(['', 5, 'ann', 'x'.repeat(300), '../x', null]),
      image: pick(['', 5, '/nope.jpg', Buffer.alloc(3)]),
    },
    { folder: pick(['..', '/', 5, '', 'nope']) },
    { cluster: pick([num(), 'a', -1]), name: pick(['bob', 5]) },
  ]);
  return {
    payload,
    faces: pick([
      undefined,
      null,
      'faces',
      [],
      [face()],
      [face(), face(), face()],
      Array.from({ length: 300 }, () => face()),
    ]),
    topic: pick([
      undefined,
      '',
      'door',
      5,
      'enroll',
      'delete',
      'rename',
      'list',
      'calibrate',
      'unknowns',
      'cluster',
      'name-cluster',
      'scan',
      'status',
      'name',
      'people',
      'export',
      'thumbnail',
      'xyz',
      '#',
    ]),
    retain: pick([undefined, true, 'yes']),
  };
}

describe(`nodes under fuzzed input (${PER_NODE} messages per node, real Node-RED runtime)`, function () {
  this.timeout(20 * 60_000);
  let dir = '';
  let fx: Fixtures;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-fuzz-'));
    await mkdir(path.join(dir, 'empty-photos'));
    fx = await fixtures();
    await new Promise<void>((resolve) => helper.startServer(resolve));
  });
  after(async () => {
    await new Promise<void>((resolve) => helper.stopServer(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(() => helper.unload());

  const targets: [string, Record<string, unknown>][] = [
    ['faceflow-detect', { models: 'm1' }],
    ['faceflow-align', { models: 'm1' }],
    ['faceflow-embed', { models: 'm1' }],
    ['faceflow-track', {}],
    ['faceflow-quality-gate', {}],
    ['faceflow-match', { gallery: 'g1' }],
    ['faceflow-face-events', { presence: true, discovery: true }],
    ['faceflow-annotate', {}],
    ['faceflow-mjpeg-out', { host: '127.0.0.1', path: '/s.mjpg' }],
    ['faceflow-mqtt-out', { url: 'mqtt://127.0.0.1:1', queueLimit: '10' }],
    // Commands only; an empty folder, so a fuzzed 'scan' has nothing to read.
    [
      'faceflow-library',
      { folder: '<dir>/empty-photos', db: '<dir>/fuzz.ffl', models: 'm1', gallery: 'g1', watch: false },
    ],
    // Its input takes start/stop commands; the camera is a file that does not exist, so a start only
    // makes it retry in the background.
    [
      'faceflow-rtsp-in',
      { source: 'file', file: '/nonexistent/clip.mp4', autostart: false, cameraId: 'door' },
    ],
  ];

  /** Settings naming files in the test's folder, which exists only once `before` has run. */
  const inDir = (settings: Record<string, unknown>) =>
    Object.fromEntries(
      Object.entries(settings).map(([k, v]) => [k, typeof v === 'string' ? v.replace('<dir>', dir) : v]),
    );

  for (const [type, settings] of targets) {
    it(`${type}: every message ends in an output or a readable error, and a good one still works after`, async () => {
      const port = await freePort();
      await helper.load(
        [
          ours('faceflow-models'),
          ours('faceflow-gallery'),
          ours(type),
          core('common/25-catch.js'),
          core('common/24-complete.js'),
        ],
        [
          { id: 'tab1', type: 'tab', label: 'fuzz' },
          { id: 'm1', type: 'faceflow-models', pack: 'default', z: 'tab1' },
          {
            id: 'g1',
            type: 'faceflow-gallery',
            models: 'm1',
            path: path.join(dir, `${type}.fgal`),
            imageDir: dir,
            z: 'tab1',
          },
          { id: 'target', type, z: 'tab1', port: String(port), ...inDir(settings), wires: [['out']] },
          { id: 'out', type: 'helper', z: 'tab1' },
          { id: 'c1', type: 'catch', scope: ['target'], uncaught: false, z: 'tab1', wires: [['caught']] },
          { id: 'caught', type: 'helper', z: 'tab1' },
          {
            id: 'd1',
            type: 'complete',
            scope: ['target'],
            uncaught: false,
            z: 'tab1',
            wires: [['completed']],
          },
          { id: 'completed', type: 'helper', z: 'tab1' },
        ],
      );
      let completed = 0;
      const errors: string[] = [];
      helper.getNode('completed').on('input', () => completed++);
      helper.getNode('caught').on('input', (m: { error?: { message?: unknown } }) => {
        errors.push(
          typeof m.error?.message === 'string' ? m.error.message : `<no message: ${JSON.stringify(m.error)}>`,
        );
      });
      const target = helper.getNode('target');
      const rand = seededRandom(type.length * 7919);
      // In batches, so that slow nodes (models) are not handed thousands of messages at once.
      const batch = 50;
      for (let sent = 0; sent < PER_NODE; sent += batch) {
        for (let i = 0; i < batch; i++) target.receive(fuzzedMessage(rand, fx, sent + i));
        const want = sent + batch;
        const deadline = Date.now() + 60_000;
        while (completed + errors.length < want) {
          if (Date.now() > deadline)
            assert.fail(`${type}: only ${completed + errors.length} of ${want} messages finished`);
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      assert.equal(completed + errors.length, PER_NODE, 'each message finished exactly once');
      const raw = [...new Set(errors.filter((e) => RAW_JS_ERROR.test(e) || e.startsWith('<no message')))];
      assert.deepEqual(raw.slice(0, 10), [], `${raw.length} kinds of unreadable error`);
      assert.ok(!errors.some((e) => e.trim() === ''), 'an empty error message');

      // Still alive: a good message is handled as before the fuzz.
      const [done, failed] = [completed, errors.length];
      const good =
        type === 'faceflow-rtsp-in'
          ? { topic: 'stop' }
          : type === 'faceflow-library'
            ? { topic: 'status' }
            : { payload: { ...fx.frame, seq: PER_NODE + 1, ts: Date.now() }, faces: [], topic: 'door' };
      target.receive(good);
      const deadline = Date.now() + 30_000;
      while (completed === done && errors.length === failed) {
        if (Date.now() > deadline) assert.fail('the good message did not finish');
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.equal(errors.length, failed, `the good message failed: ${errors[errors.length - 1]}`);
    });
  }
});
