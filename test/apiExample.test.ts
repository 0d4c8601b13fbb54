/**
 * The "Recognition HTTP API" example (issue 8) in a real Node-RED, called over real HTTP: the demo
 * launcher runs it in place of the demo flow (it keeps a flows.json it finds), with a token set.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';

import { samplePhotosDir } from '../src/demo/sampleMedia';
import { DemoProcess, freePort } from './helpers/demoProcess';
import { httpRequest } from './helpers/http';
import { PROJECT_ROOT } from './helpers/shared';

const TOKEN = 'test-token-7f3a';

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

async function call(
  port: number,
  method: string,
  route: string,
  body?: Buffer,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const reply = await httpRequest(`http://127.0.0.1:${port}${route}`, {
    method,
    body,
    headers: {
      Authorization: `Bearer ${TOKEN}`,
      ...(body ? { 'Content-Type': 'image/jpeg', 'Content-Length': body.length } : {}),
      ...headers,
    },
  });
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(reply.text) as Record<string, unknown>;
  } catch {
    parsed = { text: reply.text };
  }
  return { status: reply.status, body: parsed };
}

describe('examples/Recognition HTTP API.json over real HTTP', function () {
  this.timeout(180_000);
  let dir = '';
  let demo: DemoProcess;
  let port = 0;
  let sam: Buffer;
  let group: Buffer;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-api-'));
    await copyFile(
      path.join(PROJECT_ROOT, 'examples', 'Recognition HTTP API.json'),
      path.join(dir, 'flows.json'),
    );
    demo = new DemoProcess(
      dir,
      { editor: await freePort(), live: await freePort(), mqtt: await freePort() },
      {
        FACEFLOW_API_TOKEN: TOKEN,
      },
    );
    await demo.waitForOutput('Started flows', 120_000);
    port = demo.ports.editor;
    sam = await readFile(path.join(dir, 'photos', 'Sam', 'sam-1.jpg'));
    // sample1.jpg: Sam on the right, two women nobody enrolled beside her.
    group = await sharp(path.join(samplePhotosDir(), 'sample1.jpg')).resize(1280).jpeg().toBuffer();
  });

  after(async () => {
    await demo?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses calls without the token', async () => {
    const reply = await call(port, 'GET', '/faces', undefined, { Authorization: 'Bearer wrong' });
    assert.equal(reply.status, 401);
    assert.match(String(reply.body.error), /token/);
  });

  it('enrols a person from a photo (201), and refuses a group photo with the reason (400)', async () => {
    const enrolled = await call(port, 'POST', '/faces/enroll?name=Sam', sam);
    assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
    assert.equal(enrolled.body.name, 'Sam');
    const refused = await call(port, 'POST', '/faces/enroll?name=Group', group);
    assert.equal(refused.status, 400);
    assert.match(String(refused.body.error), /face/);
    const unnamed = await call(port, 'POST', '/faces/enroll', sam);
    assert.equal(unnamed.status, 400);
    assert.match(String(unnamed.body.error), /name the person/);
  });

  it('recognises the enrolled person in another photo and calls the others Unknown', async () => {
    const reply = await call(port, 'POST', '/faces/recognize', group);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const faces = reply.body.faces as { name: string; similarity: number; box: number[] }[];
    assert.ok(faces.length >= 3, `${faces.length} faces`);
    const named = faces.filter((f) => f.name !== 'Unknown');
    assert.deepEqual(
      named.map((f) => f.name),
      ['Sam'],
    );
    assert.ok(named[0].similarity > 0.52 && named[0].box.length === 4);
  });

  it('lists and deletes people; a second delete is 404', async () => {
    const list = await call(port, 'GET', '/faces');
    assert.equal(list.status, 200);
    assert.deepEqual(
      (list.body.items as { name: string }[]).map((p) => p.name),
      ['Sam'],
    );
    assert.equal((await call(port, 'DELETE', '/faces/Sam')).status, 200);
    const again = await call(port, 'DELETE', '/faces/Sam');
    assert.equal(again.status, 404, JSON.stringify(again.body));
    const empty = await call(port, 'GET', '/faces');
    assert.deepEqual(empty.body.items, []);
  });

  it('answers bad images with 400, an empty body with 400 and an oversized one with 413', async () => {
    const garbage = await call(port, 'POST', '/faces/recognize', Buffer.from('this is not a picture'));
    assert.equal(garbage.status, 400);
    assert.equal(typeof garbage.body.error, 'string');
    const truncated = await call(port, 'POST', '/faces/recognize', group.subarray(0, 2000));
    assert.equal(truncated.status, 400);
    const empty = await call(port, 'POST', '/faces/recognize', Buffer.alloc(0));
    assert.equal(empty.status, 400);
    const huge = await call(port, 'POST', '/faces/recognize', Buffer.alloc(6 * 1024 * 1024, 1));
    assert.equal(huge.status, 413, JSON.stringify(huge.body));
    // Still serving after all that.
    assert.equal((await call(port, 'POST', '/faces/recognize', group)).status, 200);
  });
});
