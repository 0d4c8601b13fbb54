/**
 * An append-only file of checksummed records: the storage under a photo library (libraryDb.ts).
 *
 * Why not SQLite: the maintained drivers are native addons (better-sqlite3 downloads a prebuilt
 * binary from GitHub at install, which this package may not do, and otherwise needs a compiler and
 * Node's headers), `node:sqlite` needs Node 22, and sql.js keeps the whole database in memory and
 * rewrites it on every save. A library scan only ever adds facts ("this file has this content",
 * "these faces are Ann"), reads them all back at start, and is interrupted at any moment by Ctrl+C
 * or a crash; an append-only log fits that exactly, needs no dependency, and a crash can only ever
 * cut its last record short, which is detected by the checksum and dropped, so the next scan redoes
 * that one photo. Damage anywhere else (a flipped bit on disk, an outside edit) is told from that by
 * the readable records after it (resync.ts finds them), and is never cut: reading refuses or skips
 * it, and `faceflow library repair` (repair.ts) rewrites the file without it.
 *
 * Layout (integers little-endian):
 *   header, 16 bytes: magic `FFLIB` ‖ u8 0 ‖ u16 format version ‖ 8 reserved zero bytes
 *   records:          u32 body length ‖ u32 CRC-32 of the body ‖ body
 *   body:             u8 record type ‖ u32 JSON length ‖ UTF-8 JSON ‖ binary tail (any length)
 *
 * Version 2 is the same with every body sealed (encrypted and authenticated, see RecordSealer) except
 * the first record's, which says how to get the key (type KEY_RECORD, JSON only, in the clear). The CRC
 * covers the sealed bytes, so a torn tail is told from damage without the key.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { crc32 } from './crc32';
import { findNextRecord, type RecordFrame } from './resync';

export { crc32 } from './crc32';

export const LOG_MAGIC = 'FFLIB';
export const LOG_VERSION = 1;
/** The version of a log whose record bodies are sealed. */
export const LOG_VERSION_SEALED = 2;
/** The first record of a sealed log: how its key is made (salt, check), never the key. */
export const KEY_RECORD = 0xf0;
export const HEADER_BYTES = 16;
const RECORD_HEAD = 8;
const BODY_HEAD = 5;
/** No record is anywhere near this; a larger length is damage, not a record. */
const MAX_BODY = 256 * 1024 * 1024;
const FRAME: RecordFrame = { headBytes: RECORD_HEAD, minBody: BODY_HEAD, maxBody: MAX_BODY };

export class RecordLogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecordLogError';
  }
}

export interface LogRecord {
  type: number;
  json: unknown;
  /** The binary tail, a view into a buffer owned by the caller. */
  blob: Buffer;
  /** Where the record starts in the file, and where its binary tail starts. */
  offset: number;
  blobOffset: number;
  /** Whole record in bytes, header included: for copying it verbatim. */
  length: number;
}

/** Encrypts and authenticates record bodies; `unseal` throws when the bytes were not sealed with this key. */
export interface RecordSealer {
  seal(body: Buffer): Buffer;
  unseal(sealed: Buffer): Buffer;
}

export interface ReadResult {
  records: number;
  /** The log's bodies are sealed (version 2). */
  sealed: boolean;
  /** Bytes of a record cut short by a crash at the end of the file: removed when repairing. */
  truncatedBytes: number;
  /** Stretches skipped as damage in the middle (only when asked to skip them). */
  damage: DamagedRange[];
}

