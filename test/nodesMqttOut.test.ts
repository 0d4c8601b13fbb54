import assert from 'node:assert/strict';
import * as path from 'node:path';

import { subscriber, TestBroker } from './helpers/mqttBroker';
import { PROJECT_ROOT } from './helpers/shared';

/* eslint-disable @typescript-eslint/no-require-imports */
const helper = require('node-red-node-test-helper');
const mqttOutNode = require(path.join(PROJECT_ROOT, 'dist', 'nodes', 'faceflow-mqtt-out.js'));
const coreMqtt = require(
  path.join(PROJECT_ROOT, 'node_modules', '@node-red', 'nodes', 'core', 'network', '10-mqtt.js'),
);
const catchNode = require(
  path.join(PROJECT_ROOT, 'node_modules', '@node-red', 'nodes', 'core', 'common', '25-catch.js'),
);
/* eslint-enable @typescript-eslint/no-require-imports */

helper.init(require.resolve('node-red'));

interface StatusCall {
  fill?: string;
  text?: string;
}

async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const onTab = (nodes: Record<string, unknown>[]) => [
  { id: 'tab1', type: 'tab', label: 'test' },
  ...nodes.map((n) => ({ z: 'tab1', ...n })),
];

describe('node: faceflow-mqtt-out (real Node-RED runtime, real aedes broker)', function () {
  this.timeout(60_000);
  let broker: TestBroker;
  const statuses: StatusCall[] = [];

  before((done) => {
    helper.startServer(done);
  });
  after((done) => {
    helper.stopServer(done);
  });
  beforeEach(async () => {
    broker = await TestBroker.start();
    statuses.length = 0;
  });
  afterEach(async () => {
    await helper.unload();
    await broker.stop().catch(() => undefined);
  });

  async function load(settings: Record<string, unknown> = {}, credentials: Record<string, string> = {}) {
    await helper.load(
      [mqttOutNode, catchNode],
      onTab([
        {
          id: 'pub',
          type: 'faceflow-mqtt-out',
          url: broker.url,
          prefix: 'home',
          camera: 'door',
          ...settings,
        },
        { id: 'c1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper' },
      ]),
      { pub: credentials },
    );
    const node = helper.getNode('pub');
    const original = node.status.bind(node);
    node.status = (s: StatusCall) => {
      statuses.push(s);
      return original(s);
    };
    return node;
  }

  it('publishes messages as given (objects as JSON, retain kept) and a retained online, then offline on close', async () => {
    const sub = await subscriber(broker.url, 'home/#');
    const node = await load();
    await until('online', () => sub.got.some((m) => m.topic === 'home/door/status' && m.text === 'online'));
    node.receive({ topic: 'home/door/recognized', payload: { name: 'alice', trackId: 3 } });
    node.receive({ topic: 'home/person/alice', payload: { camera: 'door', ts: 1 }, retain: true });
    node.receive({ topic: 'home/door/unknown', payload: 'plain text' });
    await until('three messages', () => sub.got.filter((m) => m.topic !== 'home/door/status').length === 3);
    const got = sub.got.filter((m) => m.topic !== 'home/door/status');
    assert.deepEqual(
      got.map((m) => [m.topic, m.text, m.qos]),
      [
        ['home/door/recognized', '{"name":"alice","trackId":3}', 1],
        ['home/person/alice', '{"camera":"door","ts":1}', 1],
        ['home/door/unknown', 'plain text', 1],
      ],
    );
    // Retained: a late subscriber still gets the last sighting.
    const late = await subscriber(broker.url, 'home/person/#');
    await until('retained sighting', () => late.got.length === 1);
    assert.equal(late.got[0].retain, true);
    await until('green status', () =>
      statuses.some((s) => s.fill === 'green' && /3 sent/.test(s.text ?? '')),
    );

    await helper.unload();
    await until('offline', () => sub.got.some((m) => m.topic === 'home/door/status' && m.text === 'offline'));
    await Promise.all([sub.client.endAsync(), late.client.endAsync()]);
  });

  it('keeps events while the broker is down and delivers all of them, in order, once it is back', async () => {
    const node = await load({ queueLimit: '100' });
    await until('connected', () => statuses.some((s) => s.fill === 'green'));
    await broker.stop();
    await until('reconnecting status', () => statuses.some((s) => s.fill === 'yellow'));
    for (let i = 0; i < 30; i++) node.receive({ topic: 'home/door/recognized', payload: { seq: i } });
    await until('30 queued shown', () => statuses.some((s) => /reconnecting, 30 queued/.test(s.text ?? '')));

    await broker.restart();
    // A fresh broker has no subscriptions: subscribe before the node reconnects (its period is 2 s).
    const sub = await subscriber(broker.url, 'home/door/recognized');
    await until('all 30 events', () => sub.got.length === 30, 20_000);
    assert.deepEqual(
      sub.got.map((m) => (JSON.parse(m.text) as { seq: number }).seq),
      Array.from({ length: 30 }, (_, i) => i),
    );
    await until('connected again', () => statuses.slice(-1)[0]?.fill === 'green');
    await sub.client.endAsync();
  });

  it('drops the oldest beyond its queue and says how many', async () => {
    const node = await load({ queueLimit: '5' });
    await until('connected', () => statuses.some((s) => s.fill === 'green'));
    await broker.stop();
    await until('reconnecting status', () => statuses.some((s) => s.fill === 'yellow'));
    for (let i = 0; i < 12; i++) node.receive({ topic: 'home/door/unknown', payload: { seq: i } });
    await until('7 dropped shown', () => statuses.some((s) => /5 queued, 7 dropped/.test(s.text ?? '')));
    await broker.restart();
    const sub = await subscriber(broker.url, 'home/door/unknown');
    await until('the newest 5', () => sub.got.length === 5, 20_000);
    assert.deepEqual(
      sub.got.map((m) => (JSON.parse(m.text) as { seq: number }).seq),
      [7, 8, 9, 10, 11],
    );
    await sub.client.endAsync();
  });

  it('refuses a message without a usable topic through Catch, and keeps going', async () => {
    const sub = await subscriber(broker.url, 'home/#');
    const node = await load();
    const caught: { error: { message: string } }[] = [];
    helper.getNode('caught').on('input', (m: { error: { message: string } }) => caught.push(m));
    node.receive({ payload: { name: 'x' } });
    node.receive({ topic: 'home/+/recognized', payload: {} });
    node.receive({ topic: 'home/door/recognized', payload: { ok: true } });
    await until('two errors', () => caught.length === 2);
    assert.match(caught[0].error.message, /msg\.topic must name the MQTT topic/);
    assert.match(caught[1].error.message, /cannot publish to topic "home\/\+\/recognized"/);
    await until('the good one', () => sub.got.some((m) => m.topic === 'home/door/recognized'));
    await sub.client.endAsync();
  });

  it('refuses a bad broker URL for every message, and never shows the password', async () => {
    const node = await load({ url: 'http://nowhere' }, { user: 'me', password: 'hunter2-secret' });
    const caught = new Promise<{ error: { message: string } }>((resolve) =>
      helper.getNode('caught').once('input', resolve),
    );
    node.receive({ topic: 'home/door/recognized', payload: {} });
    const message = (await caught).error.message;
    assert.match(message, /url|broker/i);
    assert.doesNotMatch(message, /hunter2/);
    await helper.unload();
    statuses.length = 0;
    // Refused credentials: the broker says no, the status says why, without the password.
    await broker.stop();
    broker = await TestBroker.start(0, {
      authenticate: (_client, _user, _password, callback) => callback(null, false),
    });
    await load({}, { user: 'me', password: 'hunter2-secret' });
    await until('a problem shown', () =>
      statuses.some((s) => s.fill === 'yellow' && /reconnecting/.test(s.text ?? '')),
    );
    for (const s of statuses) assert.doesNotMatch(JSON.stringify(s), /hunter2/);
  });

  it('warns once that the broker refuses it, not at every retry, and keeps retrying', async () => {
    await broker.stop();
    let attempts = 0;
    broker = await TestBroker.start(0, {
      authenticate: (_client, _user, _password, callback) => {
        attempts++;
        callback(null, false);
      },
    });
    const node = await load({}, { user: 'me', password: 'hunter2-secret' });
    const warnings: string[] = [];
    const warn = node.warn.bind(node);
    node.warn = (text: string) => {
      warnings.push(text);
      return warn(text);
    };
    await until('a retry after the refusal', () => attempts >= 2);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /broker unreachable, retrying: .*(Not authorized|Bad user)/i);
    assert.doesNotMatch(warnings[0], /hunter2/);
    assert.ok(statuses.some((s) => s.fill === 'yellow' && /reconnecting/.test(s.text ?? '')));
  });

  it("publishes through Node-RED's own mqtt-broker configuration, its user and password entered once there", async () => {
    await broker.stop();
    const seen: string[] = [];
    broker = await TestBroker.start(0, {
      authenticate: (_client, user, password, callback) => {
        seen.push(`${user}:${String(password)}`);
        callback(null, user === 'camera' && String(password) === 'in-the-broker-node');
      },
    });
    const port = Number(new URL(broker.url).port);
    await helper.load(
      [mqttOutNode, coreMqtt, catchNode],
      onTab([
        {
          id: 'b1',
          type: 'mqtt-broker',
          name: 'home broker',
          broker: '127.0.0.1',
          port: String(port),
          protocolVersion: '4',
        },
        // No URL of its own: a broker chosen wins.
        { id: 'pub', type: 'faceflow-mqtt-out', broker: 'b1', url: '', prefix: 'home', camera: 'door' },
      ]),
      { b1: { user: 'camera', password: 'in-the-broker-node' } },
    );
    const sub = await subscriber(broker.url, 'home/#', {
      username: 'camera',
      password: 'in-the-broker-node',
    });
    helper.getNode('pub').receive({ topic: 'home/door/recognized', payload: { name: 'alice' } });
    await until('the event', () => sub.got.some((m) => m.topic === 'home/door/recognized'));
    assert.ok(seen.includes('camera:in-the-broker-node'), seen.join());
    await sub.client.endAsync();
  });

  it('says so when the chosen broker configuration is missing', async () => {
    await helper.load(
      [mqttOutNode, coreMqtt, catchNode],
      onTab([{ id: 'pub', type: 'faceflow-mqtt-out', broker: 'gone', url: '', prefix: 'home' }]),
    );
    const log = helper.log();
    const caught: string[] = [];
    helper.getNode('pub').receive({ topic: 'home/x', payload: 1 });
    await new Promise((r) => setTimeout(r, 200));
    const errors = log.args
      .filter((a: [{ level: number; id?: string }]) => a[0].level === log.ERROR && a[0].id === 'pub')
      .map((a: [{ msg: unknown }]) => String(a[0].msg));
    caught.push(...errors);
    assert.ok(
      caught.some((m) => /broker configuration is missing/.test(m)),
      caught.join('\n'),
    );
  });
});
