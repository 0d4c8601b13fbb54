import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';

import { ADMIN_PATH, MAX_UPLOAD_BYTES } from '../nodes/lib/galleryAdmin';
import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';
import { realAuthApp, type RealAuthApp } from './helpers/realAdminAuth';

/* eslint-disable @typescript-eslint/no-require-imports */
const helper = require('node-red-node-test-helper');
const nodeFile = (name: string) => path.join(PROJECT_ROOT, 'dist', 'nodes', `${name}.js`);
const galleryModule = require(nodeFile('faceflow-gallery'));
const NODES = [require(nodeFile('faceflow-models')), galleryModule, require(nodeFile('faceflow-match'))];
/* eslint-enable @typescript-eslint/no-require-imports */

helper.init(require.resolve('node-red'));

const train = (...parts: string[]) => shared('face_recognition_examples', 'knn', 'train', ...parts);
const GROUP_PHOTO = shared('face_recognition_examples', 'knn', 'test', 'obama_and_biden.jpg');
const KEY = 'correct horse battery staple';

interface Person {
  name: string;
  embeddings: number;
  hasThumbnail: boolean;
  meta: Record<string, unknown>;
}

const flowFor = (file: string) => [
  { id: 'f1', type: 'tab' },
  { id: 'm1', z: 'f1', type: 'faceflow-models', pack: 'default' },
  {
    id: 'g1',
    z: 'f1',
    type: 'faceflow-gallery',
    name: 'front door',
    models: 'm1',
    path: file,
    backend: 'exact',
  },
  { id: 'match', z: 'f1', type: 'faceflow-match', gallery: 'g1', wires: [['out']] },
  { id: 'out', z: 'f1', type: 'helper' },
];

const people = (id = 'g1') => `${ADMIN_PATH}/${id}/people`;
const person = (name: string, id = 'g1') => `${people(id)}/${encodeURIComponent(name)}`;

/** supertest gathers an image/jpeg answer as a Buffer only when told how. */
function binary(res: NodeJS.ReadableStream, done: (err: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => done(null, Buffer.concat(chunks)));
}

function upload(name: string, body: Buffer, type = 'image/jpeg') {
  return helper
    .request()
    .post(`${people()}?name=${encodeURIComponent(name)}`)
    .set('Content-Type', type)
    .send(body);
}

