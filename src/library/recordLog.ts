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
 * that one photo.
 *
 * Layout (integers little-endian):
 *   header, 16 bytes: magic `FFLIB` ‖ u8 0 ‖ u16 format version ‖ 8 reserved zero bytes
 *   records:          u32 body length ‖ u32 CRC-32 of the body ‖ body
 *   body:             u8 record type ‖ u32 JSON length ‖ UTF-8 JSON ‖ binary tail (any length)
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export const LOG_MAGIC = 'FFLIB';
export const LOG_VERSION = 1;
export const HEADER_BYTES = 16;
const RECORD_HEAD = 8;
const BODY_HEAD = 5;
/** No record is anywhere near this; a larger length is damage, not a record. */
const MAX_BODY = 256 * 1024 * 1024;

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

export interface ReadResult {
  records: number;
  /** Bytes of a record cut short by a crash, removed from the end of the file. */
  truncatedBytes: number;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3), as zip and PNG use it. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One record's bytes, ready to append. */
export function encodeRecord(type: number, json: unknown, blob: Buffer = Buffer.alloc(0)): Buffer {
  if (!Number.isInteger(type) || type < 0 || type > 255) throw new RecordLogError(`bad record type ${type}`);
  const text = Buffer.from(JSON.stringify(json), 'utf8');
  const bodyLength = BODY_HEAD + text.length + blob.length;
  if (bodyLength > MAX_BODY) throw new RecordLogError(`record of ${bodyLength} bytes is too large`);
  const out = Buffer.alloc(RECORD_HEAD + bodyLength);
  out.writeUInt32LE(bodyLength, 0);
  out.writeUInt8(type, RECORD_HEAD);
  out.writeUInt32LE(text.length, RECORD_HEAD + 1);
  text.copy(out, RECORD_HEAD + BODY_HEAD);
  blob.copy(out, RECORD_HEAD + BODY_HEAD + text.length);
  out.writeUInt32LE(crc32(out.subarray(RECORD_HEAD)), 4);
  return out;
}

function header(): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.write(LOG_MAGIC, 0, 'latin1');
  h.writeUInt16LE(LOG_VERSION, 6);
  return h;
}

/**
 * Reads every record in order, calling `onRecord` for each. A last record cut short by a crash
 * (its length runs past the end of the file, or it ends exactly at the end and fails its
 * checksum) is cut off the file when `repair` is set, and counted. A bad record with good data
 * after it is not a torn write but damage: that is an error, and nothing is changed, so that no
 * later record is thrown away.
 */
export async function readLog(
  file: string,
  onRecord: (record: LogRecord) => void,
  options: { repair?: boolean } = {},
): Promise<ReadResult> {
  const handle = await fs.open(file, options.repair ? 'r+' : 'r');
  try {
    const size = (await handle.stat()).size;
    const head = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await handle.read(head, 0, HEADER_BYTES, 0);
    if (bytesRead < HEADER_BYTES || head.toString('latin1', 0, 5) !== LOG_MAGIC) {
      throw new RecordLogError(`${file}: not a faceflow library file`);
    }
    const version = head.readUInt16LE(6);
    if (version !== LOG_VERSION) {
      throw new RecordLogError(
        `${file}: library format version ${version} is not supported (this faceflow reads ${LOG_VERSION})`,
      );
    }
    let offset = HEADER_BYTES;
    let records = 0;
    const recordHead = Buffer.alloc(RECORD_HEAD);
    const torn = async (): Promise<ReadResult> => {
      const truncatedBytes = size - offset;
      if (options.repair) await handle.truncate(offset);
      return { records, truncatedBytes };
    };
    while (offset < size) {
      if (size - offset < RECORD_HEAD) return torn();
      await handle.read(recordHead, 0, RECORD_HEAD, offset);
      const bodyLength = recordHead.readUInt32LE(0);
      const end = offset + RECORD_HEAD + bodyLength;
      if (bodyLength < BODY_HEAD || bodyLength > MAX_BODY) {
        if (end >= size || bodyLength > MAX_BODY) return torn();
        throw damaged(file, offset, 'impossible record length');
      }
      if (end > size) return torn();
      const body = Buffer.alloc(bodyLength);
      await handle.read(body, 0, bodyLength, offset + RECORD_HEAD);
      if (crc32(body) !== recordHead.readUInt32LE(4)) {
        if (end === size) return torn();
        throw damaged(file, offset, 'checksum mismatch');
      }
      const jsonLength = body.readUInt32LE(1);
      if (BODY_HEAD + jsonLength > bodyLength) throw damaged(file, offset, 'JSON longer than its record');
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8', BODY_HEAD, BODY_HEAD + jsonLength));
      } catch {
        throw damaged(file, offset, 'unreadable JSON');
      }
      onRecord({
        type: body.readUInt8(0),
        json,
        blob: body.subarray(BODY_HEAD + jsonLength),
        offset,
        blobOffset: offset + RECORD_HEAD + BODY_HEAD + jsonLength,
        length: RECORD_HEAD + bodyLength,
      });
      records++;
      offset = end;
    }
    return { records, truncatedBytes: 0 };
  } finally {
    await handle.close();
  }
}

function damaged(file: string, offset: number, what: string): RecordLogError {
  return new RecordLogError(
    `${file}: damaged at byte ${offset} (${what}) with more records after it; ` +
      'a crash only ever cuts the last record short, so this is disk damage or an outside edit. ' +
      'Restore the file from a backup, or delete it and scan again.',
  );
}

/** Creates an empty log (header only) durably; refuses to replace an existing file. */
export async function createLog(file: string): Promise<void> {
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const handle = await fs.open(file, 'wx', 0o600);
  try {
    await handle.writeFile(header());
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
  ) {}

  static async open(file: string): Promise<LogAppender> {
    const handle = await fs.open(file, 'a', 0o600);
    return new LogAppender(handle, (await handle.stat()).size);
  }

  /** Queues a record; returns where it and its binary tail will lie in the file. */
  append(type: number, json: unknown, blob?: Buffer): { offset: number; blobOffset: number } {
    return this.appendRaw(encodeRecord(type, json, blob));
  }

  /** Queues an encoded record (such as one copied from another log). */
  appendRaw(record: Buffer): { offset: number; blobOffset: number } {
    if (this.broken) throw this.broken;
    const offset = this.end;
    this.queued.push(record);
    this.queuedBytes += record.length;
    this.end += record.length;
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
