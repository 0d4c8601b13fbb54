/**
 * Gallery changes over MQTT (`<prefix>/gallery/<added|deleted|updated>`, docs/ARCHITECTURE.md), so that
 * instances sharing a broker keep their galleries alike. Each instance publishes its own changes
 * (QoS 1) and applies everyone else's; its own come back from the broker and are recognised by
 * `origin`. With a fixed `clientId` the broker keeps the subscription while an instance is away
 * (a persistent session), so changes made meanwhile arrive when it reconnects; an instance that
 * joins later starts from an export of another's gallery (`faceflow gallery export/import`).
 *
 * Only instances that share the secret can change each other's gallery: every message is signed
 * (syncAuth.ts) and a receiver refuses unsigned, wrongly signed, replayed and stale ones
 * (syncState.ts), counts them (`onRefused`) and logs them without letting a flood fill the log.
 * There is no way to run it without a secret: anyone who can publish on the broker could otherwise
 * enrol a stranger under a known name or delete a person.
 *
 * The messages hold face embeddings and thumbnails, which are personal data and are signed, not
 * encrypted: use a broker that only these instances can read (TLS, a password per instance and an
 * ACL, docs/gallery-sync.md; the URL's password is masked in errors).
 */
import { randomUUID } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

import type { GalleryChange } from '../gallery/sync';
import {
  checkSyncSecret,
  SYNC_REFUSAL_REASONS,
  SyncRefusal,
  syncKey,
  SyncSecretError,
  SyncSigner,
  type SyncBody,
  type SyncRefusalReason,
} from '../gallery/syncAuth';
import { SyncState } from '../gallery/syncState';
import { maskUrl, SecretMasker } from './maskUrl';
import { RateLimitedLog } from './rateLimitedLog';

export interface GallerySyncOptions {
  url: string;
  /** First topic level(s), default `faceflow`. */
  prefix?: string;
  username?: string;
  password?: string;
  /**
   * The secret every instance shares: 64 hex characters (a 32-byte key), a 32-byte Buffer or a
   * passphrase of 16 characters or more. Required: the constructor throws `SyncSecretError` without.
   */
  secret: string | Buffer;
  /**
   * Where the last applied message of each origin is remembered across restarts (syncState.ts);
   * without it a restart forgets, and only the time window stands between a replay and the gallery.
   */
  stateFile?: string;
  /** Messages signed longer ago are refused as stale, backlog from a time away excepted (24 h). */
  maxAgeMs?: number;
  /** Fixed per instance for a persistent session (missed changes delivered on reconnect). */
  clientId?: string;
  /** Applies a change that another instance made. */
  onRemoteChange: (change: GalleryChange) => Promise<void> | void;
  /** Every refused message, for metrics; the log gets a rate-limited line through `onError`. */
  onRefused?: (reason: SyncRefusalReason, message: string) => void;
  /** Connection problems, refusals and changes that could not be applied, passwords masked. */
  onError?: (err: Error) => void;
  onConnect?: () => void;
  onClose?: () => void;
  reconnectPeriodMs?: number;
  clientOptions?: Omit<IClientOptions, 'username' | 'password' | 'clientId' | 'reconnectPeriod' | 'clean'>;
}

/** How often, while connected, the state notes that this instance is still online. */
const ONLINE_NOTE_MS = 5 * 60 * 1000;

export class GallerySync {
  /**
   * Tells this instance's messages from the others' when the broker hands them back. New at every
   * start rather than kept: a copied flow or state file can then never give two instances one
   * origin (each would drop the other's changes as its own), and a new origin needs no memory of
   * the last `seq` it sent.
   */
  readonly origin = randomUUID();
  readonly #client: MqttClient;
  readonly #prefix: string;
  readonly #mask: SecretMasker;
  readonly #signer: Promise<SyncSigner>;
  readonly #state: SyncState;
  readonly #log: RateLimitedLog;
  readonly #refused = Object.fromEntries(SYNC_REFUSAL_REASONS.map((r) => [r, 0])) as Record<
    SyncRefusalReason,
    number
  >;
  #lastSeq = 0;
  #online = false;
  #onlineTimer: NodeJS.Timeout | undefined;
  // Remote changes are checked and applied one at a time, in the order the broker delivered them;
  // outgoing ones wait for the key and leave in the order they were made.
  #applying: Promise<void> = Promise.resolve();
  #sending: Promise<void> = Promise.resolve();
  /** This instance's changes not yet signed and handed to mqtt.js. */
  readonly #waiting: GalleryChange[] = [];

