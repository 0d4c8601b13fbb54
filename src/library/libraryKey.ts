/**
 * The key of an encrypted photo library: the same kinds of key as a gallery file (a passphrase stretched with
 * scrypt and a salt kept in the file, or a raw 32-byte key), and AES-256-GCM per record (recordLog.ts seals the
 * bodies). The key record in the file holds the salt and a sealed known text that tells a wrong key at once,
 * before any record is read.
 */
import {
  decrypt,
  deriveKey,
  encrypt,
  GalleryKeyError,
  IV_BYTES,
  parseKey,
  randomSalt,
  TAG_BYTES,
  type KeySource,
} from '../gallery/crypto';
import type { RecordSealer } from './recordLog';

/** A key that is unusable, missing, or not the one of the library. */
export class LibraryKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LibraryKeyError';
  }
}

/** What the clear-text first record of an encrypted library says. */
interface KeyRecord {
  cipher: 'aes-256-gcm';
  kdf: 'scrypt' | 'raw';
  /** Hex; with scrypt only. */
  salt?: string;
  /** Base64 of the known text sealed with the key. */
  check: string;
}

const CHECK_TEXT = Buffer.from('faceflow photo library key check', 'utf8');

function sealerFor(key: Buffer): RecordSealer {
  return {
    seal(body) {
      const { iv, tag, ciphertext } = encrypt(key, body);
      return Buffer.concat([iv, tag, ciphertext]);
    },
    unseal(sealed) {
      if (sealed.length < IV_BYTES + TAG_BYTES) throw new LibraryKeyError('sealed record too short');
      return decrypt(key, {
        iv: sealed.subarray(0, IV_BYTES),
        tag: sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES),
        ciphertext: sealed.subarray(IV_BYTES + TAG_BYTES),
      });
    },
  };
}

function checkedKey(key: string | Buffer): KeySource {
  try {
    return parseKey(key);
  } catch (err) {
    throw new LibraryKeyError((err as Error).message.replace(/\bgallery\b/g, 'library'));
  }
}

/** A new key record and the sealer for a new encrypted library. */
export async function newLibraryKey(
  key: string | Buffer,
): Promise<{ record: KeyRecord; sealer: RecordSealer }> {
  const source = checkedKey(key);
  let raw: Buffer;
  let record: Omit<KeyRecord, 'check'>;
  if (source.kind === 'raw') {
    raw = source.key;
    record = { cipher: 'aes-256-gcm', kdf: 'raw' };
  } else {
    const salt = randomSalt();
    raw = await deriveKey(source.passphrase, salt);
    record = { cipher: 'aes-256-gcm', kdf: 'scrypt', salt: salt.toString('hex') };
  }
  const sealer = sealerFor(raw);
  return { record: { ...record, check: sealer.seal(CHECK_TEXT).toString('base64') }, sealer };
}

/** The sealer of an encrypted library, from its key record and the key given; refuses a wrong key. */
export async function unlockLibrary(
  json: unknown,
  key: string | Buffer | undefined,
  file: string,
): Promise<RecordSealer> {
  if (key === undefined || key === '') {
    throw new LibraryKeyError(`${file} is encrypted: give its key`);
  }
  const record = json as Partial<KeyRecord> | null;
  if (!record || record.cipher !== 'aes-256-gcm' || typeof record.check !== 'string') {
    throw new LibraryKeyError(`${file}: unknown encryption (${JSON.stringify(record?.cipher)})`);
  }
  const source = checkedKey(key);
  let raw: Buffer;
  if (record.kdf === 'scrypt' && typeof record.salt === 'string') {
    if (source.kind === 'raw')
      throw new LibraryKeyError(`${file} was encrypted with a passphrase, not a raw key`);
    raw = await deriveKey(source.passphrase, Buffer.from(record.salt, 'hex'));
  } else if (record.kdf === 'raw') {
    if (source.kind !== 'raw')
      throw new LibraryKeyError(`${file} was encrypted with a raw key, not a passphrase`);
    raw = source.key;
  } else {
    throw new LibraryKeyError(`${file}: unknown key derivation ${JSON.stringify(record.kdf)}`);
  }
  const sealer = sealerFor(raw);
  let check: Buffer;
  try {
    check = sealer.unseal(Buffer.from(record.check, 'base64'));
  } catch (err) {
    if (err instanceof GalleryKeyError || err instanceof LibraryKeyError) {
      throw new LibraryKeyError(`${file}: wrong key`);
    }
    throw err;
  }
  if (!check.equals(CHECK_TEXT)) throw new LibraryKeyError(`${file}: wrong key`);
  return sealer;
}
