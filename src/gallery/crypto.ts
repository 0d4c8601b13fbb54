/**
 * Key handling and authenticated encryption for gallery files.
 *
 * A key is given as one of:
 *  - a 32-byte `Buffer` (used as the AES-256 key as is),
 *  - a 64-character hex string (decoded to 32 bytes and used as is),
 *  - any other string of at least {@link MIN_PASSPHRASE_LENGTH} characters: a passphrase, stretched with scrypt
 *    and a random per-file salt that is stored (in the clear) in the file header.
 *
 * Encryption is AES-256-GCM with a random 12-byte IV per write and a 16-byte authentication tag, so a wrong key
 * or a tampered file fails to decrypt instead of producing garbage.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';

export const KEY_BYTES = 32;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;
export const SALT_BYTES = 16;
export const MIN_PASSPHRASE_LENGTH = 8;

/** scrypt cost parameters (about 32 MiB and ~0.1 s per derivation); part of file format version 1. */
export const SCRYPT_PARAMS = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

export type KeyErrorCode = 'BAD_KEY' | 'WRONG_KEY';

/** A key that is unusable (`BAD_KEY`) or does not open the file (`WRONG_KEY`). */
export class GalleryKeyError extends Error {
  constructor(
    readonly code: KeyErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'GalleryKeyError';
  }
}

/** A validated key: either the raw AES key or a passphrase still to be stretched with a file's salt. */
export type KeySource = { kind: 'raw'; key: Buffer } | { kind: 'passphrase'; passphrase: string };

const HEX_KEY = /^[0-9a-fA-F]{64}$/;

/** Validates a user-supplied key; throws {@link GalleryKeyError} (`BAD_KEY`) with the reason when unusable. */
export function parseKey(key: Buffer | string): KeySource {
  if (Buffer.isBuffer(key)) {
    if (key.length !== KEY_BYTES) {
      throw new GalleryKeyError(
        'BAD_KEY',
        `gallery key must be ${KEY_BYTES} bytes, got ${key.length} (or pass a 64-char hex string or a passphrase)`,
      );
    }
    return { kind: 'raw', key: Buffer.from(key) };
  }
  if (typeof key !== 'string') {
    throw new GalleryKeyError(
      'BAD_KEY',
      'gallery key must be a 32-byte Buffer, a 64-char hex string or a passphrase',
    );
  }
  if (HEX_KEY.test(key)) return { kind: 'raw', key: Buffer.from(key, 'hex') };
  if (key.length < MIN_PASSPHRASE_LENGTH) {
    throw new GalleryKeyError(
      'BAD_KEY',
      `gallery passphrase must be at least ${MIN_PASSPHRASE_LENGTH} characters (got ${key.length})`,
    );
  }
  return { kind: 'passphrase', passphrase: key };
}

/** Stretches a passphrase into a 32-byte key with scrypt and the given salt. */
export function deriveKey(passphrase: string, salt: Buffer): Promise<Buffer> {
  if (salt.length !== SALT_BYTES) {
    return Promise.reject(new GalleryKeyError('BAD_KEY', `scrypt salt must be ${SALT_BYTES} bytes`));
  }
  return new Promise((resolve, reject) => {
    scrypt(passphrase, salt, KEY_BYTES, SCRYPT_PARAMS, (err, derived) =>
      err ? reject(err) : resolve(derived),
    );
  });
}

export function randomSalt(): Buffer {
  return randomBytes(SALT_BYTES);
}

export interface Sealed {
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

/** AES-256-GCM with a fresh random IV; `aad` is authenticated but not encrypted. */
export function encrypt(key: Buffer, plaintext: Buffer, aad?: Buffer): Sealed {
  if (key.length !== KEY_BYTES)
    throw new GalleryKeyError('BAD_KEY', `AES-256 key must be ${KEY_BYTES} bytes`);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  if (aad) cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), ciphertext };
}

/** Inverse of {@link encrypt}; throws {@link GalleryKeyError} (`WRONG_KEY`) when authentication fails. */
export function decrypt(key: Buffer, sealed: Sealed, aad?: Buffer): Buffer {
  if (key.length !== KEY_BYTES)
    throw new GalleryKeyError('BAD_KEY', `AES-256 key must be ${KEY_BYTES} bytes`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.iv, { authTagLength: TAG_BYTES });
    if (aad) decipher.setAAD(aad);
    decipher.setAuthTag(sealed.tag);
    return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
  } catch {
    throw new GalleryKeyError('WRONG_KEY', 'cannot decrypt gallery: wrong key or corrupt file');
  }
}
