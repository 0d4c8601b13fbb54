import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper');
const nodeFile = (name: string) => path.join(PROJECT_ROOT, 'dist', 'nodes', `${name}.js`);
/* eslint-disable @typescript-eslint/no-require-imports */
const NODES = [
  require(nodeFile('faceflow-models')),
  require(nodeFile('faceflow-gallery')),
  require(nodeFile('faceflow-match')),
  require('@node-red/nodes/core/common/25-catch.js'),
];
/* eslint-enable @typescript-eslint/no-require-imports */

helper.init(require.resolve('node-red'));

const train = (...parts: string[]) => shared('face_recognition_examples', 'knn', 'train', ...parts);
const GROUP_PHOTO = shared('face_recognition_examples', 'knn', 'test', 'obama_and_biden.jpg');

interface Answer {
  topic: string;
  payload: Record<string, unknown> & { items?: { name: string; embeddings: number }[] };
  error?: { message: string };
}

/** Every node on one tab, so the Catch node's scope covers them. */
const onTab = (nodes: Record<string, unknown>[]) => [
  { id: 'f1', type: 'tab' },
  ...nodes.map((n) => ({ z: 'f1', ...n })),
];

const flowFor = (file: string, gallery: Record<string, unknown> = {}) =>
  onTab([
    { id: 'm1', type: 'faceflow-models', pack: 'default' },
    { id: 'g1', type: 'faceflow-gallery', models: 'm1', path: file, backend: 'exact', ...gallery },
    { id: 'match', type: 'faceflow-match', gallery: 'g1', wires: [['out']] },
    { id: 'out', type: 'helper' },
    { id: 'c1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper' },
  ]);

/** Sends a command to the match node and waits for its answer on the output. */
function command(topic: string, payload?: unknown): Promise<Answer> {
  const answered = new Promise<Answer>((resolve) => helper.getNode('out').once('input', resolve));
  helper.getNode('match').receive({ topic, payload });
  return answered;
}

function nextCaught(): Promise<{ error: { message: string } }> {
  return new Promise((resolve) => helper.getNode('caught').once('input', resolve));
}