/** One record's bytes, ready to append; its body sealed when a sealer is given. */
export function encodeRecord(
  type: number,
  json: unknown,
  blob: Buffer = Buffer.alloc(0),
  sealer?: RecordSealer,
): Buffer {
  if (!Number.isInteger(type) || type < 0 || type > 255) throw new RecordLogError(`bad record type ${type}`);
  const text = Buffer.from(JSON.stringify(json), 'utf8');
  const plainLength = BODY_HEAD + text.length + blob.length;
  if (plainLength > MAX_BODY) throw new RecordLogError(`record of ${plainLength} bytes is too large`);
  const plain = Buffer.alloc(plainLength);
  plain.writeUInt8(type, 0);
  plain.writeUInt32LE(text.length, 1);
  text.copy(plain, BODY_HEAD);
  blob.copy(plain, BODY_HEAD + text.length);
  const body = sealer ? sealer.seal(plain) : plain;
  const out = Buffer.alloc(RECORD_HEAD + body.length);
  out.writeUInt32LE(body.length, 0);
  out.writeUInt32LE(crc32(body), 4);
  body.copy(out, RECORD_HEAD);
  return out;
}

/** Type, JSON and binary tail of a plain body; `where` names the record in errors. */
function decodeBody(
  body: Buffer,
  where: () => RecordLogError,
): { type: number; json: unknown; blobStart: number } {
  if (body.length < BODY_HEAD) throw where();
  const jsonLength = body.readUInt32LE(1);
  if (BODY_HEAD + jsonLength > body.length) throw where();
  try {
    return {
      type: body.readUInt8(0),
      json: JSON.parse(body.toString('utf8', BODY_HEAD, BODY_HEAD + jsonLength)),
      blobStart: BODY_HEAD + jsonLength,
    };
  } catch {
    throw where();
  }
}

/** A body as it was encoded: unsealed in a sealed log; `fail` makes the error for one that does not decrypt. */
function plainBody(body: Buffer, sealer: RecordSealer | undefined, fail: () => RecordLogError): Buffer {
  if (!sealer) return body;
  try {
    return sealer.unseal(body);
  } catch {
    throw fail();
  }
}

function header(version: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.write(LOG_MAGIC, 0, 'latin1');
  h.writeUInt16LE(version, 6);
  return h;
}

/** A stretch of the file that holds no readable record, with readable records after it. */
export interface DamagedRange {
  /** Where the unreadable bytes start: the start of the record that could not be read. */
  offset: number;
  /** How many bytes up to the next readable record. */
  bytes: number;
  /** The number the unreadable record has in the file (1: the first record after the header). */
  record: number;
  /** What was wrong with it (checksum mismatch, impossible record length, ...). */
  reason: string;
}

/**
 * Damage in the middle of a log: a bad record with readable records after it. A crash only ever
 * cuts the last record short, so this is disk damage or an outside edit, and cutting the file
 * there would throw the good records after it away; the file is left as it is.
 */
export class LogDamageError extends RecordLogError {
  constructor(
    readonly file: string,
    readonly damage: DamagedRange,
    /** False for a last record with a good checksum and bad contents: damage too, with nothing after it. */
    recordsAfter = true,
  ) {
    super(
      `${file}: damaged at byte ${damage.offset} (${damage.reason}) ` +
        (recordsAfter ? 'with more records after it: ' : 'in its last record, whose checksum is good: ') +
        `record ${damage.record} and the ${damage.bytes} bytes up to byte ${damage.offset + damage.bytes} ` +
        'cannot be read. A crash only ever cuts the last record short, so this is disk damage or an ' +
        'outside edit, and nothing was changed. ' +
        `Run 'faceflow library repair --db ${file}' to keep every readable record (the damaged file is ` +
        'kept beside it), or restore the file from a backup.',
    );
    this.name = 'LogDamageError';
  }
}

/** What to do with damage in the middle of the log. */
export type DamagePolicy =
  /** Refuse with a {@link LogDamageError} (the default). */
  | 'refuse'
  /** Go on at the next readable record, listing what was skipped in `damage` (reading and repair). */
  | 'skip';

