/**
 * Signed gallery changes: who may change a synced gallery is whoever holds the shared secret, not
 * whoever can reach the broker.
 *
 * A message on the wire is `{"v":1,"sig":"<base64 HMAC-SHA256>","body":"<JSON text>"}`. The MAC is
 * over the body's exact bytes (the string as sent, never a re-serialisation, so no JSON
 * canonicalisation is needed) together with the topic, so a change cannot be moved to another
 * prefix or another change type. The body holds the sender's `origin`, its `seq` and `sentAt`
 * (what syncState.ts judges replays and staleness by) and the change itself.
 */
import { createHash, createHmac, scrypt, timingSafeEqual } from 'node:crypto';

import type { GalleryChange } from './sync';

export const SYNC_ENVELOPE_VERSION = 1;
export const SYNC_KEY_BYTES = 32;
export const MIN_SYNC_PASSPHRASE_LENGTH = 16;

/** Why a message was not applied; the values are the `reason` label of the refusal metric. */
export type SyncRefusalReason = 'unsigned' | 'bad_signature' | 'replay' | 'stale' | 'malformed';
export const SYNC_REFUSAL_REASONS: readonly SyncRefusalReason[] = [
  'unsigned',
  'bad_signature',
  'replay',
  'stale',
  'malformed',
];

/** The signed part of a message. */
export interface SyncBody {
  /** The sending instance (a new one each time it starts, see gallerySync.ts). */
  origin: string;
  /** Increasing per origin; a receiver refuses one not above the last it applied from that origin. */
  seq: number;
  /** When it was sent (ISO 8601), by the sender's clock. */
  sentAt: string;
  change: GalleryChange;
}

/** A message that is not applied, with the reason counted in the metrics. */
export class SyncRefusal extends Error {
  constructor(
    readonly reason: SyncRefusalReason,
    message: string,
  ) {
    super(message);
    this.name = 'SyncRefusal';
  }
}

/** A secret that is missing or too weak to sign with. */
export class SyncSecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SyncSecretError';
  }
}

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
// Every instance must derive the same key from the same passphrase without talking first, so the
// scrypt salt is fixed: it only keeps faceflow's derivations apart from other uses of a passphrase.
const PASSPHRASE_SALT = createHash('sha256').update('faceflow gallery sync v1').digest().subarray(0, 16);
// Stronger than the gallery file's: anyone who can read the broker can try passphrases offline
// against any captured message, and a derivation happens only once per start.
const SCRYPT_PARAMS = { N: 1 << 16, r: 8, p: 1, maxmem: 128 * 1024 * 1024 } as const;

/**
 * Checks a shared secret without deriving it: a 32-byte Buffer, 64 hex characters (a random key,
 * e.g. `openssl rand -hex 32`) or a passphrase of at least 16 characters.
 */
export function checkSyncSecret(secret: string | Buffer | undefined): void {
  if (secret === undefined || secret === '') {
    throw new SyncSecretError('gallery sync needs a shared secret (the same on every instance)');
  }
  if (Buffer.isBuffer(secret)) {
    if (secret.length !== SYNC_KEY_BYTES) {
      throw new SyncSecretError(`a gallery sync key must be ${SYNC_KEY_BYTES} bytes, not ${secret.length}`);
    }
    return;
  }
  if (typeof secret !== 'string') throw new SyncSecretError('a gallery sync secret must be text or bytes');
  if (!HEX_KEY.test(secret) && secret.length < MIN_SYNC_PASSPHRASE_LENGTH) {
    throw new SyncSecretError(
      `a gallery sync passphrase needs at least ${MIN_SYNC_PASSPHRASE_LENGTH} characters ` +
        `(got ${secret.length}); or give 64 hex characters (openssl rand -hex 32)`,
    );
  }
}

/** The HMAC key of a secret: a raw key as is, a passphrase stretched with scrypt. */
export async function syncKey(secret: string | Buffer): Promise<Buffer> {
  checkSyncSecret(secret);
  if (Buffer.isBuffer(secret)) return Buffer.from(secret);
  if (HEX_KEY.test(secret)) return Buffer.from(secret, 'hex');
  return new Promise((resolve, reject) =>
    scrypt(secret.normalize('NFC'), PASSPHRASE_SALT, SYNC_KEY_BYTES, SCRYPT_PARAMS, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/** Signs outgoing messages and checks incoming ones with one key. */
export class SyncSigner {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== SYNC_KEY_BYTES)
      throw new SyncSecretError(`a gallery sync key must be ${SYNC_KEY_BYTES} bytes`);
    this.#key = Buffer.from(key);
  }

  /** The message to publish on `topic`. */
  seal(topic: string, body: SyncBody): string {
    const text = JSON.stringify(body);
    return JSON.stringify({
      v: SYNC_ENVELOPE_VERSION,
      sig: this.#mac(topic, text).toString('base64'),
      body: text,
    });
  }

  /**
   * The body of a message that `seal` made with the same key for this topic; throws a
   * `SyncRefusal` for anything else. The signature is checked before the body is even parsed.
   */
  open(topic: string, payload: Buffer): { body: SyncBody; sig: string } {
    let envelope: unknown;
    try {
      envelope = JSON.parse(payload.toString('utf8'));
    } catch {
      throw new SyncRefusal('malformed', 'not JSON');
    }
    if (!isObject(envelope)) throw new SyncRefusal('malformed', 'not a JSON object');
    if (envelope.sig === undefined) throw new SyncRefusal('unsigned', 'no signature');
    if (envelope.v !== SYNC_ENVELOPE_VERSION) {
      throw new SyncRefusal('malformed', `envelope version ${JSON.stringify(envelope.v)}, expected 1`);
    }
    const { sig, body } = envelope;
    if (typeof sig !== 'string' || typeof body !== 'string') {
      throw new SyncRefusal('malformed', 'sig and body must be strings');
    }
    const given = Buffer.from(sig, 'base64');
    const expected = this.#mac(topic, body);
    // The length of an HMAC-SHA256 is public; only the comparison of equal lengths must be constant-time.
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new SyncRefusal('bad_signature', 'the signature does not match (another secret, or altered)');
    }
    return { body: checkBody(topic, body), sig };
  }

  #mac(topic: string, body: string): Buffer {
    return createHmac('sha256', this.#key)
      .update(`faceflow-gallery-sync/${SYNC_ENVELOPE_VERSION}\n${topic}\n`, 'utf8')
      .update(body, 'utf8')
      .digest();
  }
}

function checkBody(topic: string, text: string): SyncBody {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new SyncRefusal('malformed', 'the signed body is not JSON');
  }
  if (!isObject(body)) throw new SyncRefusal('malformed', 'the signed body is not an object');
  const { origin, seq, sentAt, change } = body;
  if (typeof origin !== 'string' || origin === '' || origin.length > 100) {
    throw new SyncRefusal('malformed', 'no origin');
  }
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq <= 0) {
    throw new SyncRefusal('malformed', 'no sequence number');
  }
  if (typeof sentAt !== 'string' || Number.isNaN(Date.parse(sentAt))) {
    throw new SyncRefusal('malformed', 'no time of sending');
  }
  if (!isObject(change) || typeof change.type !== 'string') throw new SyncRefusal('malformed', 'no change');
  if (topic.split('/').pop() !== change.type) {
    throw new SyncRefusal('malformed', `a '${change.type}' change on ${topic}`);
  }
  return body as unknown as SyncBody;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
