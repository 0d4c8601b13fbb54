/**
 * The "Recognition HTTP API" example (issue 8) in a real Node-RED, called over real HTTP: the demo
 * launcher runs it in place of the demo flow (it keeps a flows.json it finds), with a token set.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';

import { samplePhotosDir } from '../src/demo/sampleMedia';
import { DEFAULT_QUALITY_THRESHOLDS } from '../src/quality';
import { DemoProcess, freePort } from './helpers/demoProcess';
import { httpRequest } from './helpers/http';
import { hasSharedData, PROJECT_ROOT, shared } from './helpers/shared';

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

/** `POST /faces/verify` with a JSON body (any fields, so that the bad ones can be sent too). */
function verifyJson(port: number, fields: Record<string, unknown>, headers: Record<string, string> = {}) {
  const body = Buffer.from(JSON.stringify(fields));
  return call(port, 'POST', '/faces/verify', body, { 'Content-Type': 'application/json', ...headers });
}

/** `POST /faces/verify` as multipart/form-data, one file per field, as `curl -F a=@x.jpg` sends it. */
function verifyMultipart(port: number, files: Record<string, Buffer>) {
  const boundary = 'faceflow-test-boundary-93d1';
  const parts = Object.entries(files).flatMap(([field, bytes]) => [
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${field}.jpg"\r\n` +
        'Content-Type: image/jpeg\r\n\r\n',
    ),
    bytes,
    Buffer.from('\r\n'),
  ]);
  const body = Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]);
  return call(port, 'POST', '/faces/verify', body, {
    'Content-Type': `multipart/form-data; boundary=${boundary}`,
  });
}

interface Verdict {
  same: boolean;
  similarity: number;
  threshold: number;
  a: { box: number[]; score: number };
  b: { box: number[]; score: number };
}

interface QualityFace {
  box: number[];
  score: number;
  quality: Record<string, number>;
  passed: boolean;
  reasons: string[];
}

type Thresholds = Record<keyof typeof DEFAULT_QUALITY_THRESHOLDS, number>;

/** The reasons a face with these scores fails these rules, worked out here from the published rules. */
function expectedReasons(q: Record<string, number>, t: Thresholds): string[] {
  const reasons: string[] = [];
  if (q.size < t.minSize) reasons.push('too-small');
  if (q.sharpness < t.minSharpness) reasons.push('too-blurry');
  if (q.brightness < t.minBrightness) reasons.push('too-dark');
  if (q.brightness > t.maxBrightness) reasons.push('too-bright');
  if (q.contrast < t.minContrast) reasons.push('low-contrast');
  if (Math.abs(q.yaw) > t.maxYaw) reasons.push('yaw');
  if (Math.abs(q.pitch) > t.maxPitch) reasons.push('pitch');
  if (Math.abs(q.roll) > t.maxRoll) reasons.push('roll');
  return reasons;
}

interface Upload {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** Bytes of the body written before the answer came (or the connection closed). */
  sent: number;
}

/**
 * A POST that announces `declared` bytes and sends them a megabyte at a time, as fast as the server reads,
 * until the answer comes: a server that reads the whole body before answering gets all of it, one that
 * answers first gets a fraction. Writing stops at the answer.
 */
function uploadUntilAnswered(
  port: number,
  route: string,
  declared: number,
  headers: Record<string, string>,
): Promise<Upload> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const req = http.request(
      `http://127.0.0.1:${port}${route}`,
      { method: 'POST', headers: { ...headers, 'Content-Length': declared } },
      (res) => {
        answered = true;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parseBody(text), sent });
        });
      },
    );
    // The server closing its end while we still write is expected; only a failure without an answer is not.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    const pump = () => {
      while (!answered && sent < declared) {
        const piece = chunk.subarray(0, Math.min(chunk.length, declared - sent));
        sent += piece.length;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      if (!answered) req.end();
    };
    pump();
  });
}