/**
 * Reads every record in order, calling `onRecord` for each.
 *
 * A bad record (length out of range, checksum mismatch) is told apart by what follows it: the
 * rest of the file is searched byte by byte for a whole record with a good checksum (and, in a
 * sealed log, one that decrypts). When there is none, the bad bytes are the last record cut short
 * by a crash: with `repair` set they are cut off the file, and counted either way. When there is
 * one, the bad record is damage in the middle, and the file is never cut: `onDamage` says whether
 * to refuse or to skip to the readable record. A record whose checksum is good but whose contents
 * do not decode (or decrypt) is damage wherever it is: a crash cannot leave a good checksum behind.
 */
export async function readLog(
  file: string,
  onRecord: (record: LogRecord) => void,
  options: {
    repair?: boolean;
    /** Middle damage: refuse (default) or skip; skipping is for reading only, never with `repair`. */
    onDamage?: DamagePolicy;
    /** Called with the key record of a sealed log; gives the sealer of its bodies, or throws (no key, wrong key). */
    unlock?: (keyRecord: unknown) => Promise<RecordSealer>;
  } = {},
): Promise<ReadResult> {
  const skipDamage = options.onDamage === 'skip';
  if (skipDamage && options.repair) throw new RecordLogError('damage is skipped only when reading');
  const handle = await fs.open(file, options.repair ? 'r+' : 'r');
  try {
    const size = (await handle.stat()).size;
    const head = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await handle.read(head, 0, HEADER_BYTES, 0);
    if (bytesRead < HEADER_BYTES || head.toString('latin1', 0, 5) !== LOG_MAGIC) {
      throw new RecordLogError(`${file}: not a faceflow library file`);
    }
    const version = head.readUInt16LE(6);
    if (version !== LOG_VERSION && version !== LOG_VERSION_SEALED) {
      throw new RecordLogError(
        `${file}: library format version ${version} is not supported (this faceflow reads ${LOG_VERSION} and ${LOG_VERSION_SEALED})`,
      );
    }
    const sealed = version === LOG_VERSION_SEALED;
    let sealer: RecordSealer | undefined;
    let offset = HEADER_BYTES;
    let records = 0;
    /** Records met so far, good or bad, key record included: the number of the next one is this plus 1. */
    let seen = 0;
    const damage: DamagedRange[] = [];
    const noKeyRecord = () => new RecordLogError(`${file}: encrypted library without its key record`);
    const recordHead = Buffer.alloc(RECORD_HEAD);

    /** The decoded record at `at` whose body passed its checksum; throws what is wrong with it. */
    const decode = (at: number, body: Buffer) => {
      const plain = plainBody(body, sealer, () =>
        damaged(at, 'a record that does not decrypt with the key that opened the file'),
      );
      return { plain, ...decodeBody(plain, () => damaged(at, 'unreadable record')) };
    };
    /** A bad record at `offset`: skipped or refused when a readable record follows; else a torn tail. */
    const badRecord = async (reason: string, knownEnd?: number): Promise<ReadResult | undefined> => {
      // Before the key record nothing can be checked for real, and nothing can be read without it.
      if (sealed && !sealer) throw noKeyRecord();
      // A record with a good checksum has a known end; anything else may hide the next record anywhere.
      const next = await findNextRecord(handle, knownEnd ?? offset + 1, size, FRAME, isReadableAt);
      if (next === undefined) {
        if (knownEnd !== undefined) {
          // Good checksum, bad contents, nothing readable after: still not a crash's doing.
          const range = { offset, bytes: size - offset, record: seen + 1, reason };
          if (!skipDamage) throw new LogDamageError(file, range, false);
          damage.push(range);
          return { records, sealed, truncatedBytes: 0, damage };
        }
        const truncatedBytes = size - offset;
        if (options.repair) await handle.truncate(offset);
        return { records, sealed, truncatedBytes, damage };
      }
      const range = { offset, bytes: next - offset, record: seen + 1, reason };
      if (!skipDamage) throw new LogDamageError(file, range);
      damage.push(range);
      seen++;
      offset = next;
      return undefined;
    };
    /** Whether a whole record that passes its checksum and decodes starts at `at`. */
    const isReadableAt = async (at: number): Promise<boolean> => {
      const body = await checkedBody(handle, at, size);
      if (!body) return false;
      try {
        decode(at, body);
        return true;
      } catch {
        return false;
      }
    };
    const damaged = (at: number, why: string) =>
      new LogDamageError(file, { offset: at, bytes: 0, record: seen + 1, reason: why });

    while (offset < size) {
      if (size - offset < RECORD_HEAD) {
        const done = await badRecord('a record head cut short');
        if (done) return done;
        continue;
      }
      await handle.read(recordHead, 0, RECORD_HEAD, offset);
      const bodyLength = recordHead.readUInt32LE(0);
      const end = offset + RECORD_HEAD + bodyLength;
      if (bodyLength < BODY_HEAD || bodyLength > MAX_BODY || end > size) {
        const done = await badRecord(
          end > size ? 'a record running past the end' : 'impossible record length',
        );
        if (done) return done;
        continue;
      }
      const body = Buffer.alloc(bodyLength);
      await handle.read(body, 0, bodyLength, offset + RECORD_HEAD);
      if (crc32(body) !== recordHead.readUInt32LE(4)) {
        const done = await badRecord('checksum mismatch');
        if (done) return done;
        continue;
      }
      const at = offset;
      if (sealed && !sealer) {
        const key = decodeBody(body, noKeyRecord);
        if (key.type !== KEY_RECORD) throw noKeyRecord();
        if (!options.unlock) throw new RecordLogError(`${file}: the library is encrypted: give its key`);
        sealer = await options.unlock(key.json);
        seen++;
        offset = end;
        continue;
      }
      let decoded: ReturnType<typeof decode>;
      try {
        decoded = decode(at, body);
      } catch (err) {
        if (!(err instanceof LogDamageError)) throw err;
        const done = await badRecord(err.damage.reason, end);
        if (done) return done;
        continue;
      }
      const { plain, type, json, blobStart } = decoded;
      onRecord({
        type,
        json,
        blob: plain.subarray(blobStart),
        offset,
        blobOffset: sealer ? -1 : offset + RECORD_HEAD + blobStart,
        length: RECORD_HEAD + bodyLength,
      });
      records++;
      seen++;
      offset = end;
    }
    if (sealed && !sealer) throw noKeyRecord();
    return { records, sealed, truncatedBytes: 0, damage };
  } finally {
    await handle.close();
  }
}

