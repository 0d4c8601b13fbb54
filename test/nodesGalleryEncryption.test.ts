import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

/**
 * The gallery node's key in the real Node-RED runtime: a plain file is refused where a key is set, and
 * "Encrypt an existing plain file" is the deliberate step that encrypts one.
 */

// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper');
const nodeFile = (name: string) => path.join(PROJECT_ROOT, 'dist', 'nodes', `${name}.js`);
/* eslint-disable @typescript-eslint/no-require-imports */
const NODES = [
  require(nodeFile('faceflow-models')),
  require(nodeFile('faceflow-gallery')),
  require(nodeFile('faceflow-match')),
];
/* eslint-enable @typescript-eslint/no-require-imports */
helper.init(require.resolve('node-red'));

const KEY = 'correct horse battery staple';

const flowFor = (file: string, gallery: Record<string, unknown> = {}) => [
  { id: 'f1', type: 'tab' },
  { id: 'm1', z: 'f1', type: 'faceflow-models', pack: 'default' },
  { id: 'g1', z: 'f1', type: 'faceflow-gallery', models: 'm1', path: file, backend: 'exact', ...gallery },
  { id: 'match', z: 'f1', type: 'faceflow-match', gallery: 'g1', wires: [['out']] },
  { id: 'out', z: 'f1', type: 'helper' },
];

interface Answer {
  payload: { items?: { name: string }[] };
  error?: { message: string };
}

function command(topic: string, payload?: unknown): Promise<Answer> {
  const answered = new Promise<Answer>((resolve) => helper.getNode('out').once('input', resolve));
  helper.getNode('match').receive({ topic, payload });
  return answered;
}

describe('node: faceflow-gallery key and plain files (real Node-RED runtime)', function () {
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
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-nodes-gallery-key-'));
    file = path.join(dir, 'people.fgal');
  });
  afterEach(async () => {
    await helper.unload();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a plain file with a key, encrypts it only when "Encrypt an existing plain file" is ticked', async () => {
    const photo = shared('face_recognition_examples', 'knn', 'train', 'obama', 'obama.jpg');
    await helper.load(NODES, flowFor(file));
    await command('enroll', { name: 'obama', image: photo });
    await helper.unload();
    const plain = readFileSync(file);
    assert.equal(plain.readUInt8(7) & 1, 0);

    await helper.load(NODES, flowFor(file), { g1: { key: KEY } });
    const refused = await command('list');
    assert.match(refused.error?.message ?? '', /^plain file refused: .*not encrypted/);
    await helper.unload();
    assert.deepEqual(readFileSync(file), plain, 'a refused file is left as it was');

    await helper.load(NODES, flowFor(file, { encryptExisting: true }), { g1: { key: KEY } });
    const warnings: string[] = [];
    helper.getNode('g1').on('call:warn', (call: { args: [string] }) => warnings.push(String(call.args[0])));
    const listed = await command('list');
    assert.equal(listed.error, undefined, listed.error?.message);
    assert.deepEqual(
      listed.payload.items?.map((p) => p.name),
      ['obama'],
    );
    assert.equal(readFileSync(file).readUInt8(7) & 1, 1, 'encrypted at once, not at the first change');
    assert.ok(!readFileSync(file).includes(Buffer.from('obama')));
    assert.deepEqual(
      readdirSync(dir).filter((n) => /\.fgal\.\d+$/.test(n)),
      [],
      'no plain backup left',
    );
    assert.match(warnings.join('\n'), /encrypted the plain gallery file/);
    await helper.unload();

    // The option left ticked does not let a plain copy back in.
    await helper.load(NODES, flowFor(file), { g1: { key: KEY } });
    assert.equal((await command('list')).error, undefined, 'opens encrypted without the option');
    await helper.unload();
    writeFileSync(file, plain);
    await helper.load(NODES, flowFor(file, { encryptExisting: true }), { g1: { key: KEY } });
    assert.match((await command('list')).error?.message ?? '', /^plain file refused: .*encrypted before/);
  });
});
