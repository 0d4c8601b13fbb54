/**
 * Gallery changes over MQTT (`<prefix>/gallery/<added|deleted|updated>`, DESIGN.md), so that
 * instances sharing a broker keep their galleries alike. Each instance publishes its own changes
 * (QoS 1) and applies everyone else's; its own come back from the broker and are recognised by
 * `origin`. With a fixed `clientId` the broker keeps the subscription while an instance is away
 * (a persistent session), so changes made meanwhile arrive when it reconnects; an instance that
 * joins later starts from an export of another's gallery (`faceflow gallery export/import`).
 *
 * The messages hold face embeddings and thumbnails, which are personal data: use a broker that
 * only these instances can read (TLS and a password; the URL's password is masked in errors).
 */
import { randomUUID } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

import type { GalleryChange } from '../gallery/sync';
import { maskUrl, SecretMasker } from './maskUrl';

export interface GallerySyncOptions {
  url: string;
  /** First topic level(s), default `faceflow`. */
  prefix?: string;
  username?: string;
  password?: string;
  /** Fixed per instance for a persistent session (missed changes delivered on reconnect). */
  clientId?: string;
  /** Applies a change that another instance made. */
  onRemoteChange: (change: GalleryChange) => Promise<void> | void;
  /** Connection problems and changes that could not be applied, passwords masked. */
  onError?: (err: Error) => void;
  onConnect?: () => void;
  onClose?: () => void;
  reconnectPeriodMs?: number;
  clientOptions?: Omit<IClientOptions, 'username' | 'password' | 'clientId' | 'reconnectPeriod' | 'clean'>;
}

type Wire = GalleryChange & { origin: string };

export class GallerySync {
  /** Tells this instance's messages from the others' when the broker hands them back. */
  readonly origin = randomUUID();
  readonly #client: MqttClient;
  readonly #prefix: string;
  readonly #mask: SecretMasker;
  // Remote changes are applied one at a time, in the order the broker delivered them.
  #applying: Promise<void> = Promise.resolve();

  constructor(private readonly options: GallerySyncOptions) {
    this.#prefix = (options.prefix ?? 'faceflow').replace(/\/+$/, '');
    if (/[+#]/.test(this.#prefix)) throw new Error(`gallery sync: the prefix '${this.#prefix}' holds + or #`);
    this.#mask = new SecretMasker(options.url);
    const persistent = options.clientId !== undefined;
    this.#client = mqtt.connect(options.url, {
      ...options.clientOptions,
      username: options.username,
      password: options.password,
      clientId: options.clientId ?? `faceflow-gallery-${this.origin.slice(0, 8)}`,
      clean: !persistent,
      reconnectPeriod: options.reconnectPeriodMs ?? 2000,
    });
    const topic = `${this.#prefix}/gallery/+`;
    this.#client.on('connect', (ack) => {
      // A resumed persistent session still has the subscription; subscribing again is harmless.
      if (!ack.sessionPresent || !persistent) {
        this.#client.subscribe(topic, { qos: 1 }, (err) => err && this.#error(err));
      }
      options.onConnect?.();
    });
    this.#client.on('close', () => options.onClose?.());
    this.#client.on('error', (err) => this.#error(err));
    this.#client.on('message', (t, payload) => this.#receive(t, payload));
  }

  get connected(): boolean {
    return this.#client.connected;
  }

  /** Publishes this instance's changes; mqtt.js keeps them while the broker is away. */
  publish(changes: readonly GalleryChange[]): void {
    for (const change of changes) {
      const wire: Wire = { ...change, origin: this.origin };
      this.#client.publish(
        `${this.#prefix}/gallery/${change.type}`,
        JSON.stringify(wire),
        { qos: 1 },
        (err) => {
          if (err) this.#error(err);
        },
      );
    }
  }

  /** Waits for the changes being applied, then disconnects (after sending what is queued). */
  async close(): Promise<void> {
    await this.#applying;
    await new Promise<void>((resolve) => this.#client.end(false, {}, () => resolve()));
  }

  #receive(topic: string, payload: Buffer): void {
    let wire: Wire;
    try {
      wire = JSON.parse(payload.toString('utf8')) as Wire;
    } catch {
      this.#error(new Error(`gallery sync: ${topic} is not JSON`));
      return;
    }
    if (wire?.origin === this.origin) return;
    const { origin: _origin, ...change } = wire;
    void _origin;
    this.#applying = this.#applying
      .then(() => this.options.onRemoteChange(change as GalleryChange))
      .catch((err: Error) =>
        this.#error(new Error(`gallery sync: ${topic} from another instance: ${err.message}`)),
      );
  }

  #error(err: Error): void {
    let message = this.#mask.mask(maskUrl(err.message));
    if (this.options.password) message = message.split(this.options.password).join('***');
    this.options.onError?.(
      new Error(message.startsWith('gallery sync') ? message : `gallery sync: ${message}`),
    );
  }
}
