/**
 * Issue 7, Node-RED: the demo flow deployed again and again, fully and partially, must not leak
 * ffmpeg processes, ONNX sessions (memory) or file handles. FACEFLOW_LONG_TESTS=1 runs 300 cycles
 * instead of 100.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { DemoProcess, freePort, processesMentioning } from './helpers/demoProcess';
import { httpRequest } from './helpers/http';
import { childProcesses } from './helpers/processes';

const CYCLES = process.env.FACEFLOW_LONG_TESTS === '1' ? 300 : 100;

type FlowNode = Record<string, unknown> & { id: string; type: string };

function request(
  port: number,
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return httpRequest(`http://127.0.0.1:${port}${route}`, {
    method,
    body: data,
    headers: {
      Accept: 'application/json',
      ...(data === undefined
        ? {}
        : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) }),
      ...headers,
    },
  });
}

/** What a leak would grow: open file descriptors and resident memory of the Node-RED process. */
function usage(pid: number): { fds: number; rssMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return { fds: readdirSync(`/proc/${pid}/fd`).length, rssMb: rssKb / 1024 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe(`Node-RED: ${CYCLES} full and partial redeploys of the demo flow`, function () {
  this.timeout(20 * 60_000);
  let dir = '';
  let demo: DemoProcess;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-redeploy-'));
    demo = new DemoProcess(dir, { editor: await freePort(), live: await freePort(), mqtt: await freePort() });
    await demo.waitForOutput('Started flows', 120_000);
  });

  after(async () => {
    await demo?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('leaves one ffmpeg, a steady number of file handles and a memory plateau', async () => {
    const redPid = childProcesses(demo.child.pid).find((c) => c.comm.startsWith('node'))?.pid;
    assert.ok(redPid, 'the Node-RED process of the demo');
    const port = demo.ports.editor;
    const flows = JSON.parse((await request(port, 'GET', '/flows')).text) as FlowNode[];
    const camera = flows.find((n) => n.type === 'faceflow-rtsp-in');
    assert.ok(camera);
    const cameraFfmpeg = () =>
      processesMentioning(path.join(dir, 'media')).filter((p) => p.cmdline.includes('ffmpeg'));

    const samples: { fds: number; rssMb: number }[] = [];
    // Three kinds, as the editor's Deploy menu offers: everything, changed flows, changed nodes.
    const kinds = ['full', 'flows', 'nodes'] as const;
    for (let i = 0; i < CYCLES; i++) {
      const kind = kinds[i % kinds.length];
      // A changed camera name makes a partial deploy restart the camera and everything wired to it.
      camera.name = `camera ${i}`;
      const mark = demo.mark();
      const res = await request(port, 'POST', '/flows', flows, { 'Node-RED-Deployment-Type': kind });
      assert.ok(res.status === 200 || res.status === 204, `deploy ${i} (${kind}): ${res.status} ${res.text}`);
      // Let the new camera start (and the models load) before the next deploy stops it again.
      await demo.waitForOutput(/Started (flows|modified flows|modified nodes)/, 30_000, mark);
      await new Promise((r) => setTimeout(r, 300));
      samples.push(usage(redPid));
    }
    // The camera of the last deployment is running, alone: every earlier ffmpeg was stopped.
    const deadline = Date.now() + 10_000;
    while (cameraFfmpeg().length !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.equal(cameraFfmpeg().length, 1, JSON.stringify(cameraFfmpeg()));

    const tenth = Math.max(5, Math.floor(CYCLES / 10));
    const early = samples.slice(tenth, 2 * tenth);
    const late = samples.slice(-tenth);
    const fdsEarly = median(early.map((s) => s.fds));
    const fdsLate = median(late.map((s) => s.fds));
    const rssEarly = median(early.map((s) => s.rssMb));
    const rssLate = median(late.map((s) => s.rssMb));
    console.log(
      `      ${CYCLES} deploys: fds ${fdsEarly} → ${fdsLate}, RSS ${rssEarly.toFixed(0)} → ${rssLate.toFixed(0)} MB`,
    );
    // A leak of one handle or one model session per deploy would add CYCLES × 0.8 handles or
    // hundreds of MB; these bounds leave room for the allocator and garbage collector.
    assert.ok(fdsLate <= fdsEarly + 5, `file handles grew from ${fdsEarly} to ${fdsLate}`);
    assert.ok(
      rssLate <= rssEarly * 1.25 + 30,
      `RSS grew from ${rssEarly.toFixed(0)} to ${rssLate.toFixed(0)} MB`,
    );
    assert.doesNotMatch(demo.log, /\[error\]/, demo.log.slice(-3000));
  });
});
