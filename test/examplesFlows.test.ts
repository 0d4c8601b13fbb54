import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';

import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

/* eslint-disable @typescript-eslint/no-require-imports */
const helper = require('node-red-node-test-helper');
const core = (file: string) =>
  require(path.join(PROJECT_ROOT, 'node_modules', '@node-red', 'nodes', 'core', file));
const dashboardNode = (file: string) =>
  require(path.join(PROJECT_ROOT, 'node_modules', '@flowfuse', 'node-red-dashboard', 'nodes', `${file}.js`));
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
    core('common/90-comment.js'),
    core('function/10-switch.js'),
    core('function/10-function.js'),
    core('network/10-mqtt.js'),
    core('network/21-httpin.js'),
    core('network/21-httprequest.js'),
    core('storage/10-file.js'),
    core('function/15-change.js'),
    // FlowFuse Dashboard 2.0, which the "Name faces on a dashboard" example is for.
    ...['config/ui_base', 'config/ui_page', 'config/ui_group', 'config/ui_theme']
      .concat(['widgets/ui_template', 'widgets/ui_notification'])
      .map(dashboardNode),
  ];
}

let galleries = 0;

/**
 * An example as the test runs it: cameras not started (no network), a new gallery file in a temp
 * folder, no broker; `changes` then sets properties of single nodes by id.
 */
function forTest(
  flow: FlowNode[],
  dir: string,
  changes: Record<string, Record<string, unknown>> = {},
): FlowNode[] {
  const gallery = path.join(dir, `gallery-${++galleries}.fgal`);
  return flow.map((n) => {
    let out = n;
    if (n.type === 'faceflow-rtsp-in') out = { ...n, autostart: false };
    if (n.type === 'faceflow-gallery') out = { ...n, path: gallery };
    if (n.type === 'faceflow-mjpeg-out') out = { ...n, port: '0' };
    if (n.type === 'mqtt-broker') out = { ...n, autoConnect: false };
    return { ...out, ...changes[n.id] };
  });
}

async function example(name: string): Promise<FlowNode[]> {
  return JSON.parse(await readFile(path.join(EXAMPLES, `${name}.json`), 'utf8')) as FlowNode[];
}

/** Every message a node receives from now on. */
function received<M>(id: string): M[] {
  const got: M[] = [];
  helper.getNode(id).on('input', (m: M) => got.push(m));
  return got;
}

interface Answer<P = Record<string, unknown>> {
  topic: string;
  payload: P;
  error?: { message: string };
}

/**
 * bbt's face photos as a door camera shows its visitors: each photo of a person held for 3 frames (they pause,
 * then turn), then an empty doorway for 31 frames, long enough for the track node to end their track.
 */
