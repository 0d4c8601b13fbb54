import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { PROJECT_ROOT, requireSharedData } from './helpers/shared';

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

const onTab = (nodes: Record<string, unknown>[]) => [
  { id: 'f1', type: 'tab' },
  ...nodes.map((n) => ({ z: 'f1', ...n })),
];

/** A frame of grey pixels with no faces: enough for a stage to reach its configuration. */
const frame = () => ({
  topic: 'door',
  payload: { width: 4, height: 4, rgb: Buffer.alloc(48, 128), cameraId: 'door', ts: Date.now() },
  faces: [],
});

const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

describe('nodes: a configuration problem is reported once, not per frame (real Node-RED runtime)', function () {
  this.timeout(120_000);
  let dir: string;

  before(function (done) {
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-setup-'));
    helper.startServer(done);
  });
  after((done) => {
    rmSync(dir, { recursive: true, force: true });
    helper.stopServer(done);
  });
  afterEach(() => helper.unload());

  it('a gallery whose models cannot be told logs one error for 30 frames, with a red status and one Catch', async () => {
    await helper.load(
      NODES,
      onTab([
        // Two models configurations and none chosen: which one is meant cannot be guessed.
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        { id: 'm2', type: 'faceflow-models', pack: 'default' },
        { id: 'g1', type: 'faceflow-gallery', models: '', path: path.join(dir, 'a.fgal') },
        { id: 'match', type: 'faceflow-match', gallery: 'g1', wires: [[]] },
        { id: 'c1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper' },
      ]),
    );
    const match = helper.getNode('match');
    const errors: string[] = [];
    const statuses: { fill?: string; text?: string }[] = [];
    match.on('call:error', (call: { args: [unknown] }) => errors.push(String(call.args[0])));
    match.on('call:status', (call: { args: [{ fill?: string; text?: string }] }) =>
      statuses.push(call.args[0]),
    );
    let caught = 0;
    helper.getNode('caught').on('input', () => caught++);

    for (let i = 0; i < 30; i++) match.receive(frame());
    await settle();
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0], /choose a faceflow-models configuration/);
    assert.equal(caught, 1);
    assert.equal(statuses.at(-1)?.fill, 'red');
    assert.match(String(statuses.at(-1)?.text), /faceflow-models/);
  });

  it('a detect node without models logs one error for 30 frames', async () => {
    await helper.load(NODES, onTab([{ id: 'detect', type: 'faceflow-detect', models: '', wires: [[]] }]));
    const detect = helper.getNode('detect');
    const errors: string[] = [];
    detect.on('call:error', (call: { args: [unknown] }) => errors.push(String(call.args[0])));
    for (let i = 0; i < 30; i++) detect.receive(frame());
    await settle();
    assert.equal(errors.length, 1, errors.join('\n'));
  });

  it("a gallery with no models chosen takes the flows' only models configuration", async function () {
    requireSharedData(this);
    await helper.load(
      NODES,
      onTab([
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        { id: 'g1', type: 'faceflow-gallery', models: '', path: path.join(dir, 'b.fgal') },
        { id: 'match', type: 'faceflow-match', gallery: 'g1', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const answered = new Promise<{ payload: { total: number }; error?: { message: string } }>((resolve) =>
      helper.getNode('out').once('input', resolve),
    );
    helper.getNode('match').receive({ topic: 'list', payload: {} });
    const answer = await answered;
    assert.equal(answer.error, undefined, answer.error?.message);
    assert.equal(answer.payload.total, 0);
  });

  it('refuses a second gallery on the file of another, naming both, and enrols nothing through it', async function () {
    requireSharedData(this);
    const file = path.join(dir, 'shared.fgal');
    await helper.load(
      NODES,
      onTab([
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        { id: 'g1', type: 'faceflow-gallery', name: 'front door', models: 'm1', path: file },
        { id: 'g2', type: 'faceflow-gallery', name: 'garage', models: 'm1', path: file },
        { id: 'match1', type: 'faceflow-match', gallery: 'g1', wires: [['out']] },
        { id: 'match2', type: 'faceflow-match', gallery: 'g2', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const refused = [helper.getNode('g1'), helper.getNode('g2')];
    const logged = (helper.log().args as unknown[][])
      .map((a) => a[0] as { level?: number; msg?: unknown })
      .filter((e) => e.level === helper.log().ERROR)
      .map((e) => String(e.msg));
    const clash = logged.filter((m) => /two galleries on one file/.test(m));
    assert.equal(clash.length, 1, logged.join('\n'));
    assert.match(clash[0], /'front door'/);
    assert.match(clash[0], /'garage'/);
    assert.ok(refused.every(Boolean));
    const answer = (id: string) =>
      new Promise<{ error?: { message: string } }>((resolve) => {
        helper.getNode('out').once('input', resolve);
        helper.getNode(id).receive({ topic: 'list', payload: {} });
      });
    assert.equal((await answer('match1')).error, undefined);
    assert.match(String((await answer('match2')).error?.message), /two galleries on one file/);
  });

  it('says in the status of the nodes that wait when the models are built at the first deploy', async function () {
    requireSharedData(this);
    // An install whose scripts did not run: nothing built in this (empty) cache yet.
    const before = process.env.FACEFLOW_CACHE;
    process.env.FACEFLOW_CACHE = path.join(dir, 'empty-cache');
    try {
      await helper.load(
        NODES,
        onTab([
          { id: 'm1', type: 'faceflow-models', pack: 'default' },
          { id: 'detect', type: 'faceflow-detect', models: 'm1', wires: [['out']] },
          { id: 'out', type: 'helper' },
        ]),
      );
      const detect = helper.getNode('detect');
      const statuses: { fill?: string; text?: string }[] = [];
      detect.on('call:status', (call: { args: [{ fill?: string; text?: string }] }) =>
        statuses.push(call.args[0]),
      );
      const done = new Promise((resolve) => helper.getNode('out').once('input', resolve));
      detect.receive(frame());
      await done;
      const building = statuses.findIndex((st) => st.fill === 'yellow');
      assert.deepEqual(statuses[building], {
        fill: 'yellow',
        shape: 'ring',
        text: 'building the models (first use)…',
      });
      assert.ok(building < statuses.length - 1, JSON.stringify(statuses));
      assert.match(String(statuses.at(-1)?.text), /faces?, \d+ ms/, 'then the detector works');
      const log = helper.log();
      assert.ok(
        log.args.some((a: [{ msg?: unknown }]) =>
          /^building the models .* for their first use/.test(String(a[0].msg)),
        ),
        'one log line says why the first frame takes longer',
      );
    } finally {
      if (before === undefined) delete process.env.FACEFLOW_CACHE;
      else process.env.FACEFLOW_CACHE = before;
    }
  });
});
