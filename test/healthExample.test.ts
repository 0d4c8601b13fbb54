/**
 * The "Camera health alerts" example (issue 8) in a real Node-RED (the demo launcher, which keeps a
 * flows.json it finds), asking the health node about a real RTSP camera that is
 * down at first and then comes up: one alert when the problem starts, one when it is fixed, none between.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { DemoProcess, freePort } from './helpers/demoProcess';
import { requireGstRtspServer, RtspTestServer } from './helpers/rtspServer';
import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

type FlowNode = Record<string, unknown> & { id: string; type: string };

const CLIP = shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4');

/** The alerts the example's debug node printed to the log: each is a log entry with the payload on the lines below. */
function alertsIn(log: string): string[] {
  // Node-RED's log entries start with a date such as `23 Nov 23:06:14 - `.
  return log
    .split(/\n(?=\d{1,2} \w{3} \d\d:\d\d:\d\d - )/)
    .filter((entry) => entry.includes('[debug:alerts]'));
}

describe('examples/Camera health alerts.json in a real Node-RED, against a real camera', function () {
  this.timeout(180_000);
  let dir = '';
  let demo: DemoProcess | undefined;
  let camera: RtspTestServer | undefined;

  before(function () {
    requireSharedData(this);
    requireGstRtspServer(this);
  });

  after(async () => {
    await demo?.stop();
    await camera?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('alerts once when the camera is unreachable, once when it is back, and says nothing while all is well', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-health-'));
    // The camera's port is chosen, then the camera powered off: Node-RED starts with it unreachable.
    camera = await RtspTestServer.start({ file: CLIP });
    await camera.crash();

    const editor = await freePort();
    const flow = JSON.parse(
      await readFile(path.join(PROJECT_ROOT, 'examples', 'Camera health alerts.json'), 'utf8'),
    ) as FlowNode[];
    const tab = flow.find((n) => n.type === 'tab')!.id;
    // The report is read in-process: nothing in the example names a host, a port or a token.
    assert.ok(!flow.some((n) => n.type === 'http request'), 'no HTTP request to the admin API');
    assert.ok(flow.some((n) => n.type === 'faceflow-health'));
    const forTest = flow.map((n): FlowNode => {
      // Asked every 2 s rather than 30.
      if (n.type === 'inject') return { ...n, repeat: '2', onceDelay: '1' };
      return n;
    });
    forTest.push({
      id: 'test_camera',
      type: 'faceflow-rtsp-in',
      z: tab,
      name: 'garden',
      source: 'rtsp',
      url: camera.url(),
      transport: 'tcp',
      file: '',
      loop: true,
      realtime: true,
      device: '/dev/video0',
      cameraId: 'garden',
      fps: '5',
      width: '320',
      autostart: true,
      x: 100,
      y: 300,
      wires: [[], []],
    });
    await writeFile(path.join(dir, 'flows.json'), JSON.stringify(forTest));

    demo = new DemoProcess(dir, { editor, live: await freePort(), mqtt: await freePort() });
    await demo.waitForOutput('Started flows', 120_000);

    await demo.waitForOutput(/\[debug:alerts\][\s\S]*camera garden/, 60_000);
    let alerts = alertsIn(demo.log);
    assert.equal(alerts.length, 1, alerts.join('\n---\n'));
    assert.match(alerts[0], /status: 'problem'/);
    assert.match(alerts[0], /what: 'camera garden'/);
    assert.match(alerts[0], /why: '(down|reconnecting)/);

    // Several more polls with the camera still down: no repeated alert.
    await new Promise((r) => setTimeout(r, 7_000));
    assert.equal(alertsIn(demo.log).length, 1, 'the same problem is not reported again');

    const mark = demo.mark();
    await camera.restart();
    await demo.waitForOutput(/\[debug:alerts\][\s\S]*recovered/, 90_000, mark);
    alerts = alertsIn(demo.log);
    assert.equal(alerts.length, 2, alerts.join('\n---\n'));
    assert.match(alerts[1], /status: 'ok'/);
    assert.match(alerts[1], /recovered: \[ 'camera garden' \]/);
    assert.match(alerts[1], /problems: \[\]/);

    // The camera streams on: nothing more to say.
    await new Promise((r) => setTimeout(r, 6_000));
    assert.equal(alertsIn(demo.log).length, 2, alertsIn(demo.log).join('\n---\n'));
  });
});
