import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { confinedPhotos, PhotoFolderError } from '../src/gallery/photoFolder';
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
  require(nodeFile('faceflow-track')),
  require('@node-red/nodes/core/common/25-catch.js'),
];
/* eslint-enable @typescript-eslint/no-require-imports */

helper.init(require.resolve('node-red'));

const knn = (...parts: string[]) => shared('face_recognition_examples', 'knn', ...parts);

interface Msg {
  topic?: string;
  payload: Record<string, unknown>;
  trackedBy?: string;
  faces?: {
    box: number[];
    trackId?: number;
    tentative?: boolean;
    embedding?: Float32Array;
    identity?: { name: string; similarity: number; topK: unknown[] };
  }[];
  error?: { message: string };
}

const onTab = (nodes: Record<string, unknown>[]) => [
  { id: 'f1', type: 'tab' },
  ...nodes.map((n) => ({ z: 'f1', ...n })),
];

/** Enrols Obama and Biden by command through `match`; `next` resolves with the next message out. */
async function enrolObamaAndBiden(
  match: { receive(msg: unknown): void },
  next: () => Promise<Msg>,
): Promise<void> {
  for (const name of ['obama', 'biden']) {
    const answered = next();
    match.receive({ topic: 'enroll', payload: { name, image: knn('train', name, `${name}.jpg`) } });
    const answer = await answered;
    assert.equal(answer.error, undefined, answer.error?.message);
  }
}