describe('node: faceflow-gallery commands (real Node-RED runtime)', function () {
  this.timeout(120_000);
  let dir: string;
  let file: string;

  before(function (done) {
    requireSharedData(this);
    helper.startServer(done);
  });
  after((done) => {
    helper.stopServer(done);
  });
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-nodes-gallery-'));
    file = path.join(dir, 'people.fgal');
  });
  afterEach(async () => {
    await helper.unload();
    rmSync(dir, { recursive: true, force: true });
  });

  it('enrols, lists, renames, calibrates and deletes by command messages', async () => {
    await helper.load(NODES, flowFor(file));
    const obama = await command('enroll', {
      name: 'obama',
      images: [train('obama', 'obama.jpg'), train('obama', 'obama2.jpg')],
    });
    assert.equal(obama.error, undefined);
    assert.equal(obama.topic, 'enroll');
    assert.equal((obama.payload.enrolled as unknown[]).length, 2);
    const biden = await command('enroll', {
      name: 'biden',
      images: [readFileSync(train('biden', 'biden.jpg')), readFileSync(train('biden', 'biden2.jpg'))],
    });
    assert.equal((biden.payload.enrolled as unknown[]).length, 2);

    const listed = await command('list', {});
    assert.equal(listed.payload.total, 2);
    assert.deepEqual(
      listed.payload.items?.map((p) => [p.name, p.embeddings]),
      [
        ['biden', 2],
        ['obama', 2],
      ],
    );
    assert.equal(listed.payload.threshold, 0.921);
    const page = await command('list', { offset: 1, limit: 1 });
    assert.deepEqual(
      page.payload.items?.map((p) => p.name),
      ['obama'],
    );

    const calibrated = await command('calibrate', {});
    assert.equal(calibrated.error, undefined);
    assert.equal(calibrated.payload.genuinePairs, 2);
    assert.equal(calibrated.payload.impostorPairs, 4);
    assert.equal(calibrated.payload.applied, false);
    assert.equal(typeof calibrated.payload.auc, 'number');
    // Two people are far too few to show a 1e-3 false-accept rate: applying it is refused, not guessed.
    const applied = await command('calibrate', { apply: true });
    assert.match(applied.error?.message ?? '', /no reliable threshold/);

    const renamed = await command('rename', { from: 'biden', to: 'joe' });
    assert.deepEqual(renamed.payload, { from: 'biden', to: 'joe' });
    const ids = (obama.payload.enrolled as { embeddingId: number }[]).map((e) => e.embeddingId);
    const one = await command('delete', { name: 'obama', embeddingId: ids[0] });
    assert.equal(one.payload.embeddings, 1);
    const gone = await command('delete', { name: 'joe' });
    assert.deepEqual(gone.payload, { deleted: 'joe', embeddings: 2 });
    assert.deepEqual(
      (await command('list')).payload.items?.map((p) => p.name),
      ['obama'],
    );
    const all = await command('delete', { all: true });
    assert.equal(all.payload.identities, 1);
    assert.equal((await command('list')).payload.total, 0);
  });

  it('answers bad commands with msg.error and reports them to Catch nodes', async () => {
    await helper.load(NODES, flowFor(file));
    const cases: [string, unknown, RegExp][] = [
      ['frobnicate', { name: 'x' }, /expected a frame .* got topic "frobnicate"/],
      ['enroll', { image: train('obama', 'obama.jpg') }, /payload.name must be a non-empty string/],
      ['enroll', { name: 'pair', image: GROUP_PHOTO }, /nothing enrolled for 'pair'.*faces found/],
      ['enroll', { name: 'x', image: 'relative.jpg' }, /must be absolute/],
      ['rename', { from: 'nobody', to: 'x' }, /no identity named 'nobody'/],
      ['delete', {}, /payload.name must be a non-empty string/],
      ['list', 'everyone', /payload must be an object/],
    ];
    for (const [topic, payload, expected] of cases) {
      const caught = nextCaught();
      const answer = await command(topic, payload);
      assert.match(answer.error?.message ?? '', expected, topic);
      assert.equal(answer.topic, topic);
      assert.match((await caught).error.message, expected);
    }
    // The refused photo is listed with the reason in the answer's payload.
    const answer = await command('enroll', { name: 'pair', image: GROUP_PHOTO });
    assert.equal((answer.payload.refused as { problem: string }[])[0].problem, 'several-faces');
  });

  it('reads photo paths only inside the photos folder when one is set', async () => {
    await helper.load(NODES, flowFor(file, { imageDir: train() }));
    const inside = await command('enroll', { name: 'obama', image: path.join('obama', 'obama.jpg') });
    assert.equal(inside.error, undefined, inside.error?.message);
    for (const outside of [path.join('..', 'test', 'obama1.jpg'), GROUP_PHOTO, train()]) {
      const answer = await command('enroll', { name: 'obama', image: outside });
      assert.match(answer.error?.message ?? '', /outside the gallery's photos folder/, outside);
    }
  });

  it('keeps the gallery across a redeploy', async () => {
    await helper.load(NODES, flowFor(file));
    await command('enroll', { name: 'obama', image: train('obama', 'obama.jpg') });
    await command('enroll', { name: 'biden', image: train('biden', 'biden.jpg') });
    await helper.unload();
    await helper.load(NODES, flowFor(file));
    const listed = await command('list');
    assert.deepEqual(
      listed.payload.items?.map((p) => p.name),
      ['biden', 'obama'],
    );
  });

  it('encrypts with the key from the credentials, and says "wrong key" for another', async () => {
    await helper.load(NODES, flowFor(file), { g1: { key: 'correct horse battery staple' } });
    await command('enroll', { name: 'obama', image: train('obama', 'obama.jpg') });
    await helper.unload();
    assert.ok(!readFileSync(file).includes(Buffer.from('obama')), 'the name is not stored in clear');

    await helper.load(NODES, flowFor(file), { g1: { key: 'not the right one' } });
    const statuses: { fill?: string; text?: string }[] = [];
    helper
      .getNode('match')
      .on('call:status', (call: { args: [{ fill?: string; text?: string }] }) => statuses.push(call.args[0]));
    const answer = await command('list');
    assert.match(answer.error?.message ?? '', /^wrong key/);
    assert.ok(
      statuses.some((s) => s.fill === 'red' && /^wrong key/.test(s.text ?? '')),
      JSON.stringify(statuses),
    );
    await helper.unload();

    await helper.load(NODES, flowFor(file), { g1: { key: 'correct horse battery staple' } });
    assert.deepEqual(
      (await command('list')).payload.items?.map((p) => p.name),
      ['obama'],
    );
  });
});
