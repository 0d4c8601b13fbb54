import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import sharp from 'sharp';

import { MjpegServer } from '../src/io/mjpegServer';
import type { FaceFrame } from '../src/types';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A small real frame: a grey gradient, so that the default encoder has something to draw. */
function frame(seq: number, width = 64, height = 48): FaceFrame {
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i + seq * 7) % 256;
  return { frame: { cameraId: 'cam', seq, ts: 1_700_000_000_000 + seq, width, height, rgb }, faces: [] };
}

/** A stand-in JPEG of `size` bytes (SOI, filler, EOI), counted by its first filler byte. */
function fakeJpeg(size: number, tag: number): Buffer {
  const b = Buffer.alloc(size, tag & 0xff);
  b[0] = 0xff;
  b[1] = 0xd8;
  b[size - 2] = 0xff;
  b[size - 1] = 0xd9;
  return b;
}

interface Part {
  headers: Record<string, string>;
  body: Buffer;
}

/** Reads a multipart/x-mixed-replace body part by part, by Content-Length as MJPEG clients do. */
class PartReader {
  parts: Part[] = [];
  ended = false;
  private buffer = Buffer.alloc(0);

  constructor(private readonly boundary: string) {}

  feed(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const headEnd = this.buffer.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const lines = this.buffer.subarray(0, headEnd).toString('latin1').split('\r\n');
      const start = lines.findIndex((l) => l === `--${this.boundary}`);
      assert.ok(start >= 0, `part starts with the boundary: ${JSON.stringify(lines)}`);
      const headers = Object.fromEntries(
        lines.slice(start + 1).map((l) => {
          const i = l.indexOf(':');
          return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
        }),
      );
      const length = Number(headers['content-length']);
      assert.ok(Number.isInteger(length) && length > 0, 'Content-Length on every part');
      if (this.buffer.length < headEnd + 4 + length + 2) return;
      const body = this.buffer.subarray(headEnd + 4, headEnd + 4 + length);
      assert.equal(this.buffer.subarray(headEnd + 4 + length, headEnd + 6 + length).toString(), '\r\n');
      this.parts.push({ headers, body: Buffer.from(body) });
      this.buffer = this.buffer.subarray(headEnd + 6 + length);
    }
  }
}

interface Viewer {
  res: http.IncomingMessage;
  reader: PartReader;
  close(): void;
}

function watch(port: number, path = '/stream.mjpg', headers: Record<string, string> = {}): Promise<Viewer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const boundary = /boundary=([^;]+)/.exec(res.headers['content-type'] ?? '')?.[1] ?? '';
      const reader = new PartReader(boundary);
      res.on('data', (c: Buffer) => reader.feed(c));
      res.on('end', () => (reader.ended = true));
      res.on('error', () => (reader.ended = true));
      resolve({ res, reader, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

function get(port: number, path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>(
    (resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
        })
        .on('error', reject);
    },
  );
}