describe('node: faceflow-match (real Node-RED runtime)', function () {
  this.timeout(120_000);
  let dir: string;

  before(function (done) {
    requireSharedData(this);
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-nodes-match-'));
    helper.startServer(done);
  });
  after((done) => {
    rmSync(dir, { recursive: true, force: true });
    helper.stopServer(done);
  });
  afterEach(() => helper.unload());

  it('names Obama and Biden in a detect → match flow after enrolling them by command', async () => {
    await helper.load(
      NODES,
      onTab([
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        { id: 'g1', type: 'faceflow-gallery', models: 'm1', path: path.join(dir, 'people.fgal') },
        { id: 'detect', type: 'faceflow-detect', models: 'm1', wires: [['match']] },
        { id: 'match', type: 'faceflow-match', gallery: 'g1', topK: 2, wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const out = helper.getNode('out');
    const next = () => new Promise<Msg>((resolve) => out.once('input', resolve));
    const match = helper.getNode('match');
    const statuses: { text?: string }[] = [];
    match.on('call:status', (call: { args: [{ text?: string }] }) => statuses.push(call.args[0]));

    await enrolObamaAndBiden(match, next);

    const received = next();
    helper.getNode('detect').receive({ payload: knn('test', 'obama_and_biden.jpg'), topic: 'porch' });
    const msg = await received;
    assert.equal(msg.topic, 'porch');
    const names = (msg.faces ?? []).map((f) => f.identity?.name).sort();
    assert.deepEqual(names, ['Unknown', 'biden', 'obama']);
    for (const f of msg.faces ?? []) {
      assert.ok(f.embedding instanceof Float32Array);
      assert.equal(f.identity?.topK.length, 2);
    }
    assert.ok(
      statuses.some((s) => /^3 faces: /.test(s.text ?? '')),
      JSON.stringify(statuses),
    );
  });

  it('after a track node, embeds each track at its pace and names it by its vote', async () => {
    await helper.load(
      NODES,
      onTab([
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        { id: 'g1', type: 'faceflow-gallery', models: 'm1', path: path.join(dir, 'tracked.fgal') },
        { id: 'detect', type: 'faceflow-detect', models: 'm1', wires: [['track']] },
        { id: 'track', type: 'faceflow-track', wires: [['match']] },
        { id: 'match', type: 'faceflow-match', gallery: 'g1', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const out = helper.getNode('out');
    const next = () => new Promise<Msg>((resolve) => out.once('input', resolve));
    const match = helper.getNode('match');
    await enrolObamaAndBiden(match, next);
    const frames: Msg[] = [];
    for (let i = 0; i < 12; i++) {
      const received = next();
      helper.getNode('detect').receive({ payload: knn('test', 'obama_and_biden.jpg'), topic: 'porch' });
      frames.push(await received);
    }
    assert.equal(frames[0].trackedBy, 'track');
    const embeddedAt: number[] = [];
    frames.forEach((msg, i) => {
      const faces = msg.faces ?? [];
      // Obama and Biden get tracks on the 3rd frame (Confirm after 3); the turned bystander never does.
      const tracked = faces.filter((f) => f.trackId !== undefined);
      assert.equal(tracked.length, i < 2 ? 0 : 2, `frame ${i}`);
      if (i >= 2)
        assert.deepEqual(tracked.map((f) => f.identity?.name).sort(), ['biden', 'obama'], `frame ${i}`);
      for (const f of faces.filter((x) => x.trackId === undefined)) {
        assert.ok(f.tentative, `frame ${i}: an untracked face is tentative`);
        assert.equal(f.identity, undefined, 'a tentative face waits for its track');
        assert.equal(f.embedding, undefined, 'and costs no embedding');
      }
      if (tracked.some((f) => f.embedding)) embeddedAt.push(i);
    });
    // The first frame of each track, 5 frames on; the two agreeing votes settle both tracks for 30 frames.
    assert.deepEqual(embeddedAt, [2, 7]);
  });

  it('reports a frame without faces to Catch nodes', async () => {
    await helper.load(
      NODES,
      onTab([
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        { id: 'g1', type: 'faceflow-gallery', models: 'm1', path: path.join(dir, 'people.fgal') },
        { id: 'match', type: 'faceflow-match', gallery: 'g1', wires: [[]] },
        { id: 'c1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper' },
      ]),
    );
    const caught = new Promise<Msg>((resolve) => helper.getNode('caught').once('input', resolve));
    const frame = { cameraId: 'x', seq: 0, ts: 0, width: 1, height: 1, rgb: Buffer.alloc(3) };
    helper.getNode('match').receive({ payload: frame });
    assert.match((await caught).error?.message ?? '', /msg.faces is missing/);
  });

  /** A detect → match flow whose answers and errors are collected; `match` settings as given. */
  async function matchFlow(
    file: string,
    gallery: Record<string, unknown> = {},
    match: Record<string, unknown> = {},
  ) {
    await helper.load(
      NODES,
      onTab([
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        { id: 'g1', type: 'faceflow-gallery', models: 'm1', path: path.join(dir, file), ...gallery },
        { id: 'detect', type: 'faceflow-detect', models: 'm1', wires: [['match']] },
        { id: 'match', type: 'faceflow-match', gallery: 'g1', wires: [['out']], ...match },
        { id: 'out', type: 'helper' },
        { id: 'c1', type: 'catch', scope: ['match'], uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper' },
      ]),
    );
    const out: Msg[] = [];
    const caught: Msg[] = [];
    helper.getNode('out').on('input', (m: Msg) => out.push(m));
    helper.getNode('caught').on('input', (m: Msg) => caught.push(m));
    /** Sends a command and resolves to its answer. */
    const command = async (topic: string, payload: unknown): Promise<Msg> => {
      const before = out.length;
      helper.getNode('match').receive({ topic, payload });
      await until(() => out.length > before, `the answer to ${topic}`);
      return out[before];
    };
    /** Sends photos as frames and resolves once match has named them all. */
    const frames = async (photos: string[]): Promise<Msg[]> => {
      const before = out.length;
      for (const photo of photos) helper.getNode('detect').receive({ payload: photo, topic: 'porch' });
      await until(() => out.length === before + photos.length, 'every frame through match');
      return out.slice(before);
    };
    return { out, caught, command, frames };
  }

  it('collects the faces nobody is enrolled as, once each, kept over a redeploy', async () => {
    const file = 'collect.fgal';
    let flow = await matchFlow(file, {}, { collect: true });
    const photos = [
      knn('test', 'obama_and_biden.jpg'),
      shared('face_recognition_examples', 'misc', 'two_people.jpg'),
    ];
    const named = await flow.frames(photos);
    const faces = named.flatMap((m) => m.faces ?? []).length;
    assert.ok(faces >= 4, `faces found: ${faces}`);
    let answer = await flow.command('unknowns', { thumbnails: true });
    const first = answer.payload as {
      total: number;
      faces: { id: number; source: string; thumbnail: string }[];
    };
    assert.ok(first.total >= 3 && first.total <= faces, `kept ${first.total} of ${faces}`);
    assert.ok(
      first.faces.every((f) => f.source === 'porch' && /^\/9j\//.test(f.thumbnail)),
      'base64 JPEGs',
    );

    // The same people again: nothing new is kept.
    await flow.frames(photos);
    answer = await flow.command('unknowns', {});
    assert.equal((answer.payload as { total: number }).total, first.total);
    assert.equal((answer.payload as { faces: { thumbnail?: string }[] }).faces[0].thumbnail, undefined);

    // Saved when the flow stops, though the 10 s save had not come yet.
    await helper.unload();
    flow = await matchFlow(file);
    answer = await flow.command('unknowns', {});
    assert.equal((answer.payload as { total: number }).total, first.total);
    answer = await flow.command('unknowns', { clear: true });
    assert.deepEqual(answer.payload, { cleared: first.total });
  });

  it('refuses bad command payloads with a clear msg.error, also through Catch', async () => {
    const flow = await matchFlow('bad-payloads.fgal');
    const cases: [string, unknown, RegExp][] = [
      ['unknowns', { limit: -1 }, /unknowns: payload.limit must be a non-negative integer/],
      ['unknowns', { thumbnails: 'yes' }, /unknowns: payload.thumbnails must be true or false/],
      ['cluster', 'now', /cluster: payload must be an object/],
      ['cluster', { eps: 3 }, /cluster: payload.eps must be a cosine distance within \(0, 2\]/],
      ['cluster', { minPoints: 0 }, /cluster: payload.minPoints must be 1 or more/],
      ['cluster', { sheets: 1 }, /cluster: payload.sheets must be true or false/],
      ['name-cluster', { cluster: 0 }, /name-cluster: payload.name must be a non-empty string/],
      [
        'name-cluster',
        { name: 'Ann' },
        /payload.cluster \(a cluster id from the last cluster answer\) is needed/,
      ],
      ['name-cluster', { cluster: 0, name: 'Ann' }, /send a 'cluster' command first/],
      ['name-cluster', { cluster: 0, name: 'Unknown' }, /'Unknown' is reserved/],
      [
        'name-cluster',
        { members: [], name: 'Ann' },
        /payload.members must be a non-empty array of unknown-face ids/,
      ],
      ['enroll', { folder: 7 }, /enroll: payload.folder must be a non-empty string/],
      ['enroll', { folder: 'people' }, /payload.folder needs the gallery's Photos folder to be set/],
      ['enroll', { folder: 'people', image: 'a.jpg' }, /payload.folder or payload.image\(s\), not both/],
      [
        'enroll',
        { name: 'Ann', images: Array.from({ length: 501 }, () => '/a.jpg') },
        /enroll takes at most 500 images per command, got 501/,
      ],
    ];
    for (const [topic, payload, error] of cases) {
      const before = flow.caught.length;
      const answer = await flow.command(topic, payload);
      assert.match(answer.error?.message ?? '', error, `${topic} ${JSON.stringify(payload)}`);
      await until(() => flow.caught.length > before, 'the Catch node');
      assert.match(flow.caught[before].error?.message ?? '', error);
    }
    // An empty pool clusters into nothing, and then there is no cluster 0 to name.
    const clustered = await flow.command('cluster', {});
    assert.deepEqual((clustered.payload as { clusters: unknown[]; total: number }).clusters, []);
    const named = await flow.command('name-cluster', { cluster: 0, name: 'Ann' });
    assert.match(named.error?.message ?? '', /no cluster 0 in the last cluster answer \(none left to name\)/);
  });

  it('enrols a folder tree only inside the photos folder: links out are reported, not read', async () => {
    const photos = path.join(dir, 'photos-tree');
    mkdirSync(path.join(photos, 'people', 'obama', 'older'), { recursive: true });
    mkdirSync(path.join(photos, 'people', 'biden'), { recursive: true });
    copyFileSync(knn('train', 'obama', 'obama.jpg'), path.join(photos, 'people', 'obama', 'obama.jpg'));
    copyFileSync(
      knn('train', 'obama', 'obama2.jpg'),
      path.join(photos, 'people', 'obama', 'older', 'o2.jpg'),
    );
    copyFileSync(knn('train', 'biden', 'biden.jpg'), path.join(photos, 'people', 'biden', 'biden.jpg'));
    writeFileSync(path.join(photos, 'people', 'biden', 'broken.jpg'), 'not a photo');
    // A photo and a folder inside a person's folder that lead out, and a loop back to the top.
    symlinkSync(knn('train', 'biden', 'biden2.jpg'), path.join(photos, 'people', 'biden', 'b2.jpg'));
    symlinkSync(knn('train', 'kit_harington'), path.join(photos, 'people', 'biden', 'kit'));
    symlinkSync(path.join(photos, 'people', 'obama'), path.join(photos, 'people', 'obama', 'older', 'loop'));
    const flow = await matchFlow('folder.fgal', { imageDir: photos });

    const answer = await flow.command('enroll', { folder: 'people' });
    assert.equal(answer.error, undefined, answer.error?.message);
    const result = answer.payload as {
      folder: string;
      people: { name: string; enrolled: number; refused: number }[];
      enrolled: { source: string; name: string }[];
      refused: { source: string; name?: string; problem: string }[];
    };
    assert.deepEqual(result.people, [
      { name: 'biden', enrolled: 1, refused: 1 },
      { name: 'obama', enrolled: 2, refused: 0 },
    ]);
    assert.deepEqual(result.enrolled.map((e) => [e.name, e.source]).sort(), [
      ['biden', path.join('people', 'biden', 'biden.jpg')],
      ['obama', path.join('people', 'obama', 'obama.jpg')],
      ['obama', path.join('people', 'obama', 'older', 'o2.jpg')],
    ]);
    assert.deepEqual(result.refused.map((r) => [r.source, r.problem]).sort(), [
      [path.join('people', 'biden', 'b2.jpg'), 'outside-folder'],
      [path.join('people', 'biden', 'broken.jpg'), 'unreadable'],
      [path.join('people', 'biden', 'kit'), 'outside-folder'],
    ]);

    // One person's folder under another name; photos enrolled before are refused as duplicates.
    const again = await flow.command('enroll', {
      folder: path.join(photos, 'people', 'obama'),
      name: 'Barack',
    });
    assert.match(again.error?.message ?? '', /nothing enrolled from .*already enrolled/);
    assert.deepEqual(
      (again.payload as { refused: { problem: string }[] }).refused.map((r) => r.problem),
      ['duplicate', 'duplicate'],
    );

    for (const [folder, error] of [
      ['..', /outside the gallery's photos folder/],
      [os.tmpdir(), /outside the gallery's photos folder/],
      ['nobody', /does not exist in the gallery's photos folder/],
      [path.join('people', 'biden', 'biden.jpg'), /is not a folder/],
    ] as const) {
      const refused = await flow.command('enroll', { folder });
      assert.match(refused.error?.message ?? '', error, folder);
    }
    const listed = await flow.command('list', {});
    assert.deepEqual(
      (listed.payload as { items: { name: string; embeddings: number }[] }).items.map((p) => [
        p.name,
        p.embeddings,
      ]),
      [
        ['biden', 1],
        ['obama', 2],
      ],
    );
  });

  it('stops walking a folder with more photos than a command may enrol', async () => {
    const photos = path.join(dir, 'photos-many');
    mkdirSync(path.join(photos, 'ann'), { recursive: true });
    for (let i = 0; i < 4; i++)
      copyFileSync(knn('train', 'biden', 'biden.jpg'), path.join(photos, 'ann', `${i}.jpg`));
    await assert.rejects(
      confinedPhotos(photos, '.', { maxPhotos: 3 }),
      (err: Error) =>
        err instanceof PhotoFolderError && /more than 3 photos; enrol it in parts/.test(err.message),
    );
    const found = await confinedPhotos(photos, 'ann', { person: 'Ann', maxPhotos: 4 });
    assert.deepEqual([...found.people.keys()], ['Ann']);
    assert.equal(found.count, 4);
  });
});

async function until(predicate: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
