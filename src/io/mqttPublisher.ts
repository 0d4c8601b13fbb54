import mqtt, { type IClientOptions, type MqttClient, type Packet } from 'mqtt';
import { BehaviorSubject, distinctUntilChanged, Observable, type MonoTypeOperatorFunction } from 'rxjs';

import { UNKNOWN, type FaceEvent } from '../types';
import { maskUrl, SecretMasker } from './maskUrl';
import { topicLevel, topicProblem } from '../util/topicLevel';

/** A camera id or name as one topic level, by the collision-free rule of `./topicLevel`. */
export const mqttTopicLevel = topicLevel;

export interface MqttEventPublisherOptions {
  /** Broker URL: mqtt://host:1883, mqtts://, ws:// or wss://. Userinfo in it is accepted. */
  url: string;
  /**
   * The camera this publisher speaks for. MQTT allows one last will per connection, so the will
   * (and the retained online/offline) lives on `<prefix>/<camera>/status` of this camera only;
   * events of other cameras passing through are still published under their own camera.
   */
  camera: string;
  /** First topic level(s), default `faceflow`. */
  prefix?: string;
  /** Also publish the retained last sighting `<prefix>/person/<name>` = `{camera, ts}` (default false). */
  presence?: boolean;
  /** Messages kept while the broker is unreachable (default 1000); beyond it the oldest are dropped. */
  queueLimit?: number;
  username?: string;
  password?: string;
  /** Default `faceflow-<camera>-<random>`. */
  clientId?: string;
  /**
   * Wait before the first reconnection attempt (default 2000 ms); it doubles with each failed
   * attempt up to `maxReconnectPeriodMs`, and starts over once connected.
   */
  reconnectPeriodMs?: number;
  /** The longest wait between reconnection attempts (default 60 000 ms, at least reconnectPeriodMs). */
  maxReconnectPeriodMs?: number;
  /** Give up one connection attempt after this long (default 10 000 ms). */
  connectTimeoutMs?: number;
  /** Keepalive in seconds (default 30): how soon the broker notices a dead publisher and sends the will. */
  keepaliveS?: number;
  /** How long `stop()` may spend delivering what is queued before it gives up (default 3000 ms). */
  stopTimeoutMs?: number;
  /** TLS and other connection settings passed to mqtt.js; will, reconnect and credentials are set above. */
  clientOptions?: Omit<IClientOptions, 'will' | 'username' | 'password' | 'clientId' | 'reconnectPeriod'>;
  /**
   * Told when the connection starts failing and again when the reason changes (not at every
   * retry), with any password masked.
   */
  onError?: (err: Error) => void;
  /** Told once when the connection is back after `onError`, with the last reason it failed. */
  onRecovered?: (lastError: string) => void;
  /** Told of each message given up as undeliverable (bad topic, refused by the broker), with why. */
  onRejected?: (reason: string, topic: string) => void;
}

/** The periodic health report on the status topic. */
export interface PublisherStatus {
  fps: number;
  lagMs: number;
  faces: number;
}

interface Outgoing {
  /** Order of publishing, so that a message handed back by mqtt.js goes back to its place. */
  seq: number;
  topic: string;
  payload: string;
  retain: boolean;
}

// Messages handed to mqtt.js at once. mqtt.js keeps every unacknowledged QoS 1 message and sends
// it again after a reconnect, without any limit; this window keeps that store small, so that
// queueLimit (here, where dropping is counted) bounds what a long outage can hold.
const MAX_IN_FLIGHT = 50;

// A broker that closes the connection each time one message is the first unacknowledged one on
// it (Mosquitto does so for a malformed or oversized packet) would get it again after every
// reconnect, forever, with everything behind it stuck: after this many times it is given up.
const CLOSES_BEFORE_GIVING_UP = 3;

/** The broker's own verdict on a publish (an MQTT 5 PUBACK reason code ≥ 0x80), as mqtt.js reports it. */
function isBrokerVerdict(err: Error): boolean {
  const code = (err as Error & { code?: unknown }).code;
  return typeof code === 'number' && code >= 0x80;
}