describe('MjpegServer over loopback', function () {
  this.timeout(15000);
  const servers: MjpegServer[] = [];
  const open = (options: ConstructorParameters<typeof MjpegServer>[0] = {}) => {
    const s = new MjpegServer({ onError: () => undefined, ...options });
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it('streams JPEG parts with correct headers to a client', async () => {
    const server = open({ maxFps: 100 });
    const port = await server.listen(0);
    assert.ok(port > 0);
    const viewer = await watch(port);
    assert.equal(viewer.res.statusCode, 200);
    assert.match(viewer.res.headers['content-type'] ?? '', /^multipart\/x-mixed-replace; boundary=\S+$/);
    assert.match(viewer.res.headers['cache-control'] ?? '', /no-store/);
    await until(() => server.clientCount === 1, 'the client to register');
    for (let i = 0; i < 5; i++) {
      server.push(frame(i));
      await until(() => viewer.reader.parts.length === i + 1, `part ${i + 1}`);
    }
    for (const [i, p] of viewer.reader.parts.entries()) {
      assert.equal(p.headers['content-type'], 'image/jpeg');
      assert.equal(Number(p.headers['content-length']), p.body.length);
      assert.equal(Number(p.headers['x-timestamp']), 1_700_000_000_000 + i);
      const meta = await sharp(p.body).metadata();
      assert.equal(meta.format, 'jpeg');
      assert.deepEqual([meta.width, meta.height], [64, 48]);
    }
    viewer.close();
  });

  it('serves two clients the same frames', async () => {
    const server = open({ maxFps: 100 });
    const port = await server.listen();
    const a = await watch(port);
    const b = await watch(port);
    await until(() => server.clientCount === 2, 'two clients');
    for (let i = 0; i < 3; i++) {
      server.push(frame(i));
      await until(
        () => a.reader.parts.length === i + 1 && b.reader.parts.length === i + 1,
        `part ${i + 1} on both`,
      );
    }
    assert.deepEqual(
      a.reader.parts.map((p) => p.body),
      b.reader.parts.map((p) => p.body),
    );
    assert.equal(server.stats().encoded, 3, 'encoded once for both');
    a.close();
    b.close();
  });

  it('encodes nothing while nobody watches, then only the latest frame', async () => {
    let calls = 0;
    const server = open({
      maxFps: 1000,
      encode: async (item) => (calls++, fakeJpeg(100, item.frame.seq)),
    });
    const port = await server.listen();
    for (let i = 0; i < 20; i++) server.push(frame(i));
    await sleep(50);
    assert.equal(calls, 0);
    const viewer = await watch(port);
    await until(() => viewer.reader.parts.length === 1, 'the first part');
    assert.equal(calls, 1);
    assert.equal(viewer.reader.parts[0].body[2], 19, 'the latest frame');
    viewer.close();
    await until(() => server.clientCount === 0, 'the client to leave');
    for (let i = 20; i < 40; i++) server.push(frame(i));
    await sleep(50);
    assert.equal(calls, 1, 'nothing more after the last client left');
    assert.equal(server.stats().pushed, 40);
  });

  it('caps the encoding rate', async () => {
    let calls = 0;
    const server = open({ maxFps: 10, encode: async () => (calls++, fakeJpeg(100, 1)) });
    const port = await server.listen();
    const viewer = await watch(port);
    await until(() => server.clientCount === 1, 'the client');
    const start = Date.now();
    while (Date.now() - start < 500) {
      server.push(frame(calls));
      await sleep(2);
    }
    // 10 fps for half a second: 5 or 6 encodes (the first comes at once), not ~200.
    assert.ok(calls >= 2 && calls <= 7, `${calls} encodes`);
    viewer.close();
  });

  it('skips frames for a slow client without slowing a fast one', async function () {
    this.timeout(30000);
    // 1 MB frames, so that a client that stops reading fills the loopback buffers quickly.
    const size = 1 << 20;
    const server = open({ maxFps: 25, encode: async (item) => fakeJpeg(size, item.frame.seq) });
    const port = await server.listen();
    const slow = net.connect(port, '127.0.0.1');
    await new Promise<void>((r) => slow.once('connect', () => r()));
    slow.write(`GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    slow.pause();
    const fast = await watch(port);
    await until(() => server.clientCount === 2, 'both clients');
    const frames = 60;
    const start = Date.now();
    for (let i = 0; i < frames; i++) {
      server.push(frame(i));
      await sleep(40);
    }
    await until(
      () => fast.reader.parts.length >= server.stats().encoded,
      'the fast client to catch up',
      5000,
    );
    const elapsed = Date.now() - start;
    const stats = server.stats();
    const [slowStats, fastStats] = [...stats.clients].sort((a, b) => a.sent - b.sent);
    assert.ok(
      fast.reader.parts.length >= 0.9 * stats.encoded,
      `fast got ${fast.reader.parts.length} of ${stats.encoded}`,
    );
    assert.ok(stats.encoded >= 0.75 * frames, `encoded ${stats.encoded} of ${frames} pushed`);
    assert.ok(slowStats.sent < fastStats.sent / 2, `slow was sent ${slowStats.sent}, fast ${fastStats.sent}`);
    assert.ok(slowStats.skipped > 0);
    assert.ok(elapsed < frames * 40 + 3000, `took ${elapsed} ms`);
    // Frames arrive in order and whole.
    const tags = fast.reader.parts.map((p) => p.body[2]);
    assert.deepEqual(
      tags,
      [...tags].sort((a, b) => a - b),
    );
    assert.ok(fast.reader.parts.every((p) => p.body.length === size));
    slow.destroy();
    fast.close();
  });

  it('asks for basic auth: 401 without or with wrong credentials, 200 with the right ones', async () => {
    const server = open({ auth: { username: 'ann', password: 's3cret:!' } });
    const port = await server.listen();
    server.push(frame(1));
    const none = await get(port, '/snapshot.jpg');
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /^Basic realm="faceflow"/);
    const basic = (u: string, p: string) => ({
      Authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`,
    });
    assert.equal((await get(port, '/snapshot.jpg', basic('ann', 'wrong'))).status, 401);
    assert.equal((await get(port, '/snapshot.jpg', basic('bob', 's3cret:!'))).status, 401);
    assert.equal((await get(port, '/snapshot.jpg', { Authorization: 'Bearer x' })).status, 401);
    const ok = await get(port, '/snapshot.jpg', basic('ann', 's3cret:!'));
    assert.equal(ok.status, 200);
    const viewer = await watch(port, '/stream.mjpg', basic('ann', 's3cret:!'));
    assert.equal(viewer.res.statusCode, 200);
    const refused = await watch(port, '/stream.mjpg');
    assert.equal(refused.res.statusCode, 401);
    viewer.close();
    refused.close();
  });

  it('serves a snapshot, 503 before the first frame, 404 elsewhere', async () => {
    const server = open();
    const port = await server.listen();
    const early = await get(port, '/snapshot.jpg');
    assert.equal(early.status, 503);
    server.push(frame(3, 160, 120));
    const snap = await get(port, '/snapshot.jpg?t=123');
    assert.equal(snap.status, 200);
    assert.equal(snap.headers['content-type'], 'image/jpeg');
    assert.equal(Number(snap.headers['content-length']), snap.body.length);
    const meta = await sharp(snap.body).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 160, 120]);
    const again = await get(port, '/snapshot.jpg');
    assert.deepEqual(again.body, snap.body, 'the same frame is not encoded twice');
    assert.equal(server.stats().encoded, 1);
    assert.equal((await get(port, '/nothing')).status, 404);
    assert.equal((await get(port, '/')).status, 200);
  });

  it('close() ends every client and stops listening', async () => {
    const server = open({ maxFps: 100 });
    const port = await server.listen();
    const a = await watch(port);
    const b = await watch(port);
    await until(() => server.clientCount === 2, 'two clients');
    server.push(frame(1));
    await until(() => a.reader.parts.length === 1 && b.reader.parts.length === 1, 'a frame each');
    await server.close();
    await until(() => a.reader.ended && b.reader.ended, 'both streams to end');
    await assert.rejects(get(port, '/snapshot.jpg'), /ECONNREFUSED/);
    await assert.rejects(server.listen(), /closed/);
  });

  it('reports a failed encode and goes on with the next frame', async () => {
    const errors: Error[] = [];
    const server = open({
      maxFps: 1000,
      onError: (err) => errors.push(err),
      encode: async (item) => {
        if (item.frame.seq === 1) throw new Error('bad frame');
        return fakeJpeg(100, item.frame.seq);
      },
    });
    const port = await server.listen();
    const viewer = await watch(port);
    await until(() => server.clientCount === 1, 'the client');
    server.push(frame(1));
    await until(() => errors.length === 1, 'the error');
    assert.equal((await get(port, '/snapshot.jpg')).status, 500);
    server.push(frame(2));
    await until(() => viewer.reader.parts.length === 1, 'the next frame');
    assert.equal(viewer.reader.parts[0].body[2], 2);
    assert.match(errors[0].message, /bad frame/);
    viewer.close();
  });

  it('explains a port in use', async () => {
    const first = open();
    const port = await first.listen();
    await assert.rejects(open().listen(port), new RegExp(`port ${port} on 127.0.0.1 is already in use`));
  });
});
