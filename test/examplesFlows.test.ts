import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

/* eslint-disable @typescript-eslint/no-require-imports */
const helper = require('node-red-node-test-helper');
const core = (file: string) =>
  require(path.join(PROJECT_ROOT, 'node_modules', '@node-red', 'nodes', 'core', file));
/* eslint-enable @typescript-eslint/no-require-imports */

helper.init(require.resolve('node-red'));

const EXAMPLES = path.join(PROJECT_ROOT, 'examples');

type FlowNode = Record<string, unknown> & { id: string; type: string };

/** Every node module the examples may use: all of ours, and the core nodes they wire to. */
async function allNodes(): Promise<unknown[]> {
  const ours = (await readdir(path.join(PROJECT_ROOT, 'dist', 'nodes'))).filter((f) =>
    /^faceflow-.*\.js$/.test(f),
  );
  return [
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ...ours.map((f) => require(path.join(PROJECT_ROOT, 'dist', 'nodes', f))),
    core('common/20-inject.js'),
    core('common/21-debug.js'),
    core('common/25-catch.js'),
    core('function/10-switch.js'),
    core('network/10-mqtt.js'),
  ];
}

/** An example as the test runs it: cameras not started (no network), the gallery in a temp folder. */
function forTest(flow: FlowNode[], dir: string): FlowNode[] {
  return flow.map((n) => {
    if (n.type === 'faceflow-rtsp-in') return { ...n, autostart: false };
    if (n.type === 'faceflow-gallery') return { ...n, path: path.join(dir, 'gallery.fgal') };
    if (n.type === 'faceflow-mjpeg-out') return { ...n, port: '0' };
    if (n.type === 'mqtt-broker') return { ...n, autoConnect: false };
    return n;
  });
}

describe('examples/ flows (Import > Examples) in the real Node-RED runtime', function () {
  this.timeout(60_000);
  let dir = '';
  before(function (done) {
    requireSharedData(this);
    mkdtemp(path.join(tmpdir(), 'faceflow-examples-')).then((d) => {
      dir = d;
      helper.startServer(done);
    }, done);
  });
  after((done) => {
    helper.stopServer(() => {
      rm(dir, { recursive: true, force: true }).then(() => done(), done);
    });
  });
  afterEach(() => helper.unload());

  it('every example deploys with every node created', async () => {
    const files = (await readdir(EXAMPLES)).filter((f) => f.endsWith('.json'));
    assert.ok(files.length >= 1);
    for (const file of files) {
      const flow = JSON.parse(await readFile(path.join(EXAMPLES, file), 'utf8')) as FlowNode[];
      await helper.load(await allNodes(), forTest(flow, dir));
      for (const n of flow) {
        if (n.type === 'tab') continue;
        assert.ok(helper.getNode(n.id), `${file}: node ${n.id} (${n.type}) was not created`);
      }
      await helper.unload();
    }
  });

  it('Camera to MQTT: enrol by command, then a person seen on a few frames becomes one MQTT event', async () => {
    const flow = JSON.parse(await readFile(path.join(EXAMPLES, 'Camera to MQTT.json'), 'utf8')) as FlowNode[];
    await helper.load(await allNodes(), forTest(flow, dir));
    const answers: { payload: { enrolled?: unknown[] } }[] = [];
    helper.getNode('ffx_answers').on('input', (m: { payload: { enrolled?: unknown[] } }) => answers.push(m));
    const published: { topic: string; payload: { name: string } }[] = [];
    helper
      .getNode('ffx_publish')
      .on('input', (m: { topic: string; payload: { name: string } }) => published.push(m));

    const knn = shared('face_recognition_examples', 'knn');
    helper.getNode('ffx_match').receive({
      topic: 'enroll',
      payload: { name: 'biden', images: [path.join(knn, 'train', 'biden', 'biden.jpg')] },
    });
    await until(() => answers.length === 1, 'the enrolment answer');
    assert.equal(answers[0].payload.enrolled?.length, 1);

    // The same photo as four frames of the door camera: the tracker confirms the face, then it is named.
    const photo = path.join(knn, 'train', 'biden', 'biden2.jpg');
    for (let i = 0; i < 4; i++) helper.getNode('ffx_detect').receive({ payload: photo, topic: 'door' });
    await until(() => published.length >= 1, 'an event on the MQTT output');
    await new Promise((r) => setTimeout(r, 500));
    const recognized = published.filter((m) => m.topic === 'faceflow/door/recognized');
    assert.deepEqual(
      recognized.map((m) => m.payload.name),
      ['biden'],
      JSON.stringify(published.map((m) => m.topic)),
    );
    const presence = published.filter((m) => m.topic === 'faceflow/person/biden') as { retain?: boolean }[];
    assert.ok(presence.length >= 1 && presence.every((m) => m.retain === true), 'a retained last sighting');
  });
});

async function until(predicate: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