const BROKER_PROTOCOLS = new Set(['mqtt:', 'mqtts:', 'tcp:', 'tls:', 'ssl:', 'ws:', 'wss:']);

interface CheckedOptions {
  url: string;
  prefix: string;
  camera: string;
  queueLimit: number;
}

function checkOptions(options: MqttEventPublisherOptions): CheckedOptions {
  const where = 'MqttEventPublisher';
  const url = typeof options.url === 'string' ? options.url.trim() : '';
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || !BROKER_PROTOCOLS.has(parsed.protocol) || parsed.hostname === '') {
    throw new Error(
      `${where}: '${maskUrl(url)}' is not a broker URL (mqtt://host:1883, mqtts://, ws:// or wss://)`,
    );
  }
  const prefix = (options.prefix ?? 'faceflow').trim().replace(/\/+$/, '');
  if (prefix === '') throw new Error(`${where}: the topic prefix must not be empty`);
  if (/[+#]/.test(prefix))
    throw new Error(`${where}: the topic prefix '${prefix}' must not hold the wildcards '+' or '#'`);
  // Brokers keep '$' topics for themselves ($SYS) and refuse or hide publishes to them.
  if (prefix.startsWith('$')) throw new Error(`${where}: the topic prefix must not start with '$'`);
  const prefixProblem = topicProblem(prefix);
  if (prefixProblem)
    throw new Error(`${where}: the topic prefix ${JSON.stringify(prefix)} is unusable: ${prefixProblem}`);
  const camera = typeof options.camera === 'string' ? options.camera.trim() : '';
  if (camera === '')
    throw new Error(`${where}: camera must name the camera whose status this publisher owns`);
  if (/[+#]/.test(camera))
    throw new Error(`${where}: camera '${camera}' must not hold the MQTT wildcards '+' or '#'`);
  const queueLimit = options.queueLimit ?? 1000;
  if (!(Number.isInteger(queueLimit) && queueLimit >= 0))
    throw new Error(`${where}: queueLimit must be a whole number ≥ 0, got ${String(options.queueLimit)}`);
  for (const [name, value] of [
    ['reconnectPeriodMs', options.reconnectPeriodMs],
    ['maxReconnectPeriodMs', options.maxReconnectPeriodMs],
    ['connectTimeoutMs', options.connectTimeoutMs],
    ['stopTimeoutMs', options.stopTimeoutMs],
    ['keepaliveS', options.keepaliveS],
  ] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value > 0))
      throw new Error(`${where}: ${name} must be a positive number, got ${String(value)}`);
  }
  return { url, prefix, camera, queueLimit };
}

/**
 * Publishes face events to an MQTT broker on the topics of docs/ARCHITECTURE.md, and owns the connection:
 * a retained `online` on every (re)connection, the retained `offline` as last will and again on
 * `stop()`. While the broker is away events wait in a bounded queue, oldest dropped first
 * (counted in `dropped`), and go out in order once it is back.
 *
 * At least once: a message counts as delivered only when the broker's PUBACK for it arrives.
 * One sent but not acknowledged when the connection drops is sent again after the reconnect
 * (mqtt.js keeps it), so a subscriber may get it twice; such resends are counted in `resent`.
 * A message that cannot be delivered at all (a topic no broker takes, a broker refusal, a broker
 * that closes the connection on it again and again) is given up and counted in `rejected`, so
 * that it never holds up the ones behind it.
 */
export class MqttEventPublisher {
  readonly prefix: string;
  readonly camera: string;
  readonly statusTopic: string;
  readonly queueLimit: number;
  /**
   * Messages given up on: pushed out of a full queue, rejected, or not acknowledged when `stop()`
   * had to give up.
   */
  dropped = 0;
  /** Of `dropped`, those that could not be delivered at all; the last reason is `lastRejection`. */
  rejected = 0;
  /** Messages the broker has acknowledged (PUBACK received). */
  delivered = 0;
  /** Messages sent again after a reconnection: the broker may have had them already (duplicates). */
  resent = 0;
  /** The last connection problem, password masked; cleared once connected again. */
  lastError: string | undefined;
  /** Why the last rejected message was given up. */
  lastRejection: string | undefined;

  // Private fields, so that logging or inspecting a publisher never shows the credentials.
  readonly #client: MqttClient;
  readonly #mask: (text: string) => string;
  readonly #presence: boolean;
  readonly #stopTimeoutMs: number;
  readonly #reconnectPeriodMs: number;
  readonly #maxReconnectPeriodMs: number;
  readonly #onError: ((err: Error) => void) | undefined;
  readonly #onRecovered: ((lastError: string) => void) | undefined;
  readonly #onRejected: ((reason: string, topic: string) => void) | undefined;
  readonly #queue: Outgoing[] = [];
  readonly #inFlight = new Set<Outgoing>();
  readonly #connected = new BehaviorSubject<boolean>(false);
  #published = 0;
  #stopping: Promise<void> | undefined;
  #drainWaiters: (() => void)[] = [];
  /** The reason last told to onError, until the connection is back. */
  #failingWith: string | undefined;
  readonly #closes = new ClosesWithoutAck();

  constructor(options: MqttEventPublisherOptions) {
    const checked = checkOptions(options);
    this.prefix = checked.prefix;
    this.camera = checked.camera;
    this.queueLimit = checked.queueLimit;
    this.statusTopic = `${this.prefix}/${topicLevel(this.camera)}/status`;
    this.#presence = options.presence === true;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? 3000;
    this.#reconnectPeriodMs = options.reconnectPeriodMs ?? 2000;
    this.#maxReconnectPeriodMs = Math.max(this.#reconnectPeriodMs, options.maxReconnectPeriodMs ?? 60_000);
    this.#onError = options.onError;
    this.#onRecovered = options.onRecovered;
    this.#onRejected = options.onRejected;
    this.#mask = maskerFor(checked.url, options.password);

    this.#client = mqtt.connect(checked.url, {
      ...options.clientOptions,
      clientId:
        options.clientId ??
        `faceflow-${topicLevel(this.camera).slice(0, 40)}-${Math.random().toString(16).slice(2, 10)}`,
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
      reconnectPeriod: this.#reconnectPeriodMs,
      // A refused CONNACK (bad credentials, not authorised) would otherwise end the retries for
      // good; the broker's configuration may be fixed while we wait.
      reconnectOnConnackError: true,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      keepalive: options.keepaliveS ?? 30,
      // Stale status reports are worthless after an outage; events (QoS 1) wait in our own queue.
      queueQoSZero: false,
      will: { topic: this.statusTopic, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    this.#watchDelivery();
    // mqtt.js emits 'connect' only after it has sent again what the last connection left
    // unacknowledged, so what is queued here goes out behind those, in order.
    this.#client.on('connect', () => {
      this.#client.options.reconnectPeriod = this.#reconnectPeriodMs;
      this.#client.publish(this.statusTopic, 'online', { qos: 1, retain: true }, () => {});
      this.#recovered();
      this.#connected.next(true);
      this.#pump();
    });
    // Each attempt that follows a failed one waits twice as long, up to the longest wait.
    this.#client.on('reconnect', () => {
      const period = this.#client.options.reconnectPeriod ?? this.#reconnectPeriodMs;
      this.#client.options.reconnectPeriod = Math.min(period * 2, this.#maxReconnectPeriodMs);
    });
    this.#client.on('close', () => {
      if (this.connected) this.#failing('the connection to the broker was lost');
      this.#connected.next(false);
    });
    // Without a listener mqtt.js would throw its connection errors out of the event loop.
    this.#client.on('error', (err) => this.#failing(err.message));
  }

  /** True while connected; changes on every connect and disconnect. Completes after `stop()`. */
  get connected$(): Observable<boolean> {
    return this.#connected.pipe(distinctUntilChanged());
  }

  get connected(): boolean {
    return this.#connected.value;
  }

  /** Messages waiting for the broker (not yet handed to the connection). */
  get queued(): number {
    return this.#queue.length;
  }

  /** Messages handed to the connection and not yet acknowledged. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** The mqtt.js client, for what this class does not cover; do not end it yourself, call `stop()`. */
  get client(): MqttClient {
    return this.#client;
  }

  /**
   * `<prefix>/<camera>/<recognized|unknown>` with the event as JSON, QoS 1; presence too if asked.
   * Camera and name become topic levels by the collision-free rule of `topicLevel`; the payload
   * keeps them as they are. An event with an empty camera or name is rejected (counted), not thrown.
   */
  publish(event: FaceEvent): void {
    if (this.#stopping) throw new Error('MqttEventPublisher: publish after stop()');
    let camera: string;
    try {
      camera = topicLevel(event.camera);
    } catch {
      this.#reject(`the event has no camera id: ${JSON.stringify(event.camera)}`, '');
      return;
    }
    this.#enqueue(`${this.prefix}/${camera}/${event.type}`, JSON.stringify(event), false);
    if (this.#presence && event.type === 'recognized' && event.name !== UNKNOWN) {
      if (typeof event.name !== 'string' || event.name === '') {
        this.#reject(`the event has no name for its presence topic: ${JSON.stringify(event.name)}`, '');
        return;
      }
      const payload = JSON.stringify({ camera: event.camera, ts: event.ts });
      this.#enqueue(`${this.prefix}/person/${topicLevel(event.name)}`, payload, true);
    }
  }

  /**
   * A message made elsewhere (the face events node's events, last sightings, discovery configs,
   * status reports), through the same bounded queue as events, QoS 1. An object payload goes as
   * JSON. A topic no broker would take (wildcards, a leading `$`, control characters, NUL) is
   * rejected: counted, told to onRejected, and thrown, so the caller sees why.
   */
  publishMessage(topic: string, payload: unknown, options: { retain?: boolean } = {}): void {
    if (this.#stopping) throw new Error('MqttEventPublisher: publish after stop()');
    const problem = topicProblem(topic);
    if (problem) {
      const reason = `cannot publish to topic ${JSON.stringify(topic)}: ${problem}`;
      this.#reject(reason, typeof topic === 'string' ? topic : '');
      throw new Error(`MqttEventPublisher: ${reason}`);
    }
    const text =
      typeof payload === 'string'
        ? payload
        : Buffer.isBuffer(payload)
          ? payload.toString('utf8')
          : JSON.stringify(payload ?? '');
    this.#enqueue(topic, text, options.retain === true);
  }

  /**
   * The health report `{fps, lagMs, faces}` on the status topic, not retained (the retained value
   * there is online/offline) and QoS 0. Returns false, sending nothing, while disconnected: a
   * report is only worth its moment.
   */
  publishStatus(status: PublisherStatus): boolean {
    if (this.#stopping || !this.connected) return false;
    const payload = JSON.stringify({
      fps: round(status.fps, 2),
      lagMs: Math.round(status.lagMs),
      faces: Math.round(status.faces),
    });
    this.#client.publish(this.statusTopic, payload, { qos: 0, retain: false }, () => {});
    return true;
  }

  /**
   * Delivers what is queued, waiting for a (re)connection if need be, for up to `stopTimeoutMs`;
   * then publishes the retained `offline` and disconnects cleanly, so the broker discards the
   * will. What could not be delivered by then is dropped (and counted). With the broker
   * unreachable there is nobody to tell offline: its will, or its restart, already did.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#shutDown();
    return this.#stopping;
  }

  async #shutDown(): Promise<void> {
    // Waiting covers the connection too: a finite stream may complete before the first connect,
    // or during a short outage, and what it published should still go out.
    await this.#drained(Date.now() + this.#stopTimeoutMs);
    // The goodbye gets its own short allowance, so a slow drain cannot leave the status online.
    const deadline = Date.now() + Math.min(this.#stopTimeoutMs, 1000);
    let graceful = false;
    if (this.connected) {
      graceful = await withDeadline(
        deadline,
        new Promise<boolean>((resolve) => {
          this.#client.publish(this.statusTopic, 'offline', { qos: 1, retain: true }, (err) => resolve(!err));
        }),
      );
    }
    this.dropped += this.#queue.length;
    this.#queue.length = 0;
    if (graceful) {
      // end(false) waits for every acknowledgement, which a broker dying just now never sends.
      if (!(await withDeadline(deadline, this.#end(false)))) this.#client.stream.destroy();
    } else {
      await this.#end(true);
    }
    // Sent but never acknowledged: the broker may or may not have them; they were not delivered.
    this.dropped += this.#inFlight.size;
    this.#inFlight.clear();
    this.#connected.next(false);
    this.#connected.complete();
  }

  #end(force: boolean): Promise<boolean> {
    return new Promise((resolve) => this.#client.end(force, {}, () => resolve(true)));
  }

  #enqueue(topic: string, payload: string, retain: boolean): void {
    this.#queue.push({ seq: this.#published++, topic, payload, retain });
    while (this.#queue.length > this.queueLimit) {
      this.#queue.shift();
      this.dropped++;
    }
    this.#pump();
  }

  #pump(): void {
    while (this.connected && this.#inFlight.size < MAX_IN_FLIGHT && this.#queue.length > 0) {
      const message = this.#queue.shift() as Outgoing;
      this.#inFlight.add(message);
      // For QoS 1 the callback comes with the broker's PUBACK, after a reconnect if need be.
      this.#client.publish(message.topic, message.payload, { qos: 1, retain: message.retain }, (err) =>
        this.#settle(message, err),
      );
    }
    if (this.#queue.length === 0 && this.#inFlight.size === 0) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** The end of one message's trip through mqtt.js: acknowledged, refused, or handed back. */
  #settle(message: Outgoing, err: Error | undefined): void {
    // Already counted: stop() gave up on it.
    if (!this.#inFlight.delete(message)) return;
    if (!err) {
      this.delivered++;
    } else if (isBrokerVerdict(err)) {
      this.#reject(`the broker refused it: ${err.message}`, message.topic);
    } else if (err.message === 'Message removed') {
      this.#reject(
        `the broker closed the connection each of the ${CLOSES_BEFORE_GIVING_UP} times it was sent (malformed or too large?)`,
        message.topic,
      );
    } else if (this.#stopping) {
      this.dropped++;
    } else {
      // Handed back unsent (the connection closed before mqtt.js gave it an id): queue it again.
      const at = this.#queue.findIndex((queued) => queued.seq > message.seq);
      this.#queue.splice(at === -1 ? this.#queue.length : at, 0, message);
    }
    this.#pump();
  }

  #reject(reason: string, topic: string): void {
    this.rejected++;
    this.dropped++;
    this.lastRejection = this.#mask(reason);
    this.#onRejected?.(this.lastRejection, topic);
  }

  /**
   * Watches the packets on the wire: resends after a reconnection are counted, and a message
   * that the broker answers by closing the connection again and again is given up.
   */
  #watchDelivery(): void {
    const unacknowledged = new Set<number>();
    this.#client.on('packetsend', (packet: Packet) => {
      if (packet.cmd !== 'publish' || !packet.messageId) return;
      if (unacknowledged.has(packet.messageId)) this.resent++;
      unacknowledged.add(packet.messageId);
      this.#closes.sent(packet.messageId);
    });
    this.#client.on('packetreceive', (packet: Packet) => {
      if (packet.cmd === 'connack') this.#closes.connected();
      if (packet.cmd === 'puback' && packet.messageId) {
        unacknowledged.delete(packet.messageId);
        this.#closes.acknowledged();
      }
    });
    this.#client.on('close', () => {
      const hopeless = this.#closes.closed(CLOSES_BEFORE_GIVING_UP);
      if (hopeless !== undefined) {
        unacknowledged.delete(hopeless);
        // mqtt.js answers the message's callback with 'Message removed'; #settle counts it.
        this.#client.removeOutgoingMessage(hopeless);
      }
    });
  }

  #drained(deadline: number): Promise<boolean> {
    if (this.#queue.length === 0 && this.#inFlight.size === 0) return Promise.resolve(true);
    return withDeadline(
      deadline,
      new Promise<boolean>((resolve) => this.#drainWaiters.push(() => resolve(true))),
    );
  }

  /** Told once per reason, not at every retry: a broker down for a day would fill the log. */
  #failing(message: string): void {
    const masked = this.#mask(message);
    this.lastError = masked;
    if (masked === this.#failingWith) return;
    this.#failingWith = masked;
    this.#onError?.(new Error(masked));
  }

  #recovered(): void {
    const was = this.#failingWith;
    this.#failingWith = undefined;
    this.lastError = undefined;
    if (was !== undefined) this.#onRecovered?.(was);
  }
}