/** The body of the record at `at` if it lies whole in the file with a good checksum. */
async function checkedBody(handle: fs.FileHandle, at: number, size: number): Promise<Buffer | undefined> {
  if (at + RECORD_HEAD > size) return undefined;
  const head = Buffer.alloc(RECORD_HEAD);
  await handle.read(head, 0, RECORD_HEAD, at);
  const length = head.readUInt32LE(0);
  if (length < BODY_HEAD || length > MAX_BODY || at + RECORD_HEAD + length > size) return undefined;
  const body = Buffer.alloc(length);
  await handle.read(body, 0, length, at + RECORD_HEAD);
  return crc32(body) === head.readUInt32LE(4) ? body : undefined;
}

/**
 * Creates an empty log durably (header only, or header and key record for a sealed log); refuses to replace an
 * existing file.
 */
export async function createLog(file: string, keyRecord?: unknown): Promise<void> {
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const handle = await fs.open(file, 'wx', 0o600);
  try {
    await handle.writeFile(
      keyRecord === undefined
        ? header(LOG_VERSION)
        : Buffer.concat([header(LOG_VERSION_SEALED), encodeRecord(KEY_RECORD, keyRecord)]),
    );
    await handle.sync();
  } finally {
    await handle.close();
  }
  await syncDir(path.dirname(path.resolve(file)));
}

/**
 * Appends records; `flush()` writes what is queued in one call and fsyncs, so after it returns
 * those records survive a crash or power cut.
 */
export class LogAppender {
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private broken: RecordLogError | undefined;

