import assert from 'node:assert/strict';

import mqtt, { type MqttClient, type Packet } from 'mqtt';
import { filter, firstValueFrom } from 'rxjs';

import { MqttEventPublisher } from '../src/io/mqttPublisher';
import { type FaceEvent } from '../src/types';
import { freePort, Mosquitto, requireMosquitto } from './helpers/mosquitto';
import { subscriber } from './helpers/mqttBroker';

async function until(what: string, check: () => boolean, ms = 20_000, detail = () => ''): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what} ${detail()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

const trackIdOf = (payload: Buffer | string) => (JSON.parse(String(payload)) as { trackId: number }).trackId;

/**
 * A subscriber whose session outlives a broker restart: fixed client id, clean = false, QoS 1,
 * so the broker keeps what arrives for it while it is away (and, with persistence, across a
 * restart). It records every event id it gets, duplicates included.
 */
async function durableSubscriber(url: string, topic: string): Promise<{ client: MqttClient; ids: number[] }> {
  const client = await mqtt.connectAsync(url, {
    clientId: `faceflow-test-sub-${Math.random().toString(16).slice(2, 10)}`,
    clean: false,
    reconnectPeriod: 100,
  });
  const ids: number[] = [];
  client.on('message', (_topic, payload) => ids.push(trackIdOf(payload)));
  await client.subscribeAsync(topic, { qos: 1 });
  return { client, ids };
}

/**
 * Counts the PUBACKs the publisher's connection actually receives for event publishes, and
 * checks at each one that the publisher never claims more deliveries than that.
 */
function watchAcknowledgements(publisher: MqttEventPublisher, isEvent: (topic: string) => boolean) {
  const waiting = new Set<number>();
  const seen = { acked: 0, overclaimed: [] as string[] };
  publisher.client.on('packetsend', (packet: Packet) => {
    if (packet.cmd === 'publish' && isEvent(packet.topic) && packet.messageId) waiting.add(packet.messageId);
  });
  publisher.client.on('packetreceive', (packet: Packet) => {
    if (packet.cmd === 'puback' && packet.messageId && waiting.delete(packet.messageId)) seen.acked++;
    if (publisher.delivered > seen.acked) {
      seen.overclaimed.push(`delivered ${publisher.delivered} after ${seen.acked} PUBACKs`);
    }
  });
  return seen;
}

const missing = (ids: number[], total: number) => {
  const got = new Set(ids);
  return Array.from({ length: total }, (_, i) => i).filter((id) => !got.has(id));
};

describe('io/MqttEventPublisher with a real Mosquitto', function () {
  this.timeout(90_000);
  let broker: Mosquitto | undefined;
  const cleanups: (() => Promise<unknown> | void)[] = [];
  const later = <T extends { stop(): Promise<void> } | MqttClient>(thing: T): T => {
    cleanups.push(() => ('stop' in thing ? thing.stop() : thing.endAsync(true)));
    return thing;
  };

  before(function () {
    requireMosquitto(this);
  });
  afterEach(async () => {
    for (const clean of cleanups.splice(0).reverse()) await clean();
    await broker?.close();
    broker = undefined;
  });

  for (const how of ['graceful (SIGTERM)', 'hard (SIGKILL)'] as const) {
    it(`loses no event across a ${how} broker restart in mid-stream, and counts only acknowledged ones`, async () => {
      const total = 400;
      const mosquitto = (broker = await Mosquitto.start());
      const sub = await durableSubscriber(mosquitto.url, 'faceflow/door/recognized');
      later(sub.client);
      // The subscriber's session is on disk before the broker dies, as a long-running one's is.
      await mosquitto.nextSave();
      const publisher = later(
        new MqttEventPublisher({
          url: mosquitto.url,
          camera: 'door',
          reconnectPeriodMs: 100,
          queueLimit: total * 2,
          stopTimeoutMs: 10_000,
        }),
      );
      const acks = watchAcknowledgements(publisher, (topic) => topic.endsWith('/recognized'));
      await firstValueFrom(publisher.connected$.pipe(filter(Boolean)));
      let unacknowledgedAtClose = -1;
      publisher.client.once('close', () => (unacknowledgedAtClose = publisher.inFlight));

      let next = 0;
      const burst = async (upTo: number) => {
        while (next < upTo) {
          for (let i = 0; i < 25 && next < upTo; i++) publisher.publish(event(next++));
          await sleep(2);
        }
      };
      await burst(100);
      // What the broker acknowledged so far has reached the subscriber: a hard kill cannot take
      // from the broker what it had queued for a slow subscriber (that loss would be the broker's).
      await until('the subscriber to catch up', () => missing(sub.ids, next).length === 0);
      // The broker freezes, then a full window is handed over: certainly in flight when it goes.
      mosquitto.pause();
      for (; next < 150; next++) publisher.publish(event(next));
      assert.equal(publisher.inFlight, 50);
      if (how === 'graceful (SIGTERM)') await mosquitto.stop();
      else await mosquitto.kill();
      // Published while the broker is away: queued, then sent once it is back.
      await burst(300);
      await sleep(300);
      await mosquitto.restart();
      await burst(total);

      await until(
        'the publisher to drain',
        () => publisher.queued === 0 && publisher.inFlight === 0,
        30_000,
        () => `(queued ${publisher.queued}, in flight ${publisher.inFlight})`,
      );
      await until(
        'every event at the subscriber',
        () => missing(sub.ids, total).length === 0,
        10_000,
        () => `(missing ${missing(sub.ids, total).join(',')}; broker log:\n${mosquitto.log})`,
      );
      assert.deepEqual(acks.overclaimed, [], 'an event counted delivered before its PUBACK');
      assert.equal(publisher.delivered, acks.acked, 'delivered must equal the PUBACKs received');
      assert.equal(publisher.delivered, total);
      assert.equal(publisher.dropped, 0);
      // Duplicates are what at-least-once allows; what was sent again is counted.
      const duplicates = sub.ids.length - total;
      assert.ok(unacknowledgedAtClose >= 0, 'the connection closed');
      if (how === 'hard (SIGKILL)')
        assert.equal(unacknowledgedAtClose, 50, 'the frozen broker acknowledged nothing');
      assert.ok(
        publisher.resent >= unacknowledgedAtClose,
        `${unacknowledgedAtClose} unacknowledged at the close, ${publisher.resent} sent again, ${duplicates} duplicates`,
      );
    });
  }

  it('escapes control characters in names, so the broker never closes on them and nothing stalls', async () => {
    const mosquitto = (broker = await Mosquitto.start());
    const sub = later((await subscriber(mosquitto.url, 'faceflow/#')).client);
    const got: { topic: string; text: string }[] = [];
    sub.on('message', (topic, payload) => got.push({ topic, text: payload.toString() }));
    const publisher = later(
      new MqttEventPublisher({ url: mosquitto.url, camera: 'door', presence: true, reconnectPeriodMs: 100 }),
    );
    let closes = 0;
    publisher.client.on('close', () => closes++);
    await firstValueFrom(publisher.connected$.pipe(filter(Boolean)));

    const names = ['Ann\u0000Lee', 'Bob\u0007', 'Cy\u001b[31m', 'Di\u200e', 'ann'];
    names.forEach((name, i) => publisher.publish(event(i, { name })));
    await until(
      'every event and sighting',
      () => publisher.delivered === names.length * 2,
      10_000,
      () => JSON.stringify({ delivered: publisher.delivered, closes, log: mosquitto.log }),
    );
    await until(
      'the subscriber',
      () => got.filter((m) => m.topic.startsWith('faceflow/person/')).length === 5,
    );
    assert.equal(closes, 0, `the broker closed the connection:\n${mosquitto.log}`);
    assert.equal(publisher.dropped, 0);
    assert.deepEqual(
      got.filter((m) => m.topic.startsWith('faceflow/person/')).map((m) => m.topic),
      [
        'faceflow/person/Ann%00Lee',
        'faceflow/person/Bob%07',
        'faceflow/person/Cy%1B[31m',
        'faceflow/person/Di%E2%80%8E',
        'faceflow/person/ann',
      ],
    );
    // The event keeps the name as it is.
    const events = got.filter((m) => m.topic === 'faceflow/door/recognized');
    assert.deepEqual(
      events.map((m) => (JSON.parse(m.text) as FaceEvent).name),
      names,
    );
  });

  it('gives "Ann", "Ann ", " Ann" and "ann" four presence topics', async () => {
    const mosquitto = (broker = await Mosquitto.start());
    const publisher = later(new MqttEventPublisher({ url: mosquitto.url, camera: 'door', presence: true }));
    const names = ['Ann', 'Ann ', ' Ann', 'ann', 'Ann%20'];
    names.forEach((name, i) => publisher.publish(event(i, { name })));
    await until('every sighting delivered', () => publisher.delivered === names.length * 2);
    // Retained, so a subscriber that comes later sees one last sighting per person.
    const late = await subscriber(mosquitto.url, 'faceflow/person/+');
    later(late.client);
    await until('the retained sightings', () => late.got.length === names.length);
    const byTopic = new Map(late.got.map((m) => [m.topic, (JSON.parse(m.text) as { ts: number }).ts]));
    assert.deepEqual(Object.fromEntries(byTopic), {
      'faceflow/person/Ann': event(0).ts,
      'faceflow/person/Ann%20': event(1).ts,
      'faceflow/person/%20Ann': event(2).ts,
      'faceflow/person/ann': event(3).ts,
      'faceflow/person/Ann%2520': event(4).ts,
    });
  });

  it('refuses a topic the broker would refuse, counting it, and delivers what follows', async () => {
    const mosquitto = (broker = await Mosquitto.start());
    const rejected: string[] = [];
    const publisher = later(
      new MqttEventPublisher({
        url: mosquitto.url,
        camera: 'door',
        reconnectPeriodMs: 100,
        onRejected: (reason) => rejected.push(reason),
      }),
    );
    await firstValueFrom(publisher.connected$.pipe(filter(Boolean)));
    for (const topic of [
      'faceflow/door/a\u0000b',
      'faceflow/door/\u0001',
      'faceflow/\u0085',
      '$SYS/x',
      'a/+/b',
    ]) {
      assert.throws(() => publisher.publishMessage(topic, 'x'), /cannot publish to topic/);
    }
    publisher.publish(event(1));
    await until('the next event', () => publisher.delivered === 1);
    assert.equal(publisher.rejected, 5);
    assert.equal(publisher.dropped, 5);
    assert.equal(rejected.length, 5);
    assert.match(rejected[0], /U\+0000/);
    assert.match(publisher.lastRejection ?? '', /wildcard/);
  });

  it('gives up a message the broker closes the connection on, again and again, and delivers what follows', async () => {
    // Mosquitto closes the connection on a packet above its maximum size: a message that would be
    // sent again after every reconnect, forever, with everything behind it stuck.
    const mosquitto = (broker = await Mosquitto.start({ config: ['max_packet_size 2000'] }));
    const sub = await subscriber(mosquitto.url, 'faceflow/door/recognized');
    later(sub.client);
    const rejected: string[] = [];
    const publisher = later(
      new MqttEventPublisher({
        url: mosquitto.url,
        camera: 'door',
        reconnectPeriodMs: 50,
        onRejected: (reason) => rejected.push(reason),
      }),
    );
    await firstValueFrom(publisher.connected$.pipe(filter(Boolean)));
    publisher.publish(event(0));
    publisher.publishMessage('faceflow/door/recognized', 'x'.repeat(5000));
    for (let i = 1; i < 20; i++) publisher.publish(event(i));

    await until(
      'every event after the oversized one',
      () => sub.got.length >= 20,
      20_000,
      () => JSON.stringify({ got: sub.got.length, rejected, log: mosquitto.log.slice(-2000) }),
    );
    assert.deepEqual(
      [...new Set(sub.got.map((m) => trackIdOf(m.text)))].sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i),
    );
    await until('settled', () => publisher.inFlight === 0 && publisher.queued === 0);
    assert.equal(publisher.rejected, 1);
    assert.equal(publisher.delivered, 20);
    assert.match(rejected[0], /closed the connection/);
  });

  it('tells a refused connection once, not at every retry, retries with backoff, and tells the recovery', async () => {
    const port = await freePort();
    const errors: string[] = [];
    const recovered: string[] = [];
    const publisher = later(
      new MqttEventPublisher({
        url: `mqtt://127.0.0.1:${port}`,
        camera: 'door',
        reconnectPeriodMs: 20,
        maxReconnectPeriodMs: 80,
        onError: (err) => errors.push(err.message),
        onRecovered: (was) => recovered.push(was),
      }),
    );
    const periods: number[] = [];
    publisher.client.on('reconnect', () => periods.push(publisher.client.options.reconnectPeriod ?? 0));
    await until('six retries', () => periods.length >= 6);
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0], /ECONNREFUSED/);
    assert.deepEqual(periods.slice(0, 4), [40, 80, 80, 80], 'the wait doubles up to the longest');
    assert.match(publisher.lastError ?? '', /ECONNREFUSED/);

    broker = await Mosquitto.start({ port });
    await firstValueFrom(publisher.connected$.pipe(filter(Boolean)));
    assert.deepEqual(recovered, [errors[0]]);
    assert.equal(publisher.lastError, undefined);
    assert.equal(errors.length, 1);
  });

  it('keeps retrying refused credentials, telling it once', async () => {
    const mosquitto = (broker = await Mosquitto.start({ config: ['allow_anonymous false'] }));
    const errors: string[] = [];
    const publisher = later(
      new MqttEventPublisher({
        url: mosquitto.url,
        camera: 'door',
        username: 'me',
        password: 'hunter2-secret',
        reconnectPeriodMs: 20,
        maxReconnectPeriodMs: 40,
        onError: (err) => errors.push(err.message),
      }),
    );
    let attempts = 0;
    publisher.client.on('reconnect', () => attempts++);
    await until('five retries', () => attempts >= 5);
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0], /Not authorized|Bad user name or password/i);
    assert.doesNotMatch(errors[0], /hunter2/);
  });
});
