import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper');
const nodeFile = (name: string) => path.join(PROJECT_ROOT, 'dist', 'nodes', `${name}.js`);
/* eslint-disable @typescript-eslint/no-require-imports */
const NODES = [
  require(nodeFile('faceflow-models')),
  require(nodeFile('faceflow-detect')),
  require(nodeFile('faceflow-gallery')),
  require(nodeFile('faceflow-match')),
  require('@node-red/nodes/core/common/25-catch.js'),
];
/* eslint-enable @typescript-eslint/no-require-imports */

helper.init(require.resolve('node-red'));

const knn = (...parts: string[]) => shared('face_recognition_examples', 'knn', ...parts);

interface Msg {
  topic?: string;
  payload: Record<string, unknown>;
  faces?: {
    box: number[];
    embedding?: Float32Array;
    identity?: { name: string; similarity: number; topK: unknown[] };
  }[];
  error?: { message: string };
}

const onTab = (nodes: Record<string, unknown>[]) => [
  { id: 'f1', type: 'tab' },
  ...nodes.map((n) => ({ z: 'f1', ...n })),
];

describe('node: faceflow-match (real Node-RED runtime)', function () {
  this.timeout(120_000);
  let dir: string;

  before(function (done) {
    requireSharedData(this);
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-nodes-match-'));
    helper.startServer(done);
  });
  after((done) => {
    rmSync(dir, { recursive: true, force: true });
    helper.stopServer(done);
  });
  afterEach(() => helper.unload());

  it('names Obama and Biden in a detect → match flow after enrolling them by command', async () => {
    await helper.load(
      NODES,
      onTab([
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        { id: 'g1', type: 'faceflow-gallery', models: 'm1', path: path.join(dir, 'people.fgal') },
        { id: 'detect', type: 'faceflow-detect', models: 'm1', wires: [['match']] },
        { id: 'match', type: 'faceflow-match', gallery: 'g1', topK: 2, wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const out = helper.getNode('out');
    const next = () => new Promise<Msg>((resolve) => out.once('input', resolve));
    const match = helper.getNode('match');
    const statuses: { text?: string }[] = [];
    match.on('call:status', (call: { args: [{ text?: string }] }) => statuses.push(call.args[0]));

    for (const name of ['obama', 'biden']) {
      const answered = next();
      match.receive({ topic: 'enroll', payload: { name, image: knn('train', name, `${name}.jpg`) } });
      const answer = await answered;
      assert.equal(answer.error, undefined, answer.error?.message);
    }

    const received = next();
    helper.getNode('detect').receive({ payload: knn('test', 'obama_and_biden.jpg'), topic: 'porch' });
    const msg = await received;
    assert.equal(msg.topic, 'porch');
    const names = (msg.faces ?? []).map((f) => f.identity?.name).sort();
    assert.deepEqual(names, ['Unknown', 'biden', 'obama']);
    for (const f of msg.faces ?? []) {
      assert.ok(f.embedding instanceof Float32Array);
      assert.equal(f.identity?.topK.length, 2);
    }
    assert.ok(
      statuses.some((s) => /^3 faces: /.test(s.text ?? '')),
      JSON.stringify(statuses),
    );
  });

  it('reports a frame without faces to Catch nodes', async () => {
    await helper.load(
      NODES,
      onTab([
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        { id: 'g1', type: 'faceflow-gallery', models: 'm1', path: path.join(dir, 'people.fgal') },
        { id: 'match', type: 'faceflow-match', gallery: 'g1', wires: [[]] },
        { id: 'c1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper' },
      ]),
    );
    const caught = new Promise<Msg>((resolve) => helper.getNode('caught').once('input', resolve));
    const frame = { cameraId: 'x', seq: 0, ts: 0, width: 1, height: 1, rgb: Buffer.alloc(3) };
    helper.getNode('match').receive({ payload: frame });
    assert.match((await caught).error?.message ?? '', /msg.faces is missing/);
  });
});