/** A POST whose body stalls after its first bytes until `finish` sends the rest: it holds a place in the queue. */
function stalledUpload(port: number, route: string, body: Buffer, headers: Record<string, string>) {
  let finish!: () => void;
  const answer = new Promise<Upload>((resolve, reject) => {
    const req = http.request(
      `http://127.0.0.1:${port}${route}`,
      { method: 'POST', headers: { ...headers, 'Content-Length': body.length } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parseBody(text), sent: 0 }),
        );
      },
    );
    req.on('error', reject);
    req.write(body.subarray(0, 16));
    finish = () => req.end(body.subarray(16));
  });
  return { answer, finish: () => finish() };
}

function parseBody(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { text };
  }
}

/** A PNG whose header says `side`×`side` pixels: a few hundred KB that would decode to side² × 3 bytes. */
function hugePng(side: number): Promise<Buffer> {
  return sharp({ create: { width: side, height: side, channels: 3, background: '#808080' } })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

describe('examples/Recognition HTTP API.json over real HTTP', function () {
  this.timeout(180_000);
  let dir = '';
  let demo: DemoProcess;
  let port = 0;
  let sam: Buffer;
  let group: Buffer;
  /** Sam again, cut out of the group photo: another photo of her than `sam`, and her face only. */
  let samInGroup: Buffer;

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
    // Her face is at about x 990–1095, y 175–280 of the 1280 px group; the next face ends at x 681.
    samInGroup = await sharp(group)
      .extract({ left: 900, top: 100, width: 300, height: 280 })
      .jpeg()
      .toBuffer();
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

  it('answers a wrong token 401 before reading the body: a 400 MB upload stops at the answer', async () => {
    const declared = 400 * 1024 * 1024;
    const refused = await uploadUntilAnswered(port, '/faces/recognize', declared, {
      Authorization: 'Bearer wrong',
      'Content-Type': 'image/png',
    });
    assert.equal(refused.status, 401, JSON.stringify(refused.body));
    assert.match(String(refused.body.error), /token/);
    // Not read to its end (before the fix, Node-RED read all 400 MB and only then did the flow look at the token).
    assert.ok(refused.sent < declared / 4, `${refused.sent} of ${declared} bytes sent before the answer`);
    // With the token, a body that size is refused from its Content-Length, just as unread.
    const tooBig = await uploadUntilAnswered(port, '/faces/recognize', declared, {
      Authorization: `Bearer ${TOKEN}`,
      'Content-Type': 'image/png',
    });
    assert.equal(tooBig.status, 413, JSON.stringify(tooBig.body));
    assert.ok(tooBig.sent < declared / 4, `${tooBig.sent} of ${declared} bytes sent before the answer`);
    // A body of unknown length cannot be judged before it is read: refused.
    const chunked = await httpRequest(`http://127.0.0.1:${port}/faces/recognize`, {
      method: 'POST',
      body: sam,
      headers: {
        Authorization: `Bearer ${TOKEN}`,
        'Content-Type': 'image/jpeg',
        'Transfer-Encoding': 'chunked',
      },
    });
    assert.equal(chunked.status, 411, chunked.text);
  });

  it('refuses an image of too many pixels with 413, read from its header without decoding it', async () => {
    const png = await hugePng(7000);
    // Cut short: decoding it would fail as a truncated image (400); only its header is read, so it is 413.
    const cut = png.subarray(0, 2048);
    const tooMany = /7000×7000 image has 49000000 pixels, above the limit of 40000000/;
    for (const [what, bytes] of [
      ['whole', png],
      ['cut short', cut],
    ] as const) {
      const reply = await call(port, 'POST', '/faces/recognize', bytes, { 'Content-Type': 'image/png' });
      assert.equal(reply.status, 413, `${what}: ${JSON.stringify(reply.body)}`);
      assert.match(String(reply.body.error), tooMany, what);
    }
    const multipart = await verifyMultipart(port, { a: cut, b: sam });
    assert.equal(multipart.status, 413, JSON.stringify(multipart.body));
    assert.match(String(multipart.body.error), /^image a: 7000×7000/);
    // In JSON (base64) the flow decodes it: the decoder's own header check, answered 413 all the same.
    const json = await verifyJson(port, { a: sam.toString('base64'), b: cut.toString('base64') });
    assert.equal(json.status, 413, JSON.stringify(json.body));
    assert.match(String(json.body.error), /pixels, above the limit/);
    assert.equal(json.body.image, 'b');
  });

  it('answers malformed JSON and malformed multipart with 400 and a JSON error, never HTML or 500', async () => {
    const send = (body: string, type: string) =>
      httpRequest(`http://127.0.0.1:${port}/faces/verify`, {
        method: 'POST',
        body,
        headers: {
          Authorization: `Bearer ${TOKEN}`,
          'Content-Type': type,
          'Content-Length': Buffer.byteLength(body),
        },
      });
    const cases: [string, string, string, RegExp][] = [
      ['cut-off JSON', '{"a": "abc", ', 'application/json', /not valid JSON/],
      ['not JSON at all', 'a, b', 'application/json', /not valid JSON/],
      [
        'multipart, wrong boundary',
        '--other\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--other--\r\n',
        'multipart/form-data; boundary=faceflow',
        /multipart/,
      ],
      ['multipart, no boundary', 'whatever', 'multipart/form-data', /multipart/],
    ];
    for (const [what, body, type, error] of cases) {
      const reply = await send(body, type);
      assert.equal(reply.status, 400, `${what}: ${reply.text}`);
      assert.match(String(reply.headers['content-type']), /^application\/json/, what);
      const parsed = JSON.parse(reply.text) as { error: string };
      assert.match(parsed.error, error, what);
      assert.doesNotMatch(reply.text, /<html|at \w+ \(/i, `${what}: no page, no stack trace`);
    }
  });

  it('bounds the requests with a body: 4 at once, 8 waiting, the rest 429 with Retry-After; the waiting are served', async () => {
    const headers = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'image/jpeg' };
    // Each sends 16 bytes and stalls: the 4 let in hold their places while they read, the 8 after them wait
    // with their bodies unread, and nothing finishes until the test says so, so the count does not depend on speed.
    const uploads = Array.from({ length: 15 }, () => stalledUpload(port, '/faces/quality', sam, headers));
    const settled: Upload[] = [];
    for (const u of uploads)
      void u.answer.then(
        (r) => settled.push(r),
        () => undefined,
      );
    const deadline = Date.now() + 60_000;
    while (settled.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(settled.length, 3, 'three refused while the others hold their places');
    for (const r of settled) {
      assert.equal(r.status, 429, JSON.stringify(r.body));
      assert.equal(r.headers['retry-after'], '1');
      assert.match(String(r.body.error), /busy: 4 requests in progress and 8 waiting/);
    }
    for (const u of uploads) u.finish();
    const answers = await Promise.allSettled(uploads.map((u) => u.answer));
    const statuses = answers.map((a) => (a.status === 'fulfilled' ? a.value.status : 0));
    assert.equal(statuses.filter((s) => s === 429).length, 3, statuses.join(' '));
    assert.equal(statuses.filter((s) => s === 200).length, 12, statuses.join(' '));
    // And all places are free again.
    assert.equal((await call(port, 'POST', '/faces/quality', sam)).status, 200);
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
    assert.ok(named[0].similarity >= 0.921 && named[0].box.length === 4);
  });

  it('calls a face two enrolled people match equally ambiguous and names neither; a look-alike needs asking', async () => {
    const again = await sharp(sam).jpeg({ quality: 95 }).toBuffer(); // the same face, not the same file
    const refused = await call(port, 'POST', '/faces/enroll?name=Twin', again);
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.match(String(refused.body.error), /Sam/);
    const twin = await call(port, 'POST', '/faces/enroll?name=Twin&allowLookalike=true', again);
    assert.equal(twin.status, 201, JSON.stringify(twin.body));
    const reply = await call(port, 'POST', '/faces/recognize', group);
    const faces = reply.body.faces as {
      name: string;
      ambiguous?: boolean;
      candidates?: { name: string }[];
    }[];
    assert.deepEqual(
      faces.filter((f) => f.name !== 'Unknown'),
      [],
      'neither Sam nor Twin is named',
    );
    const ambiguous = faces.filter((f) => f.ambiguous);
    assert.equal(ambiguous.length, 1, JSON.stringify(faces));
    assert.deepEqual(ambiguous[0].candidates?.map((c) => c.name).sort(), ['Sam', 'Twin']);
    assert.equal((await call(port, 'DELETE', '/faces/Twin')).status, 200);
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

  describe('POST /faces/verify', () => {
    it('says two photos of Sam are the same person, with the threshold recognize uses', async () => {
      const reply = await verifyJson(port, { a: sam.toString('base64'), b: samInGroup.toString('base64') });
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      const v = reply.body as unknown as Verdict;
      assert.equal(v.same, true, JSON.stringify(v));
      assert.ok(v.similarity >= v.threshold && v.similarity < 1, JSON.stringify(v));
      // The gallery's threshold, as GET /faces reports it (the default pack's 0.921 while uncalibrated).
      const list = await call(port, 'GET', '/faces');
      assert.equal(v.threshold, list.body.threshold);
      assert.equal(v.threshold, 0.921);
      // Each face in its own image's pixels: Sam's crop is 480×580, her face in the 300×280 cut about 113 px.
      assert.equal(v.a.box.length, 4);
      assert.ok(v.a.box[2] - v.a.box[0] > 150, JSON.stringify(v.a));
      assert.ok(v.b.box[2] - v.b.box[0] < 150 && v.b.box[2] <= 300, JSON.stringify(v.b));
      assert.ok(v.a.score > 0.5 && v.b.score > 0.5);
    });

    it('says Sam and the largest face of the group photo (another woman) are not the same person', async () => {
      const reply = await verifyJson(port, { a: sam.toString('base64'), b: group.toString('base64') });
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      const v = reply.body as unknown as Verdict;
      assert.equal(v.same, false, JSON.stringify(v));
      assert.ok(v.similarity < v.threshold);
      // The largest of the three faces is the woman on the left (about 131 px), not Sam (about 104 px).
      const [x1, , x2] = v.b.box;
      assert.ok(x2 - x1 > 120 && x2 < 700, JSON.stringify(v.b));
    });

    it('takes multipart files too: Obama twice is one person, Obama and Biden two', async function () {
      if (!hasSharedData) this.skip();
      const train = (...p: string[]) => readFile(shared('face_recognition_examples', 'knn', 'train', ...p));
      const obama = await train('obama', 'obama.jpg');
      const obama2 = await train('obama', 'obama2.jpg');
      const biden = await train('biden', 'biden.jpg');
      const same = await verifyMultipart(port, { a: obama, b: obama2 });
      assert.equal(same.status, 200, JSON.stringify(same.body));
      assert.equal((same.body as unknown as Verdict).same, true, JSON.stringify(same.body));
      const other = await verifyMultipart(port, { a: obama, b: biden });
      assert.equal(other.status, 200, JSON.stringify(other.body));
      assert.equal((other.body as unknown as Verdict).same, false, JSON.stringify(other.body));
    });

    it('answers each bad request with 400 and says which image, 401 without the token, 413 when too big', async () => {
      const a = sam.toString('base64');
      const blank = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#7a8a9a' } })
        .jpeg()
        .toBuffer();
      const cases: [string, Promise<Reply>, number, RegExp, string?][] = [
        ['no body', verifyJson(port, {}), 400, /missing field "a"/],
        ['no b', verifyJson(port, { a }), 400, /missing field "b"/],
        ['an image body', call(port, 'POST', '/faces/verify', sam), 400, /missing field "a"/],
        ['a number', verifyJson(port, { a: 5, b: a }), 400, /field "a" must be a base64 string/],
        ['not base64', verifyJson(port, { a, b: 'this is *not* base64!' }), 400, /field "b" is not base64/],
        [
          'base64 text',
          verifyJson(port, { a: Buffer.from('hello, no picture').toString('base64'), b: a }),
          400,
          /image a is not a readable image/,
          'a',
        ],
        [
          'truncated b',
          verifyJson(port, { a, b: group.subarray(0, 2000).toString('base64') }),
          400,
          /image b is not a readable image/,
          'b',
        ],
        [
          'no face in b',
          verifyJson(port, { a, b: blank.toString('base64') }),
          400,
          /no face found in image b/,
          'b',
        ],
        [
          'no face in a',
          verifyJson(port, { a: blank.toString('base64'), b: a }),
          400,
          /no face found in image a/,
          'a',
        ],
        ['no token', verifyJson(port, { a, b: a }, { Authorization: 'Bearer wrong' }), 401, /token/],
        [
          '6 MB file',
          verifyMultipart(port, { a: Buffer.alloc(6 * 1024 * 1024, 1), b: sam }),
          413,
          /image a.*5 MB/,
        ],
      ];
      for (const [what, pending, status, error, image] of cases) {
        const reply = await pending;
        assert.equal(reply.status, status, `${what}: ${JSON.stringify(reply.body)}`);
        assert.match(String(reply.body.error), error, what);
        if (image) assert.equal(reply.body.image, image, what);
      }
      // A data: URL is fine, and nothing of the failed calls is left to get in the way.
      const after = await verifyJson(port, {
        a: `data:image/jpeg;base64,${a}`,
        b: samInGroup.toString('base64'),
      });
      assert.equal(after.status, 200, JSON.stringify(after.body));
      assert.equal((after.body as unknown as Verdict).same, true);
    });
  });

  describe('/faces/quality', () => {
    let rules: Thresholds;

    it("GET tells the rules: the quality gate node's limits, with what each reason means", async () => {
      const reply = await call(port, 'GET', '/faces/quality');
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      rules = reply.body.thresholds as Thresholds;
      // The example leaves every limit of its gate empty: the defaults, all of them, and nothing else.
      assert.deepEqual(rules, { ...DEFAULT_QUALITY_THRESHOLDS });
      const reasons = reply.body.reasons as Record<string, string>;
      for (const reason of [
        'too-small',
        'too-blurry',
        'too-dark',
        'too-bright',
        'low-contrast',
        'yaw',
        'roll',
      ])
        assert.equal(typeof reasons[reason], 'string', reason);
      const refused = await call(port, 'GET', '/faces/quality', undefined, { Authorization: 'Bearer wrong' });
      assert.equal(refused.status, 401);
    });

    it('passes a sharp frontal face, and fails the same face blurred, or tiny, with the reason', async () => {
      const ask = async (image: Buffer): Promise<QualityFace[]> => {
        const reply = await call(port, 'POST', '/faces/quality', image);
        assert.equal(reply.status, 200, JSON.stringify(reply.body));
        return reply.body.faces as QualityFace[];
      };
      const [sharpFace, ...none] = await ask(sam);
      assert.equal(none.length, 0);
      assert.equal(sharpFace.passed, true, JSON.stringify(sharpFace));
      assert.deepEqual(sharpFace.reasons, []);
      assert.ok(sharpFace.quality.sharpness > rules.minSharpness * 2, JSON.stringify(sharpFace.quality));
      assert.ok(sharpFace.quality.size > 200 && sharpFace.box.length === 4);

      const [blurred] = await ask(await sharp(sam).blur(6).jpeg().toBuffer());
      assert.equal(blurred.passed, false, JSON.stringify(blurred));
      assert.deepEqual(blurred.reasons, ['too-blurry']);
      assert.ok(blurred.quality.sharpness < rules.minSharpness);

      const tinyImage = await sharp(sam)
        .resize(50)
        .extend({ top: 100, bottom: 100, left: 100, right: 100, background: '#808080' })
        .jpeg()
        .toBuffer();
      const [tiny] = await ask(tinyImage);
      assert.equal(tiny.passed, false, JSON.stringify(tiny));
      assert.ok(tiny.reasons.includes('too-small'), JSON.stringify(tiny));
      assert.ok(tiny.quality.size < rules.minSize);

      // Every verdict follows from the published rules and the scores given, in the group photo too
      // (where Sam's tilted head fails on roll, the two others pass).
      const groupFaces = await ask(group);
      assert.equal(groupFaces.length, 3);
      assert.deepEqual(groupFaces.map((f) => f.passed).sort(), [false, true, true]);
      for (const face of [sharpFace, blurred, tiny, ...groupFaces]) {
        assert.deepEqual(face.reasons, expectedReasons(face.quality, rules), JSON.stringify(face));
        assert.equal(face.passed, face.reasons.length === 0);
      }
    });

    it('POST answers bad images with 400 and calls without the token with 401', async () => {
      const garbage = await call(port, 'POST', '/faces/quality', Buffer.from('this is not a picture'));
      assert.equal(garbage.status, 400);
      assert.equal(typeof garbage.body.error, 'string');
      const empty = await call(port, 'POST', '/faces/quality', Buffer.alloc(0));
      assert.equal(empty.status, 400);
      assert.match(String(empty.body.error), /image/);
      const refused = await call(port, 'POST', '/faces/quality', sam, { Authorization: 'Bearer wrong' });
      assert.equal(refused.status, 401);
      const huge = await call(port, 'POST', '/faces/quality', Buffer.alloc(6 * 1024 * 1024, 1));
      assert.equal(huge.status, 413);
    });
  });
});

describe('examples/Recognition HTTP API.json as imported, before a token is set', function () {
  this.timeout(180_000);
  let dir = '';
  let demo: DemoProcess;
  let port = 0;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-api-closed-'));
    await copyFile(
      path.join(PROJECT_ROOT, 'examples', 'Recognition HTTP API.json'),
      path.join(dir, 'flows.json'),
    );
    demo = new DemoProcess(
      dir,
      { editor: await freePort(), live: await freePort(), mqtt: await freePort() },
      // Empty: not set, whatever the environment of the test run holds.
      { FACEFLOW_API_TOKEN: '' },
    );
    await demo.waitForOutput('Started flows', 120_000);
    port = demo.ports.editor;
  });

  after(async () => {
    await demo?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers every endpoint 503 with how to open it, and enrols nobody: an anonymous "Amy" is refused', async () => {
    const stranger = await readFile(path.join(dir, 'photos', 'Sam', 'sam-1.jpg'));
    const calls: [string, string, Buffer | undefined][] = [
      ['POST', '/faces/enroll?name=Amy', stranger],
      ['POST', '/faces/recognize', stranger],
      ['POST', '/faces/quality', stranger],
      ['GET', '/faces', undefined],
      ['GET', '/faces/quality', undefined],
      ['DELETE', '/faces/Amy', undefined],
    ];
    for (const [method, route, body] of calls) {
      for (const authorization of [undefined, 'Bearer anything']) {
        const reply = await httpRequest(`http://127.0.0.1:${port}${route}`, {
          method,
          body,
          headers: {
            ...(authorization ? { Authorization: authorization } : {}),
            ...(body ? { 'Content-Type': 'image/jpeg', 'Content-Length': body.length } : {}),
          },
        });
        assert.equal(reply.status, 503, `${method} ${route}: ${reply.text}`);
        assert.match(String(parseBody(reply.text).error), /set the environment variable FACEFLOW_API_TOKEN/);
      }
    }
    // Spelt the other ways Express still routes to the flow: upper case, and a full URL as sent to a proxy.
    for (const target of ['/FACES/Enroll?name=Amy', `http://127.0.0.1:${port}/faces/enroll?name=Amy`]) {
      const reply = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: target,
            headers: { 'Content-Type': 'image/jpeg', 'Content-Length': stranger.length },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        req.on('error', reject);
        req.end(stranger);
      });
      // The guard's answer, not the flow's fallback: refused before the body was read.
      assert.equal(reply.status, 503, `${target}: ${reply.text}`);
      assert.match(String(parseBody(reply.text).error), /set the environment variable FACEFLOW_API_TOKEN/);
    }
    // Nothing reached the gallery: no file, or none that knows Amy.
    const gallery = path.join(dir, 'faceflow-api.fgal');
    assert.ok(!existsSync(gallery) || !(await readFile(gallery)).includes('Amy'), 'Amy was enrolled');
    assert.match(demo.log, /answers 503 until FACEFLOW_API_TOKEN is set/);
  });
  it("opens once a token is set in the tab's environment variables and deployed: 401 without it, 200 with it", async () => {
    const flows = JSON.parse(await readFile(path.join(dir, 'flows.json'), 'utf8')) as Record<
      string,
      unknown
    >[];
    const tab = flows.find((n) => n.type === 'tab') as Record<string, unknown>;
    tab.env = [{ name: 'FACEFLOW_API_TOKEN', value: 'tab-token-51c2', type: 'str' }];
    const since = demo.mark();
    const body = JSON.stringify(flows);
    const deployed = await httpRequest(`http://127.0.0.1:${port}/flows`, {
      method: 'POST',
      body,
      headers: {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
        'Node-RED-Deployment-Type': 'full',
      },
    });
    assert.ok(deployed.status === 200 || deployed.status === 204, `${deployed.status} ${deployed.text}`);
    await demo.waitForOutput('Started flows', 60_000, since);
    const anonymous = await httpRequest(`http://127.0.0.1:${port}/faces`);
    assert.equal(anonymous.status, 401, anonymous.text);
    const allowed = await httpRequest(`http://127.0.0.1:${port}/faces`, {
      headers: { Authorization: 'Bearer tab-token-51c2' },
    });
    assert.equal(allowed.status, 200, allowed.text);
  });
});