describe('node: faceflow-gallery HTTP admin endpoints (real Node-RED runtime)', function () {
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
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-gallery-admin-'));
    file = path.join(dir, 'people.fgal');
  });
  afterEach(async () => {
    await helper.unload();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the deployed galleries, and never shows their key', async () => {
    await helper.load(NODES, flowFor(file), { g1: { key: KEY } });
    const res = await helper.request().get(ADMIN_PATH).expect(200);
    assert.deepEqual(res.body, {
      galleries: [{ id: 'g1', name: 'front door', file, encrypted: true, people: 0, embeddings: 0 }],
    });
    assert.ok(!res.text.includes(KEY));
  });

  it('enrols an uploaded photo, lists it with its thumbnail, renames and deletes it', async () => {
    await helper.load(NODES, flowFor(file));
    const enrolled = await upload('Barack Obama', readFileSync(train('obama', 'obama.jpg'))).expect(201);
    assert.equal(enrolled.body.name, 'Barack Obama');
    assert.equal(enrolled.body.enrolled.length, 1);

    const listed = await helper.request().get(people()).expect(200);
    assert.equal(listed.body.total, 1);
    const [p] = listed.body.items as Person[];
    assert.deepEqual([p.name, p.embeddings, p.hasThumbnail], ['Barack Obama', 1, true]);
    // The node's own command sees what HTTP changed: both go through the same gallery.
    const answered = new Promise<{ payload: { items: Person[] } }>((resolve) =>
      helper.getNode('out').once('input', resolve),
    );
    helper.getNode('match').receive({ topic: 'list', payload: {} });
    assert.deepEqual(
      (await answered).payload.items.map((i) => i.name),
      ['Barack Obama'],
    );

    const thumb = await helper
      .request()
      .get(`${person('Barack Obama')}/thumbnail`)
      .buffer(true)
      .parse(binary)
      .expect(200)
      .expect('Content-Type', /^image\/jpeg/);
    const jpeg = thumb.body as Buffer;
    assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8]);
    const size = await sharp(jpeg).metadata();
    assert.deepEqual([size.format, size.width, size.height], ['jpeg', 112, 112]);
    assert.match(thumb.headers['cache-control'], /no-store/);

    // A second photo adds an embedding and keeps the first photo's thumbnail.
    await upload('Barack Obama', readFileSync(train('obama', 'obama2.jpg'))).expect(201);
    const again = await helper
      .request()
      .get(`${person('Barack Obama')}/thumbnail`)
      .buffer(true)
      .parse(binary)
      .expect(200);
    assert.ok((again.body as Buffer).equals(jpeg));

    const renamed = await helper
      .request()
      .patch(person('Barack Obama'))
      .send({ name: 'Obama / 44' })
      .expect(200);
    assert.deepEqual(renamed.body, { from: 'Barack Obama', to: 'Obama / 44' });
    // The thumbnail moved with the name; the "/" travels %-encoded and comes back whole.
    await helper
      .request()
      .get(`${person('Obama / 44')}/thumbnail`)
      .expect(200);

    const deleted = await helper.request().delete(person('Obama / 44')).expect(200);
    assert.deepEqual(deleted.body, { deleted: 'Obama / 44', embeddings: 2 });
    assert.equal((await helper.request().get(people()).expect(200)).body.total, 0);
    const gone = await helper
      .request()
      .get(`${person('Obama / 44')}/thumbnail`)
      .expect(404);
    assert.match(gone.body.error, /no identity named 'Obama \/ 44'/);
    await helper.request().delete(person('Obama / 44')).expect(404);

    // Every change was saved as the node's commands save theirs: a redeploy reads the same gallery back.
    assert.ok(existsSync(file));
    await helper.unload();
    await helper.load(NODES, flowFor(file));
    assert.equal((await helper.request().get(people()).expect(200)).body.total, 0);
  });

  it('takes the name from a %-encoded header too, and pages the list', async () => {
    await helper.load(NODES, flowFor(file));
    for (const [name, photo] of [
      ['José Biden', train('biden', 'biden.jpg')],
      ['Obama', train('obama', 'obama.jpg')],
    ]) {
      await helper
        .request()
        .post(people())
        .set('Content-Type', 'image/jpeg')
        .set('X-Faceflow-Name', encodeURIComponent(name))
        .send(readFileSync(photo))
        .expect(201);
    }
    const page = await helper.request().get(`${people()}?offset=1&limit=1`).expect(200);
    assert.equal(page.body.total, 2);
    assert.deepEqual(
      (page.body.items as Person[]).map((p) => p.name),
      ['Obama'],
    );
    await helper
      .request()
      .get(`${person('José Biden')}/thumbnail`)
      .expect(200);
    await helper.request().get(`${people()}?limit=-1`).expect(400);
    await helper.request().get(`${people()}?limit=5000`).expect(400);
  });

  it('refuses photos that cannot be enrolled, with the reason', async () => {
    await helper.load(NODES, flowFor(file));
    const blank = await sharp({ create: { width: 300, height: 300, channels: 3, background: '#7a8b9c' } })
      .jpeg()
      .toBuffer();
    const noFace = await upload('x', blank).expect(400);
    assert.match(noFace.body.error, /nothing enrolled for 'x'.*no face found/);
    assert.equal(noFace.body.refused[0].problem, 'no-face');

    const group = await upload('x', readFileSync(GROUP_PHOTO)).expect(400);
    assert.equal(group.body.refused[0].problem, 'several-faces');

    const png = await sharp(readFileSync(train('obama', 'obama.jpg')))
      .resize({ width: 110 })
      .png()
      .toBuffer();
    const small = await upload('x', png, 'image/png').expect(400);
    assert.equal(small.body.refused[0].problem, 'too-small');

    const text = await upload('x', Buffer.from('this is not a photo')).expect(400);
    assert.match(text.body.error, /not a JPEG, PNG or WebP/);
    // An SVG is an image to the decoder, but not a photo this endpoint takes.
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>');
    await upload('x', svg, 'image/svg+xml').expect(415);
    const wrongType = await upload('x', readFileSync(train('obama', 'obama.jpg')), 'text/plain').expect(415);
    assert.match(wrongType.body.error, /Content-Type image\/jpeg/);

    const huge = Buffer.alloc(MAX_UPLOAD_BYTES + 1);
    huge.set([0xff, 0xd8, 0xff]);
    const tooLarge = await upload('x', huge).expect(413);
    assert.match(tooLarge.body.error, /larger than 10 MB/);
    // Without a Content-Length the limit is kept while the body streams in.
    const chunked = helper
      .request()
      .post(`${people()}?name=x`)
      .set('Content-Type', 'image/jpeg')
      .set('Transfer-Encoding', 'chunked');
    for (let sent = 0; sent <= MAX_UPLOAD_BYTES; sent += 1024 * 1024)
      chunked.write(huge.subarray(0, 1024 * 1024));
    const streamed = await chunked.expect(413);
    assert.match(streamed.body.error, /larger than 10 MB/);

    assert.equal((await helper.request().get(people()).expect(200)).body.total, 0);
  });

  it('answers unknown galleries with 404 and bad names with 400, as JSON', async () => {
    await helper.load(NODES, flowFor(file));
    const photo = readFileSync(train('obama', 'obama.jpg'));
    for (const url of [people('nope'), `${person('x', 'nope')}/thumbnail`, people('match')]) {
      const res = await helper.request().get(url).expect(404);
      assert.match(res.body.error, /no deployed gallery/, url);
    }
    await helper.request().delete(person('x', 'nope')).expect(404);

    const badNames = ['Unknown', 'a'.repeat(201), 'line\nbreak', ' '];
    for (const name of badNames) {
      const res = await upload(name, photo).expect(400);
      assert.ok(typeof res.body.error === 'string' && res.body.error.length > 0, name);
      await helper.request().delete(person(name)).expect(400);
    }
    await helper.request().post(people()).set('Content-Type', 'image/jpeg').send(photo).expect(400);
    const malformed = await helper.request().delete(`${people()}/%E0%A4%A`).expect(400);
    assert.equal(typeof malformed.body.error, 'string');
    await helper.request().patch(person('nobody')).send({ name: 'x' }).expect(404);

    await upload('a', photo).expect(201);
    await upload('b', readFileSync(train('biden', 'biden.jpg'))).expect(201);
    await helper.request().patch(person('a')).send({ name: 'b' }).expect(409);
    await helper.request().patch(person('a')).send({ name: 'Unknown' }).expect(400);
    await helper.request().patch(person('a')).send({}).expect(400);
  });

  it('forgets a gallery that a redeploy removed', async () => {
    await helper.load(NODES, flowFor(file));
    await helper.request().get(people()).expect(200);
    await helper.setFlows([{ id: 'f1', type: 'tab' }]);
    assert.deepEqual((await helper.request().get(ADMIN_PATH).expect(200)).body, { galleries: [] });
    await helper.request().get(people()).expect(404);
  });
});