async function cameraVisits(people: string[], dir: string): Promise<string[]> {
  const faces = shared('bbt', 'faces');
  const empty = path.join(dir, 'empty-doorway.jpg');
  await sharp({ create: { width: 160, height: 160, channels: 3, background: { r: 90, g: 90, b: 90 } } })
    .jpeg()
    .toFile(empty);
  const frames: string[] = [];
  for (const person of people) {
    for (const file of (await readdir(path.join(faces, person))).sort())
      frames.push(...Array<string>(3).fill(path.join(faces, person, file)));
    frames.push(...Array<string>(31).fill(empty));
  }
  return frames;
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

  it('Enrol a folder of photos: one folder per person becomes one person each; a folder outside is refused', async () => {
    // The photos folder holds the shared people's folders (copies), and a link that leads out of it.
    const photos = path.join(dir, 'photos-enrol');
    await cp(shared('face_recognition_examples', 'knn', 'train'), photos, { recursive: true });
    await symlink(shared('bbt', 'faces', 'raj'), path.join(photos, 'raj'));
    await helper.load(
      await allNodes(),
      forTest(await example('Enrol a folder of photos'), dir, { ffe_gallery: { imageDir: photos } }),
    );
    const answers = received<Answer>('ffe_answers');
    const errors = received<Answer>('ffe_errors');

    helper.getNode('ffe_enroll_all').receive({});
    await until(() => answers.length === 1, 'the enrolment answer', 60_000);
    const result = answers[0].payload as {
      people: { name: string; enrolled: number; refused: number }[];
      enrolled: { source: string; name: string }[];
      refused: { source: string; problem: string }[];
    };
    assert.equal(answers[0].error, undefined, answers[0].error?.message);
    const people = ['alex_lacamoire', 'biden', 'kit_harington', 'obama', 'rose_leslie'];
    assert.deepEqual(
      result.people.map((p) => p.name),
      people,
    );
    assert.ok(
      result.people.every((p) => p.enrolled >= 1),
      JSON.stringify(result.people),
    );
    assert.ok(
      result.enrolled.some((e) => e.source === path.join('biden', 'biden.jpg') && e.name === 'biden'),
    );
    // The link to raj's photos outside the photos folder is reported, and none of them was read.
    assert.deepEqual(
      result.refused.filter((r) => r.problem === 'outside-folder').map((r) => r.source),
      ['raj'],
    );
    assert.equal(errors.length, 0);

    helper.getNode('ffe_list').receive({});
    await until(() => answers.length === 2, 'the list answer');
    const listed = answers[1].payload as { total: number; items: { name: string; embeddings: number }[] };
    assert.deepEqual(
      listed.items.map((p) => p.name),
      people,
    );

    // A folder from a message that points out of the photos folder: an answer with msg.error, and Catch.
    helper.getNode('ffe_match').receive({ topic: 'enroll', payload: { folder: '../' } });
    await until(() => errors.length === 1, 'the refusal through Catch');
    assert.match(errors[0].error?.message ?? '', /outside the gallery's photos folder/);
    assert.match(answers[2].error?.message ?? '', /outside the gallery's photos folder/);
  });

  it("Live view in the browser: a real clip's frames are served as JPEGs on the MJPEG URL, faces found", async () => {
    const port = await freePort();
    await helper.load(
      await allNodes(),
      forTest(await example('Live view in the browser'), dir, {
        ffl_camera: { file: shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4') },
        ffl_live: { port: String(port) },
      }),
    );
    const frames = received<{ faces?: { identity?: { name: string } }[] }>('ffl_live');
    helper.getNode('ffl_camera').receive({ topic: 'start' });
    await until(() => frames.some((m) => (m.faces ?? []).length > 0), 'a frame with a face at the live view');
    const jpeg = await firstJpeg(port, '/stream.mjpg');
    const meta = await sharp(jpeg).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.ok((meta.width ?? 0) >= 320, `a full frame, got ${meta.width}x${meta.height}`);
    // Nobody is enrolled, so the singer is drawn as Unknown.
    const named = frames.flatMap((m) => m.faces ?? []).map((f) => f.identity?.name);
    assert.ok(named.includes('Unknown'), JSON.stringify(named.slice(0, 5)));
  });

  it('Cluster unknown faces: faces nobody enrolled are collected, clustered, a cluster named, then recognised', async () => {
    await helper.load(await allNodes(), forTest(await example('Cluster unknown faces'), dir));
    const answers = received<Answer>('ffc_answers');
    const frames = received<{ topic: string; faces?: { identity?: { name: string } }[] }>('ffc_route');
    const faces = shared('bbt', 'faces');
    const visits = await cameraVisits((await readdir(faces)).sort(), dir);
    // The people as a camera would show them, one after another; the track node embeds each at its track's pace.
    const show = async () => {
      const before = frames.length;
      for (const photo of visits) helper.getNode('ffc_detect').receive({ payload: photo, topic: 'door' });
      await until(() => frames.length === before + visits.length, 'every frame through match', 120_000);
      return frames.slice(before);
    };
    await show();

    helper.getNode('ffc_unknowns').receive({});
    await until(() => answers.length === 1, 'the unknowns answer');
    const pool = answers[0].payload as { total: number };
    assert.ok(pool.total >= 20, `unknown faces collected: ${pool.total}`);

    helper.getNode('ffc_cluster').receive({});
    await until(() => answers.length === 2, 'the cluster answer');
    const clusters = answers[1].payload as {
      clusters: { id: number; size: number; members: number[]; sheet?: string }[];
    };
    assert.ok(clusters.clusters.length >= 3, JSON.stringify(clusters.clusters.map((c) => c.size)));
    const first = clusters.clusters[0];
    assert.ok(first.size >= 3);
    const sheet = await sharp(Buffer.from(first.sheet ?? '', 'base64')).metadata();
    assert.equal(sheet.format, 'jpeg', 'a contact sheet per cluster');

    helper.getNode('ffc_name').receive({});
    await until(() => answers.length === 3, 'the name-cluster answer');
    assert.equal(answers[2].error, undefined, answers[2].error?.message);
    assert.deepEqual(answers[2].payload, {
      name: 'Ann',
      cluster: 0,
      enrolled: first.size,
      embeddingIds: (answers[2].payload as { embeddingIds: number[] }).embeddingIds,
      missing: 0,
    });
    helper.getNode('ffc_list').receive({});
    await until(() => answers.length === 4, 'the list answer');
    assert.deepEqual(
      (answers[3].payload as { items: { name: string; embeddings: number }[] }).items.map((p) => [
        p.name,
        p.embeddings,
      ]),
      [['Ann', first.size]],
    );

    // The camera now names that person.
    const again = await show();
    const names = again.flatMap((m) => m.faces ?? []).map((f) => f.identity?.name);
    assert.ok(names.filter((n) => n === 'Ann').length >= 3, JSON.stringify(names));
  });

  it('Name faces on a dashboard: the page lists unknown faces with who they look like; This is, Not X and Ignore act', async () => {
    const flow = forTest(await example('Name faces on a dashboard'), dir, {
      ffd_every: { once: false, repeat: '' },
    });
    await helper.load(await allNodes(), flow);
    const lists = received<Answer<{ faces: { id: number; nearest?: { name: string } }[] }>>('ffd_faces');
    const told = received<{ payload: string }>('ffd_notify');
    const match = helper.getNode('ffd_match');
    const faces = shared('bbt', 'faces');
    const enrolled = received<Answer>('ffd_route');
    match.receive({
      topic: 'enroll',
      payload: {
        name: 'sheldon',
        image: path.join(faces, 'sheldon', (await readdir(path.join(faces, 'sheldon')))[0]),
      },
    });
    await until(() => enrolled.length === 1, 'the enrolment');
    assert.equal(enrolled[0].error, undefined, enrolled[0].error?.message);
    const frames = received<unknown>('ffd_route');
    const visits = await cameraVisits(['amy', 'penny', 'raj'], dir);
    for (const photo of visits) helper.getNode('ffd_detect').receive({ payload: photo, topic: 'door' });
    await until(() => frames.length === visits.length, 'every frame through match', 120_000);

    const list = async () => {
      const before = lists.length;
      helper.getNode('ffd_ask').receive({});
      await until(() => lists.length === before + 1, 'the list of unknown faces');
      return lists[before].payload.faces;
    };
    const first = await list();
    assert.ok(first.length >= 3, `unknown faces listed: ${first.length}`);
    assert.ok(
      first.every((f) => f.nearest?.name === 'sheldon'),
      'each offered as looking like the only person',
    );
    const [a, b, c] = first;

    // What the page's buttons send (the browser test clicks them).
    const press = async (topic: string, payload: unknown) => {
      const before = [told.length, lists.length];
      match.receive({ topic, payload, dashboard: 'action' });
      await until(
        () => told.length === before[0] + 1 && lists.length === before[1] + 1,
        `the answer to ${topic}`,
      );
      return { told: told[before[0]].payload, faces: lists[before[1]].payload.faces };
    };
    const notX = await press('reject', { name: 'sheldon', unknownId: a.id });
    assert.equal(notX.told, 'Noted: this face is not sheldon.');
    assert.equal(notX.faces.find((f) => f.id === a.id)?.nearest, undefined, 'no longer offered as sheldon');
    // Sheldon himself is still recognised: a rejection takes away only faces that look more like it.
    const named = received<{ faces?: { identity?: { name: string } }[] }>('ffd_route');
    const sheldon = (await readdir(path.join(faces, 'sheldon'))).sort();
    // His face gets a track on its 3rd frame (the track node's Confirm after), and its name then.
    for (let i = 0; i < 3; i++)
      helper
        .getNode('ffd_detect')
        .receive({ payload: path.join(faces, 'sheldon', sheldon[1]), topic: 'door' });
    await until(() => named.length === 3, 'the frames through match');
    const names = named[2].faces?.map((f) => f.identity?.name);
    assert.ok(names?.includes('sheldon'), JSON.stringify(names));

    const thisIs = await press('name-cluster', { members: [b.id], name: 'Visitor' });
    assert.equal(thisIs.told, 'Enrolled as Visitor.');
    assert.equal(
      thisIs.faces.some((f) => f.id === b.id),
      false,
      'a named face leaves the list',
    );

    const ignore = await press('unknowns', { delete: [c.id] });
    assert.equal(ignore.told, 'Ignored.');
    assert.equal(
      ignore.faces.some((f) => f.id === c.id),
      false,
    );

    const refused = await press('reject', { name: 'nobody', unknownId: a.id });
    assert.equal(refused.told, "Not done: no identity named 'nobody'");
  });

  it('Home Assistant presence: a recognised person gets one retained discovery config, then their sighting', async () => {
    const photos = path.join(dir, 'photos-ha');
    await mkdir(path.join(photos, 'biden'), { recursive: true });
    await cp(
      shared('face_recognition_examples', 'knn', 'train', 'biden', 'biden.jpg'),
      path.join(photos, 'biden', 'biden.jpg'),
    );
    await helper.load(
      await allNodes(),
      forTest(await example('Home Assistant presence'), dir, { ffh_gallery: { imageDir: photos } }),
    );
    const answers = received<Answer>('ffh_answers');
    const published = received<{ topic: string; payload: Record<string, unknown>; retain?: boolean }>(
      'ffh_publish',
    );
    helper.getNode('ffh_enroll').receive({});
    await until(() => answers.length === 1, 'the enrolment answer');
    assert.equal(answers[0].error, undefined, answers[0].error?.message);

    const photo = shared('face_recognition_examples', 'knn', 'train', 'biden', 'biden2.jpg');
    for (let i = 0; i < 6; i++) helper.getNode('ffh_detect').receive({ payload: photo, topic: 'door' });
    await until(() => published.some((m) => m.topic === 'faceflow/person/biden'), 'a last sighting');
    await new Promise((r) => setTimeout(r, 500));
    const config = 'homeassistant/binary_sensor/faceflow_door_biden/config';
    const topics = published.map((m) => m.topic);
    assert.equal(topics.filter((t) => t === config).length, 1, JSON.stringify(topics));
    assert.ok(topics.indexOf(config) < topics.indexOf('faceflow/person/biden'), 'discovery first');
    const discovery = published.find((m) => m.topic === config);
    assert.equal(discovery?.retain, true);
    assert.deepEqual(
      {
        name: discovery?.payload.name,
        device_class: discovery?.payload.device_class,
        state_topic: discovery?.payload.state_topic,
        off_delay: discovery?.payload.off_delay,
      },
      { name: 'biden', device_class: 'presence', state_topic: 'faceflow/person/biden', off_delay: 300 },
    );
    assert.ok(topics.includes('faceflow/door/recognized'));
    assert.ok(published.filter((m) => m.topic === 'faceflow/person/biden').every((m) => m.retain === true));
  });
});

async function until(predicate: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The first JPEG of an MJPEG stream, cut out by its Content-Length; then the connection is closed. */
function firstJpeg(port: number, urlPath: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode}`));
        return;
      }
      let buffer = Buffer.alloc(0);
      res.on('data', (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        const headEnd = buffer.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const length = Number(/content-length:\s*(\d+)/i.exec(buffer.subarray(0, headEnd).toString())?.[1]);
        if (buffer.length < headEnd + 4 + length) return;
        req.destroy();
        resolve(buffer.subarray(headEnd + 4, headEnd + 4 + length));
      });
    });
    req.on('error', reject);
  });
}