  private constructor(
    private readonly handle: fs.FileHandle,
    /** Where the next record will start. */
    private end: number,
    /** Seals the records of a sealed log (the one that opened it). */
    readonly sealer: RecordSealer | undefined,
  ) {}

  static async open(file: string, sealer?: RecordSealer): Promise<LogAppender> {
    const handle = await fs.open(file, 'a', 0o600);
    return new LogAppender(handle, (await handle.stat()).size, sealer);
  }

  /** Encodes a record for this log: sealed when the log is. */
  encode(type: number, json: unknown, blob?: Buffer): Buffer {
    return encodeRecord(type, json, blob, this.sealer);
  }

  /** Queues a record; returns where it and its binary tail (-1 in a sealed log: not readable in place) will lie. */
  append(type: number, json: unknown, blob?: Buffer): { offset: number; blobOffset: number } {
    return this.appendRaw(this.encode(type, json, blob));
  }

  /** Queues an encoded record (such as one copied from another log with the same key). */
  appendRaw(record: Buffer): { offset: number; blobOffset: number } {
    if (this.broken) throw this.broken;
    const offset = this.end;
    this.queued.push(record);
    this.queuedBytes += record.length;
    this.end += record.length;
    if (this.sealer) return { offset, blobOffset: -1 };
    const jsonLength = record.readUInt32LE(RECORD_HEAD + 1);
    return { offset, blobOffset: offset + RECORD_HEAD + BODY_HEAD + jsonLength };
  }

  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /**
   * Writes and fsyncs what is queued. When that fails (disk full, I/O error) the file is cut back
   * to where it was, so no half record is left before later ones, and the appender refuses
   * further work: the records it had queued are lost, and the caller's view of the file is no
   * longer true, so it must open the file again.
   */
  async flush(): Promise<void> {
    if (this.broken) throw this.broken;
    if (this.queued.length === 0) return;
    const data = Buffer.concat(this.queued);
    const start = this.end - data.length;
    this.queued = [];
    this.queuedBytes = 0;
    try {
      // A short write (a disk filling up) is not an error by itself: write the rest, which then fails.
      for (let done = 0; done < data.length;) {
        done += (await this.handle.write(data, done, data.length - done)).bytesWritten;
      }
      await this.handle.sync();
    } catch (err) {
      this.broken = new RecordLogError(`writing failed (${(err as Error).message}); open the library again`);
      await this.handle.truncate(start).catch(() => undefined);
      throw this.broken;
    }
  }

  async close(): Promise<void> {
    try {
      if (!this.broken) await this.flush();
    } finally {
      await this.handle.close();
    }
  }
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the rename is then as durable as they allow.
  } finally {
    await handle.close();
  }
}

/** The binary tail of the whole record at `offset` (`length` bytes, head included), unsealed with `sealer`. */
export async function readRecordBlob(
  file: string,
  offset: number,
  length: number,
  sealer: RecordSealer,
): Promise<Buffer> {
  const record = await readBytes(file, offset, length);
  const body = record.subarray(RECORD_HEAD);
  if (crc32(body) !== record.readUInt32LE(4))
    throw new RecordLogError(`${file}: record at byte ${offset} is damaged`);
  const plain = plainBody(
    body,
    sealer,
    () => new RecordLogError(`${file}: record at byte ${offset} does not decrypt`),
  );
  const where = () => new RecordLogError(`${file}: record at byte ${offset} is damaged`);
  return plain.subarray(decodeBody(plain, where).blobStart);
}

/** Reads `length` bytes at `offset`: a record's binary tail, fetched when it is needed. */
export async function readBytes(file: string, offset: number, length: number): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const out = Buffer.alloc(length);
    const { bytesRead } = await handle.read(out, 0, length, offset);
    if (bytesRead !== length) throw new RecordLogError(`${file}: ended before byte ${offset + length}`);
    return out;
  } finally {
    await handle.close();
  }
}
