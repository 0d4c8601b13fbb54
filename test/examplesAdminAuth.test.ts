import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { NodeRedProcess } from './helpers/nodeRedProcess';
import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

const DASHBOARD = '@flowfuse/node-red-dashboard';
const ADMIN = { username: 'admin', password: 'a password of the admin' };

type FlowNode = Record<string, unknown> & { id: string; type: string };

/**
 * Issue 18, item 6: every example deployed as imported into a Node-RED of a user's own: a fresh user folder, a
 * port that is not 1880, adminAuth on. The changes are the camera, which a user points at their own (here it
 * plays the sample clip), and the MQTT brokers' hosts, so that nothing outside this machine is asked for.
 */
describe('every example deploys in a fresh Node-RED on another port with adminAuth on', function () {
  this.timeout(300_000);
  let dir = '';
  let red: NodeRedProcess | undefined;

  before(async function () {
    requireSharedData(this);
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-adminauth-'));
    const packages = existsSync(path.join(PROJECT_ROOT, 'node_modules', DASHBOARD)) ? [DASHBOARD] : [];
    red = await NodeRedProcess.start(dir, 'examples under adminAuth', { packages, admin: ADMIN });
  });

  after(async () => {
    await red?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses the admin API without a login', async () => {
    assert.notEqual(red!.port, 1880);
    assert.equal((await red!.request('GET', '/flows')).status, 401);
    await red!.login(ADMIN.username, ADMIN.password);
    assert.equal((await red!.request('GET', '/flows')).status, 200);
  });

  it('deploys each example with every node known, and no node reports an error', async () => {
    const video = shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4');
    const files = (await readdir(path.join(PROJECT_ROOT, 'examples'))).filter((f) => f.endsWith('.json'));
    const problems: string[] = [];
    for (const file of files) {
      const example = JSON.parse(
        await readFile(path.join(PROJECT_ROOT, 'examples', file), 'utf8'),
      ) as FlowNode[];
      // Brokers are asked for on this machine only (nothing listens there: a broker that is away is part of it).
      const flow = example.map((n) =>
        n.type === 'faceflow-rtsp-in'
          ? { ...n, source: 'file', file: video, loop: true }
          : n.type === 'mqtt-broker'
            ? { ...n, broker: '127.0.0.1', port: '1' }
            : n,
      );
      const mark = red!.mark();
      await red!.deploy(flow);
      // Long enough for the models to open, the cameras to start and the first frames to pass.
      await new Promise((r) => setTimeout(r, 4000));
      const log = red!.log.slice(mark);
      if (/Waiting for missing types/.test(log))
        problems.push(`${file}: ${/missing types.*$/m.exec(log)?.[0]}`);
      for (const line of log.split('\n').filter((l) => /\[error\]/.test(l)))
        problems.push(`${file}: ${line}`);
      const deployed = JSON.parse((await red!.request('GET', '/flows')).text) as FlowNode[];
      assert.equal(deployed.length, flow.length, `${file}: every node kept`);
    }
    assert.deepEqual(problems, []);
  });
});