  constructor(private readonly options: GallerySyncOptions) {
    checkSyncSecret(options.secret);
    this.#prefix = (options.prefix ?? 'faceflow').replace(/\/+$/, '');
    if (/[+#]/.test(this.#prefix)) throw new Error(`gallery sync: the prefix '${this.#prefix}' holds + or #`);
    this.#mask = new SecretMasker(options.url);
    this.#log = new RateLimitedLog((line) => this.#error(new Error(line)));
    this.#state = new SyncState({
      file: options.stateFile,
      maxAgeMs: options.maxAgeMs,
      onProblem: (message) => this.#error(new Error(message)),
    });
    this.#signer = syncKey(options.secret).then((key) => new SyncSigner(key));
    // Never rejected unnoticed: every use of the signer goes through a chain that reports errors.
    this.#signer.catch(() => undefined);
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
      this.#online = true;
      this.#state.connected();
      this.#onlineTimer ??= setInterval(() => this.#online && this.#state.stillOnline(), ONLINE_NOTE_MS);
      this.#onlineTimer.unref();
      // A resumed persistent session still has the subscription; subscribing again is harmless.
      if (!ack.sessionPresent || !persistent) {
        this.#client.subscribe(topic, { qos: 1 }, (err) => err && this.#error(err));
      }
      this.#send();
      options.onConnect?.();
    });
    this.#client.on('close', () => {
      // Only the end of a connection: a failed reconnect attempt closes too, while away.
      if (this.#online) this.#state.stillOnline();
      this.#online = false;
      options.onClose?.();
    });
    this.#client.on('error', (err) => this.#error(err));
    this.#client.on('message', (t, payload, packet) => this.#receive(t, payload, packet.dup));
  }

  get connected(): boolean {
    return this.#client.connected;
  }

  /** Messages refused since the start, by reason. */
  get refused(): Readonly<Record<SyncRefusalReason, number>> {
    return { ...this.#refused };
  }

  /** Signs and publishes this instance's changes, or keeps them until the broker is back. */
  publish(changes: readonly GalleryChange[]): void {
    this.#waiting.push(...changes);
    this.#send();
  }

  /** Waits for the changes being applied and sent, then disconnects (after sending what is queued). */
  async close(): Promise<void> {
    await this.#applying;
    await this.#sending;
    clearInterval(this.#onlineTimer);
    if (this.#waiting.length > 0) {
      this.#error(
        new Error(
          `gallery sync: ${this.#waiting.length} change(s) not sent, the broker was away; ` +
            'the other instances miss them until the galleries are exported and imported again',
        ),
      );
    }
    await new Promise<void>((resolve) => this.#client.end(false, {}, () => resolve()));
  }

  /**
   * Signs and hands over the waiting changes while connected. They are numbered and timed when
   * signed, not when made: a change made while the broker was away for days then reaches the others
   * as fresh, where signed at once it would arrive stale. Called again on every connect, which
   * mqtt.js emits after resending what was in flight, so the numbers still arrive in order.
   */
  #send(): void {
    this.#sending = this.#sending
      .then(() => this.#signer)
      .then((signer) => {
        if (!this.#client.connected) return;
        for (const change of this.#waiting.splice(0)) {
          const topic = `${this.#prefix}/gallery/${change.type}`;
          const body: SyncBody = {
            origin: this.origin,
            seq: this.#nextSeq(),
            sentAt: new Date().toISOString(),
            change,
          };
          this.#client.publish(topic, signer.seal(topic, body), { qos: 1 }, (err) => err && this.#error(err));
        }
      })
      .catch((err: Error) => this.#error(err));
  }

  /**
   * Increasing for as long as this origin lives. Time-based (microseconds since 1970, safe as a
   * JavaScript integer until the year 2255) rather than 1, 2, 3: the number then also says roughly
   * when, and stays increasing even if an origin were ever reused after a restart.
   */
  #nextSeq(): number {
    this.#lastSeq = Math.max(this.#lastSeq + 1, Date.now() * 1000);
    return this.#lastSeq;
  }

  #receive(topic: string, payload: Buffer, redelivered: boolean): void {
    this.#applying = this.#applying
      .then(async () => {
        const signer = await this.#signer;
        let opened: { body: SyncBody; sig: string };
        try {
          opened = signer.open(topic, payload);
        } catch (err) {
          if (err instanceof SyncRefusal) return this.#refuse(topic, err);
          throw err;
        }
        const { body, sig } = opened;
        if (body.origin === this.origin) return;
        const verdict = this.#state.judge(body, sig, redelivered);
        if (verdict.kind === 'duplicate') return;
        if (verdict.kind === 'refuse')
          return this.#refuse(topic, new SyncRefusal(verdict.reason, verdict.message));
        try {
          await this.options.onRemoteChange(body.change);
        } finally {
          // Remembered even when it could not be applied: it would fail the same way again.
          this.#state.applied(body, sig);
        }
      })
      .catch((err: Error) =>
        this.#error(new Error(`gallery sync: ${topic} from another instance: ${err.message}`)),
      );
  }

  #refuse(topic: string, refusal: SyncRefusal): void {
    this.#refused[refusal.reason]++;
    this.options.onRefused?.(refusal.reason, refusal.message);
    this.#log.note(
      refusal.reason,
      `gallery sync: refused a message on ${topic} (${refusal.reason.replace('_', ' ')}: ${refusal.message}); ` +
        'the gallery is unchanged',
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

/** A gallery's sync as its holder keeps it: the client when it could start, its state for reports, and its close. */
export interface GallerySyncLink {
  readonly client: GallerySync | undefined;
  status(): {
    /** `off`: configured but not started (see `error`). */
    state: 'connected' | 'disconnected' | 'off';
    refused: Record<string, number>;
    error?: string;
  };
  close(): Promise<void>;
}

export interface GallerySyncLinkOptions extends GallerySyncOptions {
  /** Told once, at the first connection (the URL's password masked). */
  log?: (text: string) => void;
  /** Why the sync could not start, e.g. no secret; it then stays off. */
  failed?: (message: string) => void;
  /** Said after a missing or weak secret: where the holder sets it. */
  secretHint?: string;
}

/**
 * Starts a gallery's sync without throwing: a sync that cannot start (no shared secret: an open sync
 * would let anyone who can publish on the broker change the gallery) is off, and says why in its status.
 */
export function startGallerySync(options: GallerySyncLinkOptions): GallerySyncLink {
  let client: GallerySync | undefined;
  let error: string | undefined;
  let wasConnected = false;
  try {
    client = new GallerySync({
      ...options,
      onConnect: () => {
        if (!wasConnected) options.log?.(`gallery sync: connected to ${maskUrl(options.url)}`);
        wasConnected = true;
        options.onConnect?.();
      },
    });
  } catch (err) {
    const hint = err instanceof SyncSecretError && options.secretHint ? `: ${options.secretHint}` : '';
    error = `${(err as Error).message}${hint}; sync is off`;
    options.failed?.(error);
  }
  return {
    client,
    status: () => ({
      state: client ? (client.connected ? 'connected' : 'disconnected') : 'off',
      refused: client ? { ...client.refused } : {},
      ...(error === undefined ? {} : { error }),
    }),
    close: async () => client?.close(),
  };
}