/**
 * Which message, if any, a broker keeps closing the connection on: the first one sent on a
 * connection, when the connection closes before any acknowledgement, several times in a row.
 */
class ClosesWithoutAck {
  #firstSent: number | undefined;
  #acknowledged = false;
  #open = false;
  #suspect: number | undefined;
  #strikes = 0;

  connected(): void {
    this.#open = true;
    this.#firstSent = undefined;
    this.#acknowledged = false;
  }

  sent(messageId: number): void {
    if (this.#open) this.#firstSent ??= messageId;
  }

  acknowledged(): void {
    this.#acknowledged = true;
    this.#suspect = undefined;
    this.#strikes = 0;
  }

  /** The message to give up, once it has been the culprit `limit` times in a row. */
  closed(limit: number): number | undefined {
    const culprit = this.#open && !this.#acknowledged ? this.#firstSent : undefined;
    this.#open = false;
    if (culprit === undefined) return undefined;
    this.#strikes = culprit === this.#suspect ? this.#strikes + 1 : 1;
    this.#suspect = culprit;
    if (this.#strikes < limit) return undefined;
    this.#suspect = undefined;
    this.#strikes = 0;
    return culprit;
  }
}

/**
 * Publishes each event to MQTT as it passes, then passes it on. Given options, the operator owns
 * a publisher for the life of the subscription: connected on subscribe, and stopped gracefully
 * (retained `offline`) before it completes or errors, or when unsubscribed. Given a publisher,
 * it only publishes through it; stopping it is the caller's business.
 */
export function publishEvents(
  target: MqttEventPublisherOptions | MqttEventPublisher,
): MonoTypeOperatorFunction<FaceEvent> {
  // Bad options fail where the pipeline is built, not on the first event.
  if (!(target instanceof MqttEventPublisher)) checkOptions(target);
  return (events) =>
    new Observable<FaceEvent>((subscriber) => {
      const owned = target instanceof MqttEventPublisher ? undefined : new MqttEventPublisher(target);
      const publisher = owned ?? (target as MqttEventPublisher);
      const settle = (then: () => void) => {
        if (owned) void owned.stop().then(then);
        else then();
      };
      const subscription = events.subscribe({
        next: (event) => {
          try {
            publisher.publish(event);
          } catch (err) {
            subscriber.error(err);
            return;
          }
          subscriber.next(event);
        },
        error: (err: unknown) => settle(() => subscriber.error(err)),
        complete: () => settle(() => subscriber.complete()),
      });
      return () => {
        subscription.unsubscribe();
        void owned?.stop();
      };
    });
}

function maskerFor(url: string, password: string | undefined): (text: string) => string {
  const inUrl = new SecretMasker(url);
  if (password === undefined || password === '') return (text) => inUrl.mask(text);
  // SecretMasker learns secrets from a URL; a password given apart from the URL is taught to it
  // through a stand-in one, so that it too is masked raw, encoded and as a Basic-auth token.
  const apart = new SecretMasker(`mqtt://user:${encodeURIComponent(password)}@broker`);
  return (text) => apart.mask(inUrl.mask(text));
}

async function withDeadline(deadline: number, work: Promise<boolean>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

function round(value: number, digits: number): number {
  return Number.isFinite(value) ? Number(value.toFixed(digits)) : 0;
}
