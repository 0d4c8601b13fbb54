import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { GalleryStore } from '../src/gallery/store';
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
];
/* eslint-enable @typescript-eslint/no-require-imports */

helper.init(require.resolve('node-red'));

const CLI = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
const knn = (...parts: string[]) => shared('face_recognition_examples', 'knn', ...parts);

interface Msg {
  topic?: string;
  payload: Record<string, unknown> & { items?: { name: string }[] };
  error?: { message: string };
  faces?: { identity?: { name: string } }[];
}

function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['FACEFLOW_MODELS', 'FACEFLOW_GALLERY', 'FACEFLOW_GALLERY_KEY']) delete env[name];
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env, timeout: 60_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? Number(err.code) : 0, stderr }),
    );
  });
}

async function namesOnDisk(file: string): Promise<string[]> {
  const loaded = await new GalleryStore(file).load();
  return (loaded.snapshot?.identities ?? []).map((p) => p.name).sort();
}

describe('node: faceflow-gallery with other processes writing its file (real Node-RED runtime)', function () {
  this.timeout(120_000);
  let dir: string;

  before(function (done) {
    requireSharedData(this);
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-nodes-writers-'));
    helper.startServer(done);
  });
  after((done) => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    helper.stopServer(done);
  });
  afterEach(() => helper.unload());

  it('takes in a CLI delete within seconds and never writes the person back; CLI enrolments stay', async () => {
    const file = path.join(dir, 'people.fgal');
    await helper.load(NODES, [
      { id: 'f1', type: 'tab' },
      { id: 'm1', z: 'f1', type: 'faceflow-models', pack: 'default' },
      {
        id: 'g1',
        z: 'f1',
        type: 'faceflow-gallery',
        name: 'porch',
        models: 'm1',
        path: file,
        backend: 'exact',
      },
      { id: 'detect', z: 'f1', type: 'faceflow-detect', models: 'm1', wires: [['match']] },
      { id: 'match', z: 'f1', type: 'faceflow-match', gallery: 'g1', wires: [['out']] },
      { id: 'out', z: 'f1', type: 'helper' },
    ]);
    const out = helper.getNode('out');
    const next = () => new Promise<Msg>((resolve) => out.once('input', resolve));
    const command = async (topic: string, payload: unknown = {}): Promise<Msg> => {
      const answered = next();
      helper.getNode('match').receive({ topic, payload });
      const answer = await answered;
      assert.equal(answer.error, undefined, answer.error?.message);
      return answer;
    };
    const namesSeen = async (): Promise<string[]> => {
      const received = next();
      helper.getNode('detect').receive({ payload: knn('test', 'obama_and_biden.jpg') });
      return ((await received).faces ?? []).map((f) => f.identity?.name ?? '').sort();
    };

    for (const name of ['obama', 'biden'])
      await command('enroll', { name, image: knn('train', name, `${name}.jpg`) });
    assert.deepEqual(await namesSeen(), ['Unknown', 'biden', 'obama']);

    // Another process enrols someone and deletes Obama while the node holds the gallery open.
    const dimension = (await new GalleryStore(file).load()).snapshot!.dimension;
    const vector = Array.from({ length: dimension }, (_, i) => Math.cos(i));
    writeFileSync(path.join(dir, 'kim.json'), JSON.stringify(vector));
    const enrolled = await cli([
      'gallery',
      'enroll',
      'kim',
      '--embeddings',
      path.join(dir, 'kim.json'),
      '--gallery',
      file,
    ]);
    assert.equal(enrolled.code, 0, enrolled.stderr);
    const deleted = await cli(['gallery', 'delete', 'obama', '--gallery', file]);
    assert.equal(deleted.code, 0, deleted.stderr);

    let listed: string[] = [];
    for (let i = 0; i < 60; i++) {
      listed = ((await command('list')).payload.items ?? []).map((p) => p.name);
      if (!listed.includes('obama')) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.deepEqual(listed, ['biden', 'kim'], 'the running gallery took the changes in');
    assert.deepEqual(await namesSeen(), ['Unknown', 'Unknown', 'biden'], 'Obama is no longer recognised');
    const logged = helper
      .log()
      .args.map((a: { msg: unknown }[]) => String(a[0]?.msg))
      .filter((m: string) => m.startsWith('gallery file changed on disk: merged'));
    assert.ok(logged.length > 0, 'the node says it merged');

    // The node's next save (an enrolment) keeps the CLI's changes.
    await command('enroll', { name: 'biden', image: knn('train', 'biden', 'biden2.jpg') });
    assert.deepEqual(await namesOnDisk(file), ['biden', 'kim']);
  });
});
