import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { BehaviorSubject, distinctUntilChanged, Observable, type MonoTypeOperatorFunction } from 'rxjs';

import { UNKNOWN, type FaceEvent } from '../types';
import { maskUrl, SecretMasker } from './maskUrl';

/** MQTT topic levels cannot hold '/', '+' or '#': camera ids and names may. */
export function mqttTopicLevel(text: string): string {
  const cleaned = text.replace(/[/+#]/g, '_').trim();
  return cleaned === '' ? '_' : cleaned;
}

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
  /** Wait between reconnection attempts (default 2000 ms). */
  reconnectPeriodMs?: number;
  /** Give up one connection attempt after this long (default 10 000 ms). */
  connectTimeoutMs?: number;
  /** Keepalive in seconds (default 30): how soon the broker notices a dead publisher and sends the will. */
  keepaliveS?: number;
  /** How long `stop()` may spend delivering what is queued before it gives up (default 3000 ms). */
  stopTimeoutMs?: number;
  /** TLS and other connection settings passed to mqtt.js; will, reconnect and credentials are set above. */
  clientOptions?: Omit<IClientOptions, 'will' | 'username' | 'password' | 'clientId' | 'reconnectPeriod'>;
  /** Told about connection problems, with any password masked. */
  onError?: (err: Error) => void;
}

/** The periodic health report on the status topic. */
export interface PublisherStatus {
  fps: number;
  lagMs: number;
  faces: number;
}

interface Outgoing {
  topic: string;
  payload: string;
  retain: boolean;
}

// Messages handed to mqtt.js at once. mqtt.js keeps every unacknowledged QoS 1 message and sends
// it again after a reconnect, without any limit; this window keeps that store small, so that
// queueLimit (here, where dropping is counted) bounds what a long outage can hold.
const MAX_IN_FLIGHT = 50;

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
  if (prefix.includes('\u0000')) throw new Error(`${where}: the topic prefix must not hold a NUL character`);
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
 * Publishes face events to an MQTT broker on the topics of DESIGN.md, and owns the connection:
 * a retained `online` on every (re)connection, the retained `offline` as last will and again on
 * `stop()`. While the broker is away events wait in a bounded queue, oldest dropped first
 * (counted in `dropped`), and go out in order once it is back.
 */
export class MqttEventPublisher {
  readonly prefix: string;
  readonly camera: string;
  readonly statusTopic: string;
  readonly queueLimit: number;
  /** Messages given up on: pushed out of a full queue, or still queued when `stop()` had to give up. */
  dropped = 0;
  /** Messages the broker has acknowledged. */
  delivered = 0;
  /** The last connection problem, password masked. */
  lastError: string | undefined;

  // Private fields, so that logging or inspecting a publisher never shows the credentials.
  readonly #client: MqttClient;
  readonly #mask: (text: string) => string;
  readonly #presence: boolean;
  readonly #stopTimeoutMs: number;
  readonly #onError: ((err: Error) => void) | undefined;
  readonly #queue: Outgoing[] = [];
  readonly #connected = new BehaviorSubject<boolean>(false);
  #inFlight = 0;
  #stopping: Promise<void> | undefined;
  #drainWaiters: (() => void)[] = [];

  constructor(options: MqttEventPublisherOptions) {
    const checked = checkOptions(options);
    this.prefix = checked.prefix;
    this.camera = checked.camera;
    this.queueLimit = checked.queueLimit;
    this.statusTopic = `${this.prefix}/${mqttTopicLevel(this.camera)}/status`;
    this.#presence = options.presence === true;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? 3000;
    this.#onError = options.onError;
    this.#mask = maskerFor(checked.url, options.password);

    this.#client = mqtt.connect(checked.url, {
      ...options.clientOptions,
      clientId:
        options.clientId ??
        `faceflow-${mqttTopicLevel(this.camera).slice(0, 40)}-${Math.random().toString(16).slice(2, 10)}`,
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
      reconnectPeriod: options.reconnectPeriodMs ?? 2000,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      keepalive: options.keepaliveS ?? 30,
      // Stale status reports are worthless after an outage; events (QoS 1) wait in our own queue.
      queueQoSZero: false,
      will: { topic: this.statusTopic, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    this.#client.on('connect', () => {
      this.#client.publish(this.statusTopic, 'online', { qos: 1, retain: true }, (err) => {
        if (err) this.#problem(err);
      });
      this.#connected.next(true);
      this.#pump();
    });
    this.#client.on('close', () => this.#connected.next(false));
    // Without a listener mqtt.js would throw its connection errors out of the event loop.
    this.#client.on('error', (err) => this.#problem(err));
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
    return this.#inFlight;
  }

  /** The mqtt.js client, for what this class does not cover; do not end it yourself, call `stop()`. */
  get client(): MqttClient {
    return this.#client;
  }

  /** `<prefix>/<camera>/<recognized|unknown>` with the event as JSON, QoS 1; presence too if asked. */
  publish(event: FaceEvent): void {
    if (this.#stopping) throw new Error('MqttEventPublisher: publish after stop()');
    this.#enqueue({
      topic: `${this.prefix}/${mqttTopicLevel(event.camera)}/${event.type}`,
      payload: JSON.stringify(event),
      retain: false,
    });
    if (this.#presence && event.type === 'recognized' && event.name !== UNKNOWN) {
      this.#enqueue({
        topic: `${this.prefix}/person/${mqttTopicLevel(event.name)}`,
        payload: JSON.stringify({ camera: event.camera, ts: event.ts }),
        retain: true,
      });
    }
  }

  /**
   * A message made elsewhere (the face events node's events, last sightings, discovery configs,
   * status reports), through the same bounded queue as events, QoS 1. An object payload goes as
   * JSON. Topics with wildcards or empty levels at the ends are refused: a broker would drop them
   * silently.
   */
  publishMessage(topic: string, payload: unknown, options: { retain?: boolean } = {}): void {
    if (this.#stopping) throw new Error('MqttEventPublisher: publish after stop()');
    if (typeof topic !== 'string' || topic === '' || /[+#\0]/.test(topic) || topic.startsWith('$')) {
      throw new Error(`MqttEventPublisher: cannot publish to topic ${JSON.stringify(topic)}`);
    }
    const text =
      typeof payload === 'string'
        ? payload
        : Buffer.isBuffer(payload)
          ? payload.toString('utf8')
          : JSON.stringify(payload ?? '');
    this.#enqueue({ topic, payload: text, retain: options.retain === true });
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
    this.#client.publish(this.statusTopic, payload, { qos: 0, retain: false }, (err) => {
      if (err) this.#problem(err);
    });
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
    this.#connected.next(false);
    this.#connected.complete();
  }

  #end(force: boolean): Promise<boolean> {
    return new Promise((resolve) => this.#client.end(force, {}, () => resolve(true)));
  }

  #enqueue(message: Outgoing): void {
    this.#queue.push(message);
    while (this.#queue.length > this.queueLimit) {
      this.#queue.shift();
      this.dropped++;
    }
    this.#pump();
  }

  #pump(): void {
    while (this.connected && this.#inFlight < MAX_IN_FLIGHT && this.#queue.length > 0) {
      const message = this.#queue.shift() as Outgoing;
      this.#inFlight++;
      // For QoS 1 the callback comes with the broker's PUBACK, after a reconnect if need be.
      this.#client.publish(message.topic, message.payload, { qos: 1, retain: message.retain }, (err) => {
        this.#inFlight--;
        if (err) this.#problem(err);
        else this.delivered++;
        this.#pump();
      });
    }
    if (this.#queue.length === 0 && this.#inFlight === 0) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  #drained(deadline: number): Promise<boolean> {
    if (this.#queue.length === 0 && this.#inFlight === 0) return Promise.resolve(true);
    return withDeadline(
      deadline,
      new Promise<boolean>((resolve) => this.#drainWaiters.push(() => resolve(true))),
    );
  }

  #problem(err: Error): void {
    const masked = new Error(this.#mask(err.message));
    this.lastError = masked.message;
    this.#onError?.(masked);
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
