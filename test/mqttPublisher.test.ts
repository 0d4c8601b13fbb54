import assert from 'node:assert/strict';
import { inspect } from 'node:util';

import { type MqttClient } from 'mqtt';
import { filter, firstValueFrom, from, lastValueFrom, Subject, toArray } from 'rxjs';

import { MqttEventPublisher, mqttTopicLevel, publishEvents } from '../src/io/mqttPublisher';
import { UNKNOWN, type FaceEvent } from '../src/types';
import { subscriber, TestBroker, type Received } from './helpers/mqttBroker';

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const event = (seq: number, extra: Partial<FaceEvent> = {}): FaceEvent => ({
  type: 'recognized',
  camera: 'door',
  name: 'ann',
  similarity: 0.71,
  trackId: seq,
  box: [10, 20, 110, 140],
  ts: 1_700_000_000_000 + seq,
  ...extra,
});

const seqsOf = (got: Received[]) =>
  got.filter((m) => m.topic.endsWith('/recognized')).map((m) => (JSON.parse(m.text) as FaceEvent).trackId);

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('io/MqttEventPublisher with a real broker (aedes on loopback)', function () {
  this.timeout(20_000);
  let broker: TestBroker;
  const cleanups: (() => Promise<unknown> | void)[] = [];
  const later = <T extends { stop(): Promise<void> } | MqttClient>(thing: T): T => {
    cleanups.push(() => ('stop' in thing ? thing.stop() : thing.endAsync(true)));
    return thing;
  };

  beforeEach(async () => {
    broker = await TestBroker.start();
  });
  afterEach(async () => {
    for (const clean of cleanups.splice(0).reverse()) await clean();
    await broker.stop();
  });

  it('publishes events as JSON with QoS 1 on <prefix>/<camera>/<type>, passes them on, and the retained presence', async () => {
    const sub = await subscriber(broker.url, 'home/faces/#');
    later(sub.client);
    const events = [
      event(1, { camera: 'front/door+1' }),
      event(2, { type: 'unknown', name: UNKNOWN, camera: 'yard', similarity: 0.2 }),
    ];
    const passed = await lastValueFrom(
      from(events).pipe(
        publishEvents({ url: broker.url, camera: 'front/door', prefix: 'home/faces/', presence: true }),
        toArray(),
      ),
    );
    assert.deepEqual(passed, events, 'every event passes through unchanged');
    // Completing the operator stopped its publisher: offline is the last status.
    await until('the offline status', () => sub.got.some((m) => m.text === 'offline'));

    const byTopic = (topic: string) => sub.got.filter((m) => m.topic === topic);
    const recognized = byTopic('home/faces/front%2Fdoor%2B1/recognized');
    assert.equal(recognized.length, 1, JSON.stringify(sub.got));
    assert.deepEqual(JSON.parse(recognized[0].text), events[0]);
    assert.equal(recognized[0].qos, 1);
    const unknown = byTopic('home/faces/yard/unknown');
    assert.equal(unknown.length, 1);
    assert.deepEqual(JSON.parse(unknown[0].text), events[1]);
    // Presence only for a name, not for Unknown.
    assert.deepEqual(
      sub.got
        .filter((m) => m.topic.startsWith('home/faces/person/'))
        .map((m) => [m.topic, JSON.parse(m.text)]),
      [['home/faces/person/ann', { camera: 'front/door+1', ts: events[0].ts }]],
    );
    assert.deepEqual(
      byTopic('home/faces/front%2Fdoor/status').map((m) => m.text),
      ['online', 'offline'],
    );

    // The last sighting is kept by the broker for whoever asks later.
    const late = await subscriber(broker.url, 'home/faces/person/+');
    later(late.client);
    await until('the retained presence', () => late.got.length === 1);
    assert.equal(late.got[0].retain, true);
    assert.deepEqual(JSON.parse(late.got[0].text), { camera: 'front/door+1', ts: events[0].ts });
  });

  it('keeps online retained for late subscribers, reports status, and leaves offline retained after stop()', async () => {
    const publisher = later(new MqttEventPublisher({ url: broker.url, camera: 'hall' }));
    await firstValueFrom(publisher.connected$.pipe(filter(Boolean)));
    assert.equal(publisher.statusTopic, 'faceflow/hall/status');

    const late = await subscriber(broker.url, 'faceflow/hall/status');
    later(late.client);
    await until('the retained online', () => late.got.length === 1);
    assert.deepEqual(late.got[0], { topic: 'faceflow/hall/status', text: 'online', retain: true, qos: 1 });

    assert.equal(publisher.publishStatus({ fps: 14.987, lagMs: 41.6, faces: 2 }), true);
    await until('the health report', () => late.got.length === 2);
    assert.deepEqual(JSON.parse(late.got[1].text), { fps: 14.99, lagMs: 42, faces: 2 });
    assert.equal(late.got[1].retain, false, 'reports must not replace the retained online/offline');

    await publisher.stop();
    assert.equal(publisher.connected, false);
    await until('offline', () => late.got.length === 3);
    assert.equal(late.got[2].text, 'offline');
    assert.throws(() => publisher.publish(event(1)), /after stop/);
    assert.equal(publisher.publishStatus({ fps: 1, lagMs: 1, faces: 1 }), false);

    const afterStop = await subscriber(broker.url, 'faceflow/hall/status');
    later(afterStop.client);
    await until('the retained offline', () => afterStop.got.length === 1);
    assert.deepEqual(afterStop.got[0], {
      topic: 'faceflow/hall/status',
      text: 'offline',
      retain: true,
      qos: 1,
    });
    // Only one offline: a clean disconnect discards the will instead of sending it as well.
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      late.got.map((m) => m.text),
      ['online', late.got[1].text, 'offline'],
    );
  });

  it('the last will says offline when the connection dies without a goodbye, and online returns on reconnect', async () => {
    const publisher = later(
      new MqttEventPublisher({ url: broker.url, camera: 'gate', reconnectPeriodMs: 100 }),
    );
    await firstValueFrom(publisher.connected$.pipe(filter(Boolean)));
    const sub = await subscriber(broker.url, 'faceflow/gate/status');
    later(sub.client);
    await until('the retained online', () => sub.got.length === 1);

    // A crash as the broker sees it: the socket goes away with no DISCONNECT packet.
    publisher.client.stream.destroy();
    await until('the will and the reconnect', () => sub.got.length === 3);
    assert.deepEqual(
      sub.got.map((m) => m.text),
      ['online', 'offline', 'online'],
    );
    assert.equal(publisher.connected, true);
  });

  it('delivers, in order and none lost, what was published while the broker restarted, in flight or queued', async () => {
    // The first broker stops acknowledging events on cue, so some are in flight when it goes down.
    let holdEvents = false;
    await broker.stop();
    await broker.restart({
      authorizePublish: (_client, packet, done) => {
        if (!(holdEvents && packet.topic.endsWith('/recognized'))) done(null);
      },
    });
    const publisher = later(
      new MqttEventPublisher({ url: broker.url, camera: 'door', reconnectPeriodMs: 100, queueLimit: 20 }),
    );
    const first = await subscriber(broker.url, 'faceflow/door/recognized');
    later(first.client);
    const input = new Subject<FaceEvent>();
    const passed: FaceEvent[] = [];
    input.pipe(publishEvents(publisher)).subscribe((e) => passed.push(e));

    for (const seq of range(0, 3)) input.next(event(seq));
    await until('the first events', () => first.got.length === 3);
    assert.deepEqual(seqsOf(first.got), [0, 1, 2]);

    holdEvents = true;
    for (const seq of range(3, 5)) input.next(event(seq));
    await until('events in flight', () => publisher.inFlight === 2);

    await broker.stop();
    await firstValueFrom(publisher.connected$.pipe(filter((up) => !up)));
    for (const seq of range(5, 20)) input.next(event(seq));
    assert.equal(publisher.queued, 15);
    assert.equal(publisher.dropped, 0);

    // The new broker lets the publisher in only once our subscriber listens: a fresh broker
    // forgets subscriptions, and what reaches it before anyone subscribes reaches nobody.
    let listening = () => {};
    const subscribed = new Promise<void>((resolve) => (listening = resolve));
    await broker.restart({
      authenticate: (client, _user, _password, done) => {
        if (client.id.startsWith('sub-')) done(null, true);
        else void subscribed.then(() => done(null, true));
      },
    });
    const second = await subscriber(broker.url, 'faceflow/door/recognized');
    later(second.client);
    listening();

    await until('every event after the restart', () => second.got.length >= 15);
    assert.deepEqual(seqsOf(second.got), range(3, 20), 'in-flight ones resent first, then the queue');
    assert.equal(passed.length, 20);
    await until('the acknowledgements', () => publisher.inFlight === 0);
    assert.equal(publisher.dropped, 0);
    assert.equal(publisher.queued, 0);
    assert.equal(publisher.delivered, 20);
  });

  it('beyond the queue limit drops the oldest, counts them, and delivers the rest', async () => {
    const publisher = later(
      new MqttEventPublisher({ url: broker.url, camera: 'door', reconnectPeriodMs: 100, queueLimit: 20 }),
    );
    await firstValueFrom(publisher.connected$.pipe(filter(Boolean)));
    await broker.stop();
    await firstValueFrom(publisher.connected$.pipe(filter((up) => !up)));
    for (const seq of range(0, 50)) publisher.publish(event(seq));
    assert.equal(publisher.queued, 20);
    assert.equal(publisher.dropped, 30);

    let listening = () => {};
    const subscribed = new Promise<void>((resolve) => (listening = resolve));
    await broker.restart({
      authenticate: (client, _user, _password, done) => {
        if (client.id.startsWith('sub-')) done(null, true);
        else void subscribed.then(() => done(null, true));
      },
    });
    const sub = await subscriber(broker.url, 'faceflow/door/recognized');
    later(sub.client);
    listening();
    await until('the queued events', () => sub.got.length >= 20);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(seqsOf(sub.got), range(30, 50));
    assert.equal(publisher.dropped, 30);
  });

  it('stop() with the broker gone gives up after stopTimeoutMs and counts what it could not deliver', async () => {
    const publisher = new MqttEventPublisher({
      url: broker.url,
      camera: 'door',
      reconnectPeriodMs: 100,
      stopTimeoutMs: 300,
    });
    await firstValueFrom(publisher.connected$.pipe(filter(Boolean)));
    await broker.stop();
    await firstValueFrom(publisher.connected$.pipe(filter((up) => !up)));
    publisher.publish(event(1));
    const started = Date.now();
    await publisher.stop();
    const took = Date.now() - started;
    assert.ok(took >= 250 && took < 1500, `stop took ${took} ms`);
    assert.equal(publisher.dropped, 1);
    await broker.restart();
  });

  it('refuses bad options with a clear message that never shows the password', () => {
    const url = 'mqtt://127.0.0.1:1';
    const bad: [Parameters<typeof publishEvents>[0], RegExp][] = [
      [{ url, camera: 'door', prefix: '' }, /prefix must not be empty/],
      [{ url, camera: 'door', prefix: ' / ' }, /prefix must not be empty/],
      [{ url, camera: 'door', prefix: 'home/+' }, /prefix 'home\/\+' must not hold the wildcards/],
      [{ url, camera: 'door', prefix: 'a/#' }, /wildcards/],
      [{ url, camera: 'door', prefix: '$SYS' }, /must not start with '\$'/],
      [{ url, camera: 'front#1' }, /camera 'front#1' must not hold the MQTT wildcards/],
      [{ url, camera: 'a+b' }, /wildcards/],
      [{ url, camera: ' ' }, /camera must name/],
      [{ url: 'http://broker:1883', camera: 'door' }, /not a broker URL/],
      [{ url: 'broker:1883', camera: 'door' }, /not a broker URL/],
      [{ url, camera: 'door', queueLimit: -1 }, /queueLimit/],
      [{ url, camera: 'door', reconnectPeriodMs: 0 }, /reconnectPeriodMs/],
    ];
    for (const [options, message] of bad) {
      assert.throws(() => new MqttEventPublisher(options as never), message, JSON.stringify(options));
      // The operator refuses where the pipeline is built, before anything subscribes.
      assert.throws(() => publishEvents(options as never), message);
    }
    assert.throws(
      () => new MqttEventPublisher({ url: 'http://admin:hunter2-secret@broker', camera: 'door' }),
      (err: Error) => /not a broker URL/.test(err.message) && !err.message.includes('hunter2-secret'),
    );
    assert.equal(mqttTopicLevel(' a/b+c#d '), '%20a%2Fb%2Bc%23d%20');
    assert.equal(mqttTopicLevel('///'), '%2F%2F%2F');
    assert.equal(mqttTopicLevel('  '), '%20%20');
  });

  it('masks the password in connection errors and never shows it when inspected', async () => {
    await broker.stop();
    await broker.restart({
      authenticate: (_client, _user, _password, done) =>
        done(Object.assign(new Error('bad credentials'), { returnCode: 4 as const }), false),
    });
    const errors: Error[] = [];
    const password = 'hunter2-secret';
    const publisher = later(
      new MqttEventPublisher({
        url: `mqtt://admin:${password}@127.0.0.1:${broker.port}`,
        camera: 'door',
        password,
        reconnectPeriodMs: 100,
        onError: (err) => errors.push(err),
      }),
    );
    await until('a refused connection', () => errors.length > 0);
    assert.ok(publisher.lastError);
    for (const err of errors) assert.ok(!err.message.includes(password), err.message);
    assert.ok(!inspect(publisher, { depth: 5 }).includes(password));
    assert.equal(publisher.connected, false);
  });
});
