import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readFileSync } from 'node:fs';

import sharp from 'sharp';

import { decodeImage } from '../src/image/decode';
import { metricsText, OTHER_CAMERA } from '../src/metrics';
import { frameFromI420, i420Size } from '../src/util/i420';
import { sampleValue } from './helpers/promText';
import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper');
const nodeFile = (name: string) => path.join(PROJECT_ROOT, 'dist', 'nodes', `${name}.js`);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const modelsNode = require(nodeFile('faceflow-models'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const detectNode = require(nodeFile('faceflow-detect'));

// eslint-disable-next-line @typescript-eslint/no-require-imports
const catchNode = require('@node-red/nodes/core/common/25-catch.js');

helper.init(require.resolve('node-red'));

/** Every node on one tab, so the Catch node's scope covers them. */
const onTab = (nodes: Record<string, unknown>[]) => [
  { id: 'f1', type: 'tab' },
  ...nodes.map((n) => ({ z: 'f1', ...n })),
];

interface Msg {
  payload: unknown;
  faces?: { box: number[]; landmarks: number[][]; score: number }[];
  topic?: string;
  keep?: string;
}

const FLOW = onTab([
  { id: 'models', type: 'faceflow-models', pack: 'default' },
  { id: 'detect', type: 'faceflow-detect', models: 'models', wires: [['out']] },
  { id: 'out', type: 'helper' },
  { id: 'c1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
  { id: 'caught', type: 'helper' },
]);

describe('node: faceflow-detect (real Node-RED runtime)', function () {
  this.timeout(60_000);
  before(function (done) {
    requireSharedData(this);
    helper.startServer(done);
  });
  after((done) => {
    helper.stopServer(done);
  });
  afterEach(() => helper.unload());

  it('finds the faces of an image and passes the other message properties through', async () => {
    await helper.load([modelsNode, detectNode, catchNode], FLOW);
    const out = helper.getNode('out');
    const received = new Promise<Msg>((resolve) => out.on('input', resolve));
    const image = readFileSync(shared('face_recognition_examples', 'knn', 'test', 'obama_and_biden.jpg'));
    helper.getNode('detect').receive({ payload: image, topic: 'porch', keep: 'me' });
    const msg = await received;
    assert.equal(msg.faces?.length, 3);
    assert.equal((msg.payload as { width: number }).width, 2000);
    assert.equal((msg.payload as { cameraId: string }).cameraId, 'porch');
    assert.equal(msg.keep, 'me');
    for (const f of msg.faces ?? []) assert.equal(f.landmarks.length, 5);
  });

  it('reports a bad payload to Catch nodes with the message, and keeps working', async () => {
    await helper.load([modelsNode, detectNode, catchNode], FLOW);
    const detect = helper.getNode('detect');
    const caught = new Promise<{ error: { message: string }; id: number }>((resolve) =>
      helper.getNode('caught').on('input', resolve),
    );
    const statuses: { fill?: string; text?: string }[] = [];
    detect.on('call:status', (call: { args: [{ fill?: string; text?: string }] }) =>
      statuses.push(call.args[0]),
    );
    detect.receive({ payload: 42, id: 7 });
    const msg = await caught;
    assert.match(msg.error.message, /expected a frame .* got number/);
    assert.equal(msg.id, 7);
    assert.ok(statuses.some((s) => s.fill === 'red'));
    // The next good message still goes through.
    const out = helper.getNode('out');
    const received = new Promise<Msg>((resolve) => out.on('input', resolve));
    detect.receive({ payload: shared('face_recognition_examples', 'knn', 'train', 'biden', 'biden.jpg') });
    assert.equal((await received).faces?.length, 1);
  });

  /** A grey 320×240 camera frame, as rtsp-in sends them, with noise of ±4 levels. */
  function stillFrame(seq: number, cameraId = 'hall') {
    const rgb = Buffer.alloc(320 * 240 * 3);
    for (let i = 0; i < rgb.length; i++) rgb[i] = 100 + ((i * 7919 + seq * 104729) % 9) - 4;
    return { cameraId, seq, ts: 1_000_000 + seq * 66, width: 320, height: 240, rgb };
  }

  /** Frames the detector skipped, of no deployed camera. */
  async function skippedOther(): Promise<number> {
    return sampleValue(await metricsText(), 'faceflow_detect_skipped_total', { camera: OTHER_CAMERA }) ?? 0;
  }

  /** Loads the flow and counts the detector's runs. */
  async function loadCounting(nodes: Record<string, unknown>[]) {
    await helper.load([modelsNode, detectNode, catchNode], onTab(nodes));
    const flow = await helper.getNode('models').faceflow();
    const runs = { count: 0 };
    const detect = flow.detect.bind(flow);
    flow.detect = (...args: unknown[]) => {
      runs.count++;
      return detect(...(args as Parameters<typeof detect>));
    };
    return runs;
  }

  /** Sends each message in turn, waiting for its output. */
  async function sendAll(messages: Record<string, unknown>[]): Promise<Msg[]> {
    const out = helper.getNode('out');
    const detect = helper.getNode('detect');
    const got: Msg[] = [];
    for (const m of messages) {
      const received = new Promise<Msg>((resolve) => out.once('input', resolve));
      detect.receive(m);
      got.push(await received);
    }
    return got;
  }

  it('skips the detector on still camera frames of an empty scene, and detects when the picture changes', async () => {
    const runs = await loadCounting([
      { id: 'models', type: 'faceflow-models', pack: 'default' },
      { id: 'detect', type: 'faceflow-detect', models: 'models', skipStill: true, wires: [['out']] },
      { id: 'out', type: 'helper' },
    ]);
    const statuses: string[] = [];
    helper
      .getNode('detect')
      .on('call:status', (call: { args: [{ text?: string }] }) => statuses.push(call.args[0].text ?? ''));
    const skippedBefore = await skippedOther();
    const still = await sendAll([0, 1, 2, 3, 4].map((seq) => ({ payload: stillFrame(seq), topic: 'hall' })));
    assert.equal(runs.count, 1, 'only the first of five still frames');
    // 'hall' is no deployed camera, so its frames count under "other".
    assert.equal((await skippedOther()) - skippedBefore, 4);
    for (const msg of still) assert.deepEqual(msg.faces, []);
    assert.equal((still[4].payload as { seq: number }).seq, 4, 'each message carries its own frame');
    // The status changes at most twice a second: the next still frame a little later shows it.
    await new Promise((resolve) => setTimeout(resolve, 550));
    await sendAll([{ payload: stillFrame(5), topic: 'hall' }]);
    assert.equal(runs.count, 1);
    assert.match(statuses[statuses.length - 1], /no faces, scene still/);
    // Another camera is another scene.
    await sendAll([{ payload: stillFrame(6, 'door'), topic: 'door' }]);
    assert.equal(runs.count, 2);
    // A person in the hall: a real photo as the next camera frame of the hall.
    const photo = await decodeImage(
      shared('face_recognition_examples', 'knn', 'test', 'obama_and_biden.jpg'),
    );
    const [withFaces] = await sendAll([
      { payload: { ...photo, cameraId: 'hall', seq: 7, ts: 1_000_462 }, topic: 'hall' },
    ]);
    assert.equal(runs.count, 3);
    assert.equal(withFaces.faces?.length, 3);
  });

  it('warns once per camera whose detector picture does not fit the models, and not for one that fits', async () => {
    await loadCounting([
      { id: 'models', type: 'faceflow-models', pack: 'default' },
      { id: 'detect', type: 'faceflow-detect', models: 'models', skipStill: false, wires: [['out']] },
      { id: 'out', type: 'helper' },
    ]);
    // A 320×240 camera frame: BlazeFace's 256 box takes it at 256×192.
    const cameraFrame = (cameraId: string, seq: number, picture: [number, number]) =>
      frameFromI420(
        { cameraId, seq, ts: 1_000_000 + seq * 66, width: 320, height: 240 },
        Buffer.alloc(i420Size(320, 240), 90),
        {
          rgb: Buffer.alloc(picture[0] * picture[1] * 3, 90),
          width: picture[0],
          height: picture[1],
        },
      );
    await sendAll([
      { payload: cameraFrame('hall', 0, [128, 96]), topic: 'hall' },
      { payload: cameraFrame('hall', 1, [128, 96]), topic: 'hall' },
      { payload: cameraFrame('door', 0, [256, 192]), topic: 'door' },
    ]);
    const warnings = helper
      .log()
      .args.map((a: { level: number; msg: unknown }[]) => a[0])
      .filter(
        (e: { level: number; msg: unknown }) =>
          e.level === 30 && String(e.msg).includes('pictures for the detector'),
      )
      .map((e: { msg: unknown }) => String(e.msg));
    assert.deepEqual(warnings, [
      "Camera hall hands over 128×96 pictures for the detector, but these models look at 256: set the camera node's " +
        "Detector size to 256 (or 0), so that the detector uses ffmpeg's picture instead of shrinking every frame itself",
    ]);
  });

  it('detects on every frame with skipStill off, and on every image that is not a camera frame', async () => {
    const runs = await loadCounting([
      { id: 'models', type: 'faceflow-models', pack: 'default' },
      { id: 'detect', type: 'faceflow-detect', models: 'models', skipStill: false, wires: [['out']] },
      { id: 'out', type: 'helper' },
    ]);
    await sendAll([0, 1, 2].map((seq) => ({ payload: stillFrame(seq), topic: 'hall' })));
    assert.equal(runs.count, 3);
    await helper.unload();
    // A flow saved before the option existed skips still frames; photos are never skipped.
    const gated = await loadCounting(FLOW);
    await sendAll([0, 1, 2].map((seq) => ({ payload: stillFrame(seq), topic: 'hall' })));
    assert.equal(gated.count, 1);
    const grey = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#646464' } })
      .png()
      .toBuffer();
    const photos = await sendAll([
      { payload: grey, topic: 'hall' },
      { payload: grey, topic: 'hall' },
    ]);
    assert.equal(gated.count, 3, 'both photos detected');
    for (const msg of photos) assert.deepEqual(msg.faces, []);
  });

  it('says so when no models configuration is chosen', async () => {
    await helper.load(
      [modelsNode, detectNode, catchNode],
      onTab([
        { id: 'detect', type: 'faceflow-detect', models: '', wires: [[]] },
        { id: 'c1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper' },
      ]),
    );
    const caught = new Promise<{ error: { message: string } }>((resolve) =>
      helper.getNode('caught').on('input', resolve),
    );
    helper.getNode('detect').receive({ payload: Buffer.from('x') });
    assert.match((await caught).error.message, /choose a faceflow-models configuration/);
  });

  it('refuses an unknown model pack with a clear error', async () => {
    await helper.load(
      [modelsNode, detectNode, catchNode],
      onTab([
        { id: 'models', type: 'faceflow-models', pack: 'nonesuch' },
        { id: 'detect', type: 'faceflow-detect', models: 'models', wires: [[]] },
        { id: 'c1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper' },
      ]),
    );
    const caught = new Promise<{ error: { message: string } }>((resolve) =>
      helper.getNode('caught').on('input', resolve),
    );
    helper
      .getNode('detect')
      .receive({ payload: shared('face_recognition_examples', 'knn', 'train', 'biden', 'biden.jpg') });
    assert.match((await caught).error.message, /unknown model pack 'nonesuch'/);
  });
});
