/**
 * src/http/apiGuard.ts and src/util/admission.ts on their own: a real HTTP server on 127.0.0.1 with the guard in
 * front of a handler that echoes what the guard left on the request. The Node-RED side (the api guard node in
 * the "Recognition HTTP API" example) is tested in apiExample.test.ts.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

import { apiGuard, GUARD_MARK, type ApiGuardSettings, type GuardedRequest } from '../src/http/apiGuard';
import { AdmissionQueue } from '../src/util/admission';
import { httpRequest } from './helpers/http';

type Req = http.IncomingMessage & { body?: unknown; _body?: boolean; [GUARD_MARK]?: GuardedRequest };

/** A server whose every request goes through the guard (after `before`, when given) to a JSON echo. */
async function guardedServer(
  settings: ApiGuardSettings,
  admission?: AdmissionQueue,
  before?: (req: Req) => void,
): Promise<{ port: number; close: () => Promise<void> }> {
  const guard = apiGuard(() => settings, admission);
  const server = http.createServer((req: Req, res) => {
    before?.(req);
    guard(req, res, () => {
      const body = Buffer.isBuffer(req.body) ? { bytes: req.body.length } : req.body;
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ body, mark: req[GUARD_MARK] ?? null }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const post = (port: number, body: string, headers: Record<string, string> = {}) =>
  httpRequest(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    body,
    headers: { 'Content-Length': Buffer.byteLength(body), ...headers },
  });

describe('AdmissionQueue', () => {
  it('lets maxActive in, queues maxWaiting in order, refuses the rest, and hands each place on', async () => {
    const queue = new AdmissionQueue(1, 2);
    const first = queue.admit();
    const second = queue.admit();
    const third = queue.admit();
    assert.ok(first && second && third);
    assert.equal(queue.admit(), undefined, 'full: 1 running, 2 waiting');
    assert.deepEqual([queue.running, queue.queued], [1, 2]);
    const order: string[] = [];
    void second.place.then(() => order.push('second'));
    void third.place.then(() => order.push('third'));
    const release = await first.place;
    release();
    release(); // twice is once
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['second']);
    assert.deepEqual([queue.running, queue.queued], [1, 1]);
    third.cancel();
    (await second.place)();
    assert.deepEqual([queue.running, queue.queued], [0, 0]);
    assert.deepEqual(order, ['second'], 'a cancelled caller is never let in');
  });

  it('tryRun refuses when all places are taken and gives the place back when the work throws', async () => {
    const queue = new AdmissionQueue(1);
    let finish!: () => void;
    const running = queue.tryRun(() => new Promise<void>((r) => (finish = r)));
    assert.ok(running);
    assert.equal(
      queue.tryRun(async () => 1),
      undefined,
    );
    finish();
    await running;
    await assert.rejects(
      queue.tryRun(() => {
        throw new Error('at once');
      }) as Promise<never>,
      /at once/,
    );
    assert.equal(queue.running, 0);
  });
});

describe('apiGuard', () => {
  it('without a token is closed (503), unless callers are authenticated before it (httpNodeAuth)', async () => {
    const closed = await guardedServer({ tokenHint: 'the variable T' });
    const elsewhere = await guardedServer({ tokenHint: 'the variable T', authenticatedElsewhere: true });
    try {
      const refused = await post(closed.port, '{}', { 'Content-Type': 'application/json' });
      assert.equal(refused.status, 503);
      assert.match(JSON.parse(refused.text).error, /set the variable T/);
      const passed = await post(elsewhere.port, '{"a":1}', { 'Content-Type': 'application/json' });
      assert.equal(passed.status, 200, passed.text);
      assert.deepEqual(JSON.parse(passed.text).body, { a: 1 });
    } finally {
      await closed.close();
      await elsewhere.close();
    }
  });

  it('with a token requires it, even where callers are authenticated before it', async () => {
    const server = await guardedServer({ token: 's3cret', tokenHint: 'T', authenticatedElsewhere: true });
    try {
      assert.equal((await post(server.port, 'x')).status, 401);
      assert.equal((await post(server.port, 'x', { Authorization: 'Bearer s3cre' })).status, 401);
      assert.equal((await post(server.port, 'x', { Authorization: 'Basic s3cret' })).status, 401);
      const ok = await post(server.port, 'xyz', { Authorization: 'Bearer s3cret' });
      assert.equal(ok.status, 200, ok.text);
      const echoed = JSON.parse(ok.text);
      assert.deepEqual(echoed.body, { bytes: 3 });
      assert.equal(echoed.mark.maxImageBytes, 5 * 1024 * 1024);
    } finally {
      await server.close();
    }
  });

  it('takes a body that a parser in front of it has read already as it is, instead of waiting for it', async () => {
    // What Node-RED's editor app does to JSON bodies when it shares the root path with the HTTP nodes.
    const server = await guardedServer({ token: 't', tokenHint: 'T' }, undefined, (req) => {
      req.body = { parsed: 'before' };
      req._body = true;
      req.resume();
    });
    try {
      const reply = await post(server.port, '{"a":1}', {
        Authorization: 'Bearer t',
        'Content-Type': 'application/json',
      });
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual(JSON.parse(reply.text).body, { parsed: 'before' });
    } finally {
      await server.close();
    }
  });

  it('answers a body that stalls 408 and gives its place to the next caller', async () => {
    const server = await guardedServer(
      { token: 't', tokenHint: 'T', bodyTimeoutMs: 300 },
      new AdmissionQueue(1, 0),
    );
    try {
      const stalled = new Promise<number>((resolve, reject) => {
        const req = http.request(
          `http://127.0.0.1:${server.port}/`,
          { method: 'POST', headers: { Authorization: 'Bearer t', 'Content-Length': 100 } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.write('only this');
      });
      assert.equal(await stalled, 408);
      const next = await post(server.port, 'next', { Authorization: 'Bearer t' });
      assert.equal(next.status, 200, next.text);
    } finally {
      await server.close();
    }
  });
});