describe('examples/Recognition HTTP API.json with its api guard node deleted', function () {
  this.timeout(180_000);
  let dir = '';
  let demo: DemoProcess;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-api-unguarded-'));
    const flow = JSON.parse(
      await readFile(path.join(PROJECT_ROOT, 'examples', 'Recognition HTTP API.json'), 'utf8'),
    ) as { type: string }[];
    await writeFile(
      path.join(dir, 'flows.json'),
      JSON.stringify(flow.filter((n) => n.type !== 'faceflow-api-guard')),
    );
    demo = new DemoProcess(
      dir,
      { editor: await freePort(), live: await freePort(), mqtt: await freePort() },
      { FACEFLOW_API_TOKEN: TOKEN },
    );
    await demo.waitForOutput('Started flows', 120_000);
  });

  after(async () => {
    await demo?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses every call, even with the token, rather than serve without its checks', async () => {
    const stranger = await readFile(path.join(dir, 'photos', 'Sam', 'sam-1.jpg'));
    const enroll = await call(demo.ports.editor, 'POST', '/faces/enroll?name=Amy', stranger);
    assert.equal(enroll.status, 503, JSON.stringify(enroll.body));
    assert.match(String(enroll.body.error), /api guard node .* is missing or disabled/);
    const list = await call(demo.ports.editor, 'GET', '/faces');
    assert.equal(list.status, 503, JSON.stringify(list.body));
  });
});
