import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import sharp from 'sharp';

import type { FaceEvent } from '../src/types';
import { waitForNoLeftovers } from './helpers/processes';
import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

/* eslint-disable @typescript-eslint/no-require-imports */
const helper = require('node-red-node-test-helper');
const ours = (name: string) => require(path.join(PROJECT_ROOT, 'dist', 'nodes', `${name}.js`));
const core = (file: string) =>
  require(path.join(PROJECT_ROOT, 'node_modules', '@node-red', 'nodes', 'core', file));
/* eslint-enable @typescript-eslint/no-require-imports */

helper.init(require.resolve('node-red'));

const CLIP = shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4');
const LIN = shared('face_recognition_examples', 'misc', 'lin-manuel-miranda.png');

interface Received {
  topic: string;
  text: string;
  retain: boolean;
}

async function subscribe(url: string, topic: string): Promise<{ client: MqttClient; got: Received[] }> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  const got: Received[] = [];
  client.on('message', (t, payload, packet) =>
    got.push({ topic: t, text: payload.toString(), retain: packet.retain }),
  );
  await client.subscribeAsync(topic, { qos: 1 });
  return { client, got };
}

async function until(what: string, check: () => boolean, ms = 40_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The nodes the stage flow needs. */
const STAGE_NODES = () => [
  ours('faceflow-models'),
  ours('faceflow-gallery'),
  ours('faceflow-rtsp-in'),
  ours('faceflow-detect'),
  ours('faceflow-track'),
  ours('faceflow-match'),
  ours('faceflow-face-events'),
  core('function/10-switch.js'),
  core('network/10-mqtt.js'),
];

/** Clip → detect → track → match → (frames) face events → core mqtt out, on a broker at `port`. */
function stageFlow(port: number, status: string, galleryFile: string): unknown[] {
  return [
    { id: 'ffm_tab', type: 'tab' },
    { id: 'ffm_models', type: 'faceflow-models', pack: 'default' },
    {
      id: 'ffm_gallery',
      type: 'faceflow-gallery',
      models: 'ffm_models',
      path: galleryFile,
    },
    {
      id: 'ffm_broker',
      type: 'mqtt-broker',
      broker: '127.0.0.1',
      port: String(port),
      clientid: 'faceflow-flow-test',
      autoConnect: true,
      usetls: false,
      protocolVersion: '4',
      keepalive: '60',
      cleansession: true,
      birthTopic: status,
      birthPayload: 'online',
      birthQos: '1',
      birthRetain: 'true',
      closeTopic: status,
      closePayload: 'offline',
      closeQos: '1',
      closeRetain: 'true',
      willTopic: status,
      willPayload: 'offline',
      willQos: '1',
      willRetain: 'true',
    },
    {
      id: 'ffm_camera',
      type: 'faceflow-rtsp-in',
      z: 'ffm_tab',
      source: 'file',
      file: CLIP,
      loop: false,
      realtime: true,
      cameraId: 'stage',
      fps: '5',
      width: '640',
      autostart: false,
      wires: [['ffm_detect'], []],
    },
    {
      id: 'ffm_detect',
      type: 'faceflow-detect',
      z: 'ffm_tab',
      models: 'ffm_models',
      wires: [['ffm_track']],
    },
    {
      // With the default minHits (3) the first frames' faces are named before their track is
      // confirmed, and faceEvents announces such untracked faces at once, without a trackId;
      // one hit makes every face tracked from its first frame, as the payload promises.
      id: 'ffm_track',
      type: 'faceflow-track',
      z: 'ffm_tab',
      minHits: '1',
      wires: [['ffm_match']],
    },
    {
      id: 'ffm_match',
      type: 'faceflow-match',
      z: 'ffm_tab',
      gallery: 'ffm_gallery',
      wires: [['ffm_route']],
    },
    {
      // Gallery answers come out of the same output as frames; only frames go on to events.
      id: 'ffm_route',
      type: 'switch',
      z: 'ffm_tab',
      property: 'topic',
      propertyType: 'msg',
      rules: [{ t: 'eq', v: 'enroll', vt: 'str' }, { t: 'else' }],
      checkall: 'false',
      outputs: 2,
      wires: [['ffm_answers'], ['ffm_events']],
    },
    { id: 'ffm_answers', type: 'helper', z: 'ffm_tab' },
    {
      id: 'ffm_events',
      type: 'faceflow-face-events',
      z: 'ffm_tab',
      prefix: 'faceflow',
      cooldown: '30',
      unknownAfter: '5',
      snapshot: false,
      presence: true,
      wires: [['ffm_publish']],
    },
    {
      id: 'ffm_publish',
      type: 'mqtt out',
      z: 'ffm_tab',
      topic: '',
      qos: '1',
      retain: '',
      broker: 'ffm_broker',
      wires: [],
    },
  ];
}

describe('flow: video clip → faceflow nodes → core mqtt out → a real broker (Node-RED runtime)', function () {
  this.timeout(60_000);
  let dir = '';
  let broker: Aedes | undefined;
  let server: net.Server | undefined;
  let port = 0;
  let started = false;
  const clients: MqttClient[] = [];

  before(async function () {
    requireSharedData(this);
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-mqtt-flow-'));
    broker = await Aedes.createBroker();
    server = net.createServer(broker.handle);
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', () => resolve()));
    port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => helper.startServer(resolve));
    started = true;
  });
  after(async () => {
    if (started) await helper.unload();
    for (const client of clients) await client.endAsync(true);
    if (broker) await new Promise<void>((resolve) => broker?.close(() => resolve()));
    if (server) await new Promise<void>((resolve) => server?.close(() => resolve()));
    if (started) await new Promise<void>((resolve) => helper.stopServer(resolve));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('publishes a recognized event for the enrolled singer, online retained while running and offline once stopped', async () => {
    const url = `mqtt://127.0.0.1:${port}`;
    const live = await subscribe(url, 'faceflow/#');
    clients.push(live.client);
    const status = 'faceflow/stage/status';

    await helper.load(STAGE_NODES(), stageFlow(port, status, path.join(dir, 'people.fgal')));

    const answered = new Promise<{ payload: { enrolled?: unknown[] }; error?: Error }>((resolve) =>
      helper.getNode('ffm_answers').once('input', resolve),
    );
    helper.getNode('ffm_match').receive({ topic: 'enroll', payload: { name: 'lin', image: LIN } });
    const answer = await answered;
    assert.equal(answer.error, undefined, answer.error?.message);
    assert.equal(answer.payload.enrolled?.length, 1);

    await until('the birth message', () => live.got.some((m) => m.topic === status && m.text === 'online'));
    helper.getNode('ffm_camera').receive({ topic: 'start' });

    const recognized = () => live.got.filter((m) => m.topic === 'faceflow/stage/recognized');
    await until('a recognized event', () => recognized().length >= 1);
    const event = JSON.parse(recognized()[0].text) as FaceEvent;
    assert.equal(event.type, 'recognized');
    assert.equal(event.camera, 'stage');
    assert.equal(event.name, 'lin');
    assert.ok(event.similarity > 0.3 && event.similarity <= 1, `similarity ${event.similarity}`);
    assert.ok(Number.isInteger(event.trackId), `trackId ${event.trackId}`);
    assert.equal(event.box.length, 4);
    assert.ok(event.box[2] > event.box[0] && event.box[3] > event.box[1], `box ${event.box}`);
    assert.ok(event.box.every(Number.isInteger) && event.box[2] <= 640, `box ${event.box}`);
    assert.ok(Math.abs(event.ts - Date.now()) < 60_000, `ts ${event.ts}`);
    assert.equal(event.snapshot, undefined);
    await until('the presence message', () => live.got.some((m) => m.topic === 'faceflow/person/lin'));
    const presence = live.got.find((m) => m.topic === 'faceflow/person/lin') as Received;
    assert.deepEqual(JSON.parse(presence.text), { camera: 'stage', ts: event.ts });

    // Someone who subscribes only now still learns that the flow is up, and who was last seen.
    const late = await subscribe(url, 'faceflow/+/status');
    clients.push(late.client);
    await until('the retained online', () => late.got.length >= 1);
    assert.deepEqual(late.got[0], { topic: status, text: 'online', retain: true });

    // Stopping the flow stops ffmpeg and says goodbye on the broker's close message.
    await helper.unload();
    assert.deepEqual(await waitForNoLeftovers(), [], 'no ffmpeg left behind');
    await until('offline after the flow stopped', () =>
      live.got.some((m) => m.topic === status && m.text === 'offline'),
    );
    assert.equal(recognized().length, 1, 'one arrival, one event');
    const afterwards = await subscribe(url, status);
    clients.push(afterwards.client);
    await until('the retained offline', () => afterwards.got.length >= 1);
    assert.deepEqual(afterwards.got[0], { topic: status, text: 'offline', retain: true });
  });
  it('announces a face two enrolled people match equally as ambiguous, never as either, and sets no presence', async () => {
    const url = `mqtt://127.0.0.1:${port}`;
    // The last sighting an earlier test left retained on the broker goes first.
    const cleaner = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
    await cleaner.publishAsync('faceflow/person/lin', '', { retain: true, qos: 1 });
    await cleaner.endAsync();
    const live = await subscribe(url, 'faceflow/#');
    clients.push(live.client);
    const status = 'faceflow/stage/status';
    await helper.load(STAGE_NODES(), stageFlow(port, status, path.join(dir, 'twins.fgal')));

    // The same photo under two names (re-encoded, since a file already enrolled is refused): the clip's
    // singer matches both alike, with a runner-up margin of about 0.
    const copy = path.join(dir, 'lin-again.jpg');
    await sharp(LIN).jpeg({ quality: 95 }).toFile(copy);
    for (const [name, image] of [
      ['lin', LIN],
      ['lin-twin', copy],
    ]) {
      const answered = new Promise<{ payload: { enrolled?: unknown[] }; error?: Error }>((resolve) =>
        helper.getNode('ffm_answers').once('input', resolve),
      );
      helper
        .getNode('ffm_match')
        .receive({ topic: 'enroll', payload: { name, image, allowLookalike: true } });
      const answer = await answered;
      assert.equal(answer.error, undefined, answer.error?.message);
      assert.equal(answer.payload.enrolled?.length, 1, name);
    }
    helper.getNode('ffm_camera').receive({ topic: 'start' });

    const ambiguous = () => live.got.filter((m) => m.topic === 'faceflow/stage/ambiguous');
    await until('an ambiguous event', () => ambiguous().length >= 1);
    const event = JSON.parse(ambiguous()[0].text) as FaceEvent;
    assert.equal(event.type, 'ambiguous');
    assert.equal(event.name, 'Unknown');
    assert.deepEqual(event.candidates?.map((c) => c.name).sort(), ['lin', 'lin-twin']);
    assert.ok(Number.isInteger(event.trackId), `trackId ${event.trackId}`);
    await helper.unload();
    const named = live.got.filter((m) => /\/recognized$|^faceflow\/person\//.test(m.topic));
    assert.deepEqual(named, [], 'neither name was announced, no presence was set');
  });
});