/**
 * node-red-node-test-helper builds the node API without Node-RED's admin API, so its
 * `RED.auth.needsPermission` lets everything through. Here the gallery module is loaded once more into a bare
 * Express app whose `RED.auth` is Node-RED's real one (editor-api's auth: passport bearer tokens and its
 * permission rules), configured with adminAuth and two API tokens.
 */
describe('node: faceflow-gallery HTTP admin endpoints need Node-RED admin permissions', () => {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const request = require('supertest');
  /* eslint-enable @typescript-eslint/no-require-imports */
  let real: RealAuthApp;
  let app: unknown;
  let asked: string[];
  const call = (method: string, url: string) => request(app)[method](url);

  before(async () => {
    real = await realAuthApp([
      { username: 'viewer', permissions: 'read' },
      { username: 'keeper', permissions: 'faceflow-gallery.write' },
      { username: 'admin', permissions: '*' },
    ]);
    app = real.app;
    asked = real.asked;
    const RED = real.RED;
    galleryModule(RED);
    // Loading the module again (a second palette load) must not stack a second set of routes.
    galleryModule(RED);
  });
  after(() => real.close());

  it('asks for the read and the write permission, once', () => {
    assert.deepEqual(asked, ['faceflow-gallery.read', 'faceflow-gallery.write']);
  });

  const reads = [ADMIN_PATH, people(), `${person('x')}/thumbnail`];
  const writes: [string, string][] = [
    ['post', `${people()}?name=x`],
    ['delete', person('x')],
    ['patch', person('x')],
  ];

  it('refuses every endpoint without a token', async () => {
    for (const url of reads) await request(app).get(url).expect(401);
    for (const [method, url] of writes) await call(method, url).expect(401);
  });

  it('lets a read-only user read but not change', async () => {
    const bearer = 'Bearer viewer-token';
    await request(app).get(ADMIN_PATH).set('Authorization', bearer).expect(200, { galleries: [] });
    // Past the permission check, an id that names no deployed gallery is a 404.
    for (const url of reads.slice(1)) await request(app).get(url).set('Authorization', bearer).expect(404);
    for (const [method, url] of writes) {
      await call(method, url).set('Authorization', bearer).set('Content-Type', 'image/jpeg').expect(401);
    }
  });

  it('lets the write permission change, and "*" do everything', async () => {
    for (const token of ['keeper-token', 'admin-token']) {
      for (const [method, url] of writes) {
        await call(method, url).set('Authorization', `Bearer ${token}`).expect(404);
      }
    }
    await request(app).get(people()).set('Authorization', 'Bearer admin-token').expect(404);
    // faceflow-gallery.write does not include reading.
    await request(app).get(people()).set('Authorization', 'Bearer keeper-token').expect(401);
  });
});
