import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readFileSync } from 'node:fs';

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
