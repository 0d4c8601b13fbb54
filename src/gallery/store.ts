/**
 * Durable on-disk store for a face gallery.
 *
 * File format, versions 1 and 2 (all integers little-endian), a 96-byte header then the payload:
 *
 * | offset | size | field                                                                   |
 * | -----: | ---: | ----------------------------------------------------------------------- |
 * |      0 |    5 | magic `FFGAL` (ASCII)                                                   |
 * |      5 |    2 | u16 format version (1 or 2, see below)                                  |
 * |      7 |    1 | u8 flags: bit 0 encrypted, bit 1 key derived from a passphrase (scrypt) |
 * |      8 |    4 | u32 JSON section length in bytes                                        |
 * |     12 |    4 | u32 number of float32 values in the vector section                     |
 * |     16 |   16 | scrypt salt (zero unless bit 1 is set)                                  |
 * |     32 |   12 | AES-GCM IV (zero unless encrypted)                                      |
 * |     44 |   16 | AES-GCM auth tag (zero unless encrypted)                                |
 * |     60 |    4 | reserved, zero                                                          |
 * |     64 |   32 | SHA-256 over header bytes 0..63 followed by the payload as stored        |
 * |     96 |    … | payload: UTF-8 JSON (snapshot without vectors) ‖ float32 LE vectors     |
 *
 * The JSON section's optional top-level `generation` (a positive integer, see Generations below) counts saves.
 *
 * The vector section holds the identities' embeddings (`embeddings.length` rows of `dimension` values, in the
 * order of `embeddings`) followed by the unknown faces' embeddings (`unknowns.records.length` rows, in the order
 * of those records); the two array lengths in the JSON are the row counts.
 *
 * An identity record may carry `thumbnail` (base64 JPEG, one small picture of the person for lists). It needs no
 * new version: readers of either version check only `name`, `meta` and `createdAt` of an identity, so an older
 * faceflow opens such a file and merely drops the thumbnails when it next saves.
 *
 * Versions: version 2 adds the optional `unknowns` section (faces that matched nobody: `{ nextId, dropped,
 * records: [{ id, seenAt, source?, thumbnail? }] }`, thumbnails as base64 JPEG) and its vectors. A version 1
 * reader checks that the vector section is exactly embeddings × dimension, so it would take a file with unknown
 * faces for a damaged one, fall back to an older backup and write that back over the newer file. Such files are
 * therefore stamped version 2, which a version 1 reader refuses as "newer than supported" without touching it.
 * A snapshot without an `unknowns` section is still written as version 1, laid out as earlier faceflow wrote it
 * (with the `generation` field added to the JSON, which earlier readers ignore); both versions are read.
 *
 * When encrypted, the payload is the AES-256-GCM ciphertext (same length) of that plaintext, with header bytes
 * 0..31 as additional authenticated data. Because the SHA-256 covers the stored bytes, truncation and bit rot
 * are told apart from a wrong key: a file whose checksum verifies but does not decrypt was opened with the wrong
 * key. The file must be exactly 96 + JSON length + 4 × float count bytes long. Magic and version stay at these
 * offsets in every future version: a version 3..255 is refused as "newer than supported" (and never overwritten)
 * unless its checksum shows a damaged version 1 or 2 header (see Damaged headers), a version above 255 is damage.
 *
 * Durability: `save()` writes `<file>.tmp-<pid>`, fsyncs it, rotates backups, renames it over `<file>` and fsyncs
 * the directory, so `<file>` is always either the previous or the new complete snapshot. Backups `<file>.1`
 * (newest) … `<file>.N` are hard links (or copies) of earlier saves, made only from files whose checksum verifies.
 *
 * Privacy: backups and leftover temporary files are copies of *earlier* saves, so data deleted from the gallery
 * still exists in them until they rotate out. After deleting an identity call `save()` and then
 * {@link GalleryStore.purgeBackups} (in that order: the save rotates the old main file into a backup, which the
 * purge removes); the new main file is then the only copy left. `GalleryFile` does this.
 *
 * Keys: an encrypted file opened without a key, or with the wrong key, is an error (never garbage, never a
 * fallback to an older backup).
 *
 * Encrypted stays encrypted. A plain file where an encrypted one is expected may have been put there by someone
 * without the key (a copied-in file of their own that makes a stranger "Amy"), so it is refused (`PLAINTEXT_REFUSED`)
 * and never loaded: a plain main file opened by a store with a key, a plain main file opened without a key when the
 * generation record says this gallery was encrypted, and a plain backup during a recovery (skipped, reported in
 * `problems`). Changing between the two is a deliberate step, named by `allowPlaintext`:
 *  - `'migrate'` (with a key): a plain gallery is loaded once, with a note, and written encrypted by the next save
 *    (`faceflow gallery encrypt`, the Node-RED option "encrypt an existing plain file"). Once the record says the
 *    gallery was encrypted, 'migrate' no longer accepts a plain file, so leaving the option on does not reopen the
 *    hole;
 *  - `'downgrade'` (with a key): encrypted files are read with the key and saves are written in plain
 *    (`faceflow gallery decrypt`). A store without a key refuses to save over an encrypted main file.
 *
 * Generations (rollback detection). Every save stamps the JSON section with `generation`, one more than the highest
 * generation this store has seen, and then records that number in `<file>.gen` (JSON `{"generation", "encrypted"}`,
 * written atomically; `options.generationFile` puts it elsewhere, e.g. in a folder only faceflow can write). A load
 * compares the main file's generation (0 when absent: files of older faceflow) with the highest of the record and
 * of what this store loaded or saved: an older main file means an older copy was put back in place, and is refused
 * (`ROLLBACK`) unless `acceptRollback` is set (then the next save continues above the old highest, so the counter
 * never goes back). A recovery from a backup is older by nature: it is allowed and reported with both generations.
 * In an encrypted file the generation is inside the AES-GCM ciphertext, so nobody without the key can forge it; in a
 * plain file it only catches accidents (an old copy restored by a sync tool or by hand). The record itself is as safe
 * as the folder it lies in: whoever can delete or replace it as well as the gallery can roll back unseen, which is why
 * its place can be chosen. Loads never write the record (they work in read-only folders); saves do.
 * `generation` is a JSON field, not a header field, because the header bytes outside 0..31 are not authenticated;
 * it needs no new format version since readers of either version ignore top-level fields they do not know (checked
 * with the reader before this change). An older faceflow that saves such a gallery drops the field (a `GalleryFile`
 * save; the next load here reports a rollback to generation 0) or writes back the number it read (a bare store
 * save; taken as that generation).
 *
 * Version 3 adds the optional top-level `rejections` (faces marked "not this person": `[{ id, name, addedAt,
 * vector }]`, the vector as base64 float32 little-endian, `dimension` values). They sit in the JSON section rather
 * than the vector section because they are few (one per click of a person) and so that the vector section keeps
 * its version 2 layout. A version 2 reader would ignore the field and match those faces to the person again,
 * so a file with rejections is stamped version 3, which it refuses as newer without touching; without
 * rejections the file is written as version 2 or 1 as before.
 *
 * Damaged headers: a version field in 3..255 whose checksum verifies only when the field reads 1 or 2 is a flipped
 * bit, not a newer format, and falls back to the backups like any other damage.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { processExists } from '../util/fileLock';
import {
  decrypt,
  deriveKey,
  encrypt,
  GalleryKeyError,
  IV_BYTES,
  KeySource,
  parseKey,
  randomSalt,
  SALT_BYTES,
  TAG_BYTES,
} from './crypto';

export interface GalleryIdentityRecord {
  name: string;
  meta: Record<string, unknown>;
  createdAt: string;
  /** JPEG bytes; base64 in the JSON section, so encrypted with the rest when the file has a key. */
  thumbnail?: Buffer;
}

export interface GalleryEmbeddingRecord {
  id: number;
  name: string;
  sha256?: string;
  addedAt: string;
}

/** A face that matched nobody; its vector is kept in {@link GalleryUnknownsSnapshot.vectors}. */
export interface GalleryUnknownRecord {
  id: number;
  seenAt: string;
  source?: string;
  /** JPEG bytes; stored in the JSON section as base64 (so encrypted with the rest when the file has a key). */
  thumbnail?: Buffer;
}

/** A face marked "not this person" (format version 3). */
export interface GalleryRejectionRecord {
  /** Drawn from the same counter as the embeddings' ids. */
  id: number;
  /** The person this face must not be matched to. */
  name: string;
  addedAt: string;
  /** `dimension` values. */
  vector: Float32Array;
}

export interface GalleryUnknownsSnapshot {
  /** Ids are never reused, so the next one is kept even when no face is left. */
  nextId: number;
  /** Faces pushed out of the full pool so far. */
  dropped: number;
  /** Oldest first. */
  records: GalleryUnknownRecord[];
  /** records.length × dimension values; row i belongs to records[i]. */
  vectors: Float32Array;
}

/** The serialisable state of a gallery. */
export interface GallerySnapshot {
  /** Embeddings of different models never mix. */
  modelId: string;
  dimension: number;
  threshold?: number;
  nextId: number;
  identities: GalleryIdentityRecord[];
  /** Vector data is kept separately in {@link vectors}. */
  embeddings: GalleryEmbeddingRecord[];
  /** embeddings.length × dimension values; row i belongs to embeddings[i]. */
  vectors: Float32Array;
  /** Faces that matched nobody (format version 2); absent in files written before they existed. */
  unknowns?: GalleryUnknownsSnapshot;
  /** Faces marked "not this person" (format version 3); absent when there are none. */
  rejections?: GalleryRejectionRecord[];
}

/** The JSON section: the snapshot without vectors, thumbnails and rejected faces' vectors as base64. */
type SnapshotJson = Omit<GallerySnapshot, 'vectors' | 'unknowns' | 'identities' | 'rejections'> & {
  /** Counts saves (see Generations in the header comment); absent in files of older faceflow. */
  generation?: number;
  identities: { name: string; meta: Record<string, unknown>; createdAt: string; thumbnail?: string }[];
  unknowns?: {
    nextId: number;
    dropped: number;
    records: { id: number; seenAt: string; source?: string; thumbnail?: string }[];
  };
  rejections?: { id: number; name: string; addedAt: string; vector: string }[];
};

export interface GalleryStoreOptions {
  /** How many earlier saves to keep as `<file>.1` … `<file>.N` (default 3; 0 keeps none). */
  backups?: number;
  /** 32-byte Buffer, 64-char hex string, or a passphrase of at least 8 characters. */
  key?: Buffer | string;
  /**
   * The deliberate step between plain and encrypted (both need `key`): 'migrate' loads a plain gallery once so
   * that the next save encrypts it; 'downgrade' reads with the key and saves in plain. Without it a plain file
   * where an encrypted one is expected is refused (`PLAINTEXT_REFUSED`).
   */
  allowPlaintext?: 'migrate' | 'downgrade';
  /** Load a main file older than the newest generation seen (an older copy put back on purpose) instead of refusing it. */
  acceptRollback?: boolean;
  /** Where the newest generation seen is remembered across restarts (default `<file>.gen`). */
  generationFile?: string;
}

export interface GalleryLoadResult {
  /** Undefined when there is no gallery file yet (a new gallery). */
  snapshot: GallerySnapshot | undefined;
  /** The backup the snapshot was read from, when the main file was unusable. */
  recoveredFrom?: string;
  /** What was wrong with the files that were skipped, plus notes (e.g. a plain file migrated, a rollback accepted). */
  problems: string[];
  /** The loaded file's save counter; 0 for a file written before generations existed. */
  generation?: number;
  /** Whether the loaded file was encrypted. */
  encrypted?: boolean;
}

export type GalleryStoreErrorCode =
  | 'CORRUPT'
  | 'FUTURE_VERSION'
  | 'KEY_REQUIRED'
  | 'WRONG_KEY'
  | 'INVALID_SNAPSHOT'
  | 'WRITE_FAILED'
  | 'UNRECOVERABLE'
  | 'PLAINTEXT_REFUSED'
  | 'ROLLBACK';

export class GalleryStoreError extends Error {
  constructor(
    readonly code: GalleryStoreErrorCode,
    message: string,
    readonly file?: string,
    /** The system error code behind a WRITE_FAILED (EACCES, EROFS, ENOSPC…), when there was one. */
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'GalleryStoreError';
  }
}

export const MAGIC = Buffer.from('FFGAL', 'ascii');
/** The newest version written and read; an older one is still written when there is nothing that needs this. */
export const FORMAT_VERSION = 3;
const VERSION_WITHOUT_UNKNOWNS = 1;
const VERSION_WITHOUT_REJECTIONS = 2;
export const HEADER_BYTES = 96;
const MAX_PLAUSIBLE_VERSION = 255;
const FLAG_ENCRYPTED = 1;
const FLAG_PASSPHRASE = 2;
const KNOWN_FLAGS = FLAG_ENCRYPTED | FLAG_PASSPHRASE;
const CHECKSUM_OFFSET = 64;
const AAD_BYTES = 32;

const BIG_ENDIAN = os.endianness() === 'BE';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

interface ParsedHeader {
  version: number;
  flags: number;
  jsonLength: number;
  floatCount: number;
  salt: Buffer;
  iv: Buffer;
  tag: Buffer;
}

function corrupt(file: string, why: string): GalleryStoreError {
  return new GalleryStoreError('CORRUPT', `${file}: ${why}`, file);
}

function errCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e
    ? String((e as { code: unknown }).code)
    : undefined;
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/**
 * Reads the header and checks magic, version, length and checksum (no key needed). Throws CORRUPT or
 * FUTURE_VERSION.
 */
function verifyFile(buf: Buffer, file: string): ParsedHeader {
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw corrupt(file, 'not a faceflow gallery file (bad magic bytes)');
  }
  if (buf.length < 7) throw corrupt(file, `truncated header (${buf.length} bytes)`);
  const version = buf.readUInt16LE(5);
  // Versions above 255 are taken for damage rather than a future format, so such a file falls back to backups.
  if (version > FORMAT_VERSION && version <= MAX_PLAUSIBLE_VERSION) {
    const before = versionBeforeDamage(buf);
    if (before !== undefined) {
      throw corrupt(
        file,
        `damaged header: the version field reads ${version}, but the checksum matches version ${before}`,
      );
    }
    throw new GalleryStoreError(
      'FUTURE_VERSION',
      `${file}: gallery format version ${version} is newer than this faceflow supports (${FORMAT_VERSION}); ` +
        'upgrade faceflow — the file was left untouched',
      file,
    );
  }
  if (version < 1 || version > FORMAT_VERSION) throw corrupt(file, `invalid format version ${version}`);
  if (buf.length < HEADER_BYTES)
    throw corrupt(file, `truncated header (${buf.length} of ${HEADER_BYTES} bytes)`);
  const flags = buf.readUInt8(7);
  const jsonLength = buf.readUInt32LE(8);
  const floatCount = buf.readUInt32LE(12);
  const expected = HEADER_BYTES + jsonLength + floatCount * 4;
  if (buf.length !== expected) {
    throw corrupt(
      file,
      `${buf.length < expected ? 'truncated' : 'trailing bytes'}: ${buf.length} bytes, expected ${expected}`,
    );
  }
  const checksum = sha256(buf.subarray(0, CHECKSUM_OFFSET), buf.subarray(HEADER_BYTES));
  if (!checksum.equals(buf.subarray(CHECKSUM_OFFSET, CHECKSUM_OFFSET + 32))) {
    throw corrupt(file, 'checksum mismatch (file is damaged)');
  }
  if ((flags & ~KNOWN_FLAGS) !== 0) throw corrupt(file, `unknown flags 0x${flags.toString(16)}`);
  return {
    version,
    flags,
    jsonLength,
    floatCount,
    salt: Buffer.from(buf.subarray(16, 16 + SALT_BYTES)),
    iv: Buffer.from(buf.subarray(32, 32 + IV_BYTES)),
    tag: Buffer.from(buf.subarray(44, 44 + TAG_BYTES)),
  };
}

/**
 * The version a file had when its version field was damaged: one whose checksum verifies with that field set back
 * to a version this faceflow writes. A genuine newer file cannot pass this (its checksum covers the version it
 * claims), unless SHA-256 collides.
 */
function versionBeforeDamage(buf: Buffer): number | undefined {
  if (buf.length < HEADER_BYTES) return undefined;
  const stored = buf.subarray(CHECKSUM_OFFSET, CHECKSUM_OFFSET + 32);
  const head = Buffer.from(buf.subarray(0, CHECKSUM_OFFSET));
  for (let v = 1; v <= FORMAT_VERSION; v++) {
    head.writeUInt16LE(v, 5);
    if (sha256(head, buf.subarray(HEADER_BYTES)).equals(stored)) return v;
  }
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the shape of a snapshot's JSON section; returns a reason string when invalid. */
function snapshotProblem(s: SnapshotJson, vectorLength: number, version: number): string | undefined {
  if (!isObject(s)) return 'snapshot is not an object';
  if (typeof s.modelId !== 'string' || s.modelId === '') return 'modelId must be a non-empty string';
  if (!Number.isInteger(s.dimension) || s.dimension <= 0) return 'dimension must be a positive integer';
  if (s.threshold !== undefined && typeof s.threshold !== 'number') return 'threshold must be a number';
  if (!Number.isInteger(s.nextId) || s.nextId < 0) return 'nextId must be a non-negative integer';
  if (s.generation !== undefined && (!Number.isSafeInteger(s.generation) || s.generation < 1))
    return 'generation must be a positive integer';
  if (!Array.isArray(s.identities)) return 'identities must be an array';
  for (const id of s.identities) {
    if (
      !isObject(id) ||
      typeof id.name !== 'string' ||
      !isObject(id.meta) ||
      typeof id.createdAt !== 'string'
    ) {
      return 'identities must be { name, meta, createdAt } records';
    }
    if (id.thumbnail !== undefined && (typeof id.thumbnail !== 'string' || !BASE64.test(id.thumbnail))) {
      return 'identity thumbnails must be base64';
    }
  }
  if (!Array.isArray(s.embeddings)) return 'embeddings must be an array';
  for (const e of s.embeddings) {
    if (
      !isObject(e) ||
      !Number.isInteger(e.id) ||
      typeof e.name !== 'string' ||
      typeof e.addedAt !== 'string' ||
      (e.sha256 !== undefined && typeof e.sha256 !== 'string')
    ) {
      return 'embeddings must be { id, name, sha256?, addedAt } records';
    }
  }
  const rejectionProblem = rejectionsProblem(s, version);
  if (rejectionProblem) return rejectionProblem;
  const u = s.unknowns;
  if (u === undefined) {
    if (vectorLength !== s.embeddings.length * s.dimension) {
      return `vectors has ${vectorLength} values, expected embeddings (${s.embeddings.length}) × dimension (${s.dimension})`;
    }
    return undefined;
  }
  if (version < 2) return `an unknowns section needs format version 2, the header says ${version}`;
  if (!isObject(u)) return 'unknowns must be an object';
  if (!Number.isInteger(u.nextId) || u.nextId < 0) return 'unknowns.nextId must be a non-negative integer';
  if (!Number.isInteger(u.dropped) || u.dropped < 0) return 'unknowns.dropped must be a non-negative integer';
  if (!Array.isArray(u.records)) return 'unknowns.records must be an array';
  for (const r of u.records) {
    if (
      !isObject(r) ||
      !Number.isInteger(r.id) ||
      typeof r.seenAt !== 'string' ||
      (r.source !== undefined && typeof r.source !== 'string') ||
      (r.thumbnail !== undefined && (typeof r.thumbnail !== 'string' || !BASE64.test(r.thumbnail)))
    ) {
      return 'unknowns.records must be { id, seenAt, source?, thumbnail? (base64) } records';
    }
  }
  const rows = s.embeddings.length + u.records.length;
  if (vectorLength !== rows * s.dimension) {
    return (
      `vectors has ${vectorLength} values, expected (embeddings (${s.embeddings.length}) + ` +
      `unknowns (${u.records.length})) × dimension (${s.dimension})`
    );
  }
  return undefined;
}

function rejectionsProblem(s: SnapshotJson, version: number): string | undefined {
  if (s.rejections === undefined) return undefined;
  if (version < 3) return `a rejections section needs format version 3, the header says ${version}`;
  if (!Array.isArray(s.rejections)) return 'rejections must be an array';
  const bytes = s.dimension * 4;
  for (const r of s.rejections) {
    if (
      !isObject(r) ||
      !Number.isInteger(r.id) ||
      typeof r.name !== 'string' ||
      typeof r.addedAt !== 'string' ||
      typeof r.vector !== 'string' ||
      !BASE64.test(r.vector) ||
      Buffer.byteLength(r.vector, 'base64') !== bytes
    ) {
      return `rejections must be { id, name, addedAt, vector (base64 of ${s.dimension} float32) } records`;
    }
  }
  return undefined;
}

/** The JSON section of a snapshot, or the reason it cannot be written. */
function toJson(snapshot: GallerySnapshot): SnapshotJson | string {
  const { unknowns, rejections, ...withVectors } = snapshot;
  const rest: Record<string, unknown> = { ...withVectors };
  delete rest.vectors;
  delete rest.generation; // the store's counter, never a caller's
  if (Array.isArray(snapshot.identities)) {
    const identities: SnapshotJson['identities'] = [];
    for (const p of snapshot.identities) {
      if (!isObject(p)) return 'identities must be objects';
      if (p.thumbnail !== undefined && !Buffer.isBuffer(p.thumbnail))
        return 'identity thumbnails must be Buffers';
      // Picked field by field, as for unknown faces below, so nothing a caller attached lands in the file.
      identities.push({
        name: p.name,
        meta: p.meta,
        createdAt: p.createdAt,
        ...(p.thumbnail !== undefined && { thumbnail: p.thumbnail.toString('base64') }),
      });
    }
    rest.identities = identities;
  }
  if (rejections !== undefined) {
    if (!Array.isArray(rejections)) return 'rejections must be an array';
    const out: NonNullable<SnapshotJson['rejections']> = [];
    for (const r of rejections) {
      if (!isObject(r) || !(r.vector instanceof Float32Array))
        return 'rejections must carry Float32Array vectors';
      out.push({
        id: r.id,
        name: r.name,
        addedAt: r.addedAt,
        vector: floatBytes(r.vector).toString('base64'),
      });
    }
    rest.rejections = out;
  }
  if (unknowns === undefined) return rest as SnapshotJson;
  if (!isObject(unknowns) || !Array.isArray(unknowns.records))
    return 'unknowns must be { nextId, dropped, records }';
  const records: NonNullable<SnapshotJson['unknowns']>['records'] = [];
  for (const r of unknowns.records) {
    if (!isObject(r)) return 'unknowns.records must be objects';
    if (r.thumbnail !== undefined && !Buffer.isBuffer(r.thumbnail))
      return 'unknown face thumbnails must be Buffers';
    // Fields are picked one by one so nothing else a caller attached (an embedding, say) lands in the file.
    records.push({
      id: r.id,
      seenAt: r.seenAt,
      ...(r.source !== undefined && { source: r.source }),
      ...(r.thumbnail !== undefined && { thumbnail: r.thumbnail.toString('base64') }),
    });
  }
  return {
    ...(rest as SnapshotJson),
    unknowns: { nextId: unknowns.nextId, dropped: unknowns.dropped, records },
  };
}

/** Little-endian bytes of float32 values. */
function floatBytes(v: Float32Array): Buffer {
  const b = Buffer.from(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  if (BIG_ENDIAN) b.swap32();
  return b;
}

function readFloats(payload: Buffer, start: number, count: number): Float32Array {
  const out = new Float32Array(count);
  const bytes = Buffer.from(out.buffer);
  payload.copy(bytes, 0, start, start + count * 4);
  if (BIG_ENDIAN) bytes.swap32();
  return out;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Whether a gallery file is encrypted, from its header flag alone (nothing verified): undefined when there is no
 * file or it is not a gallery file. For deciding whether an "encrypt" step still has work to do.
 */
export async function isEncryptedFile(file: string): Promise<boolean | undefined> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(file, 'r');
    const head = Buffer.alloc(8);
    const { bytesRead } = await fh.read(head, 0, 8, 0);
    if (bytesRead < 8 || !head.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
    return (head.readUInt8(7) & FLAG_ENCRYPTED) !== 0;
  } catch {
    return undefined;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** What `<file>.gen` remembers between runs. */
interface GenerationRecord {
  /** The highest generation saved. */
  generation: number;
  /** Whether that save was encrypted. */
  encrypted: boolean;
}

const NO_RECORD: GenerationRecord = { generation: 0, encrypted: false };

interface Decoded {
  snapshot: GallerySnapshot;
  generation: number;
  encrypted: boolean;
}

export class GalleryStore {
  readonly file: string;
  readonly backups: number;
  /** Where the highest generation seen is remembered (see Generations in the header comment). */
  readonly generationFile: string;
  private readonly keySource?: KeySource;
  private readonly allowPlaintext?: 'migrate' | 'downgrade';
  private readonly acceptRollback: boolean;
  /** The highest generation this store loaded or saved; the record on disk may lag behind (or be gone). */
  private newestSeen = 0;
  /** Whether this store's last save was encrypted, or it loaded an encrypted file since. */
  private sawEncrypted = false;
  /** Salt used for passphrase-derived keys on save (taken from the loaded file, else random per store). */
  private salt?: Buffer;
  private readonly derived = new Map<string, Promise<Buffer>>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(file: string, options: GalleryStoreOptions = {}) {
    this.file = path.resolve(file);
    const backups = options.backups ?? 3;
    if (!Number.isInteger(backups) || backups < 0) {
      throw new RangeError(`backups must be a non-negative integer, got ${backups}`);
    }
    this.backups = backups;
    if (options.key !== undefined) this.keySource = parseKey(options.key);
    const allow = options.allowPlaintext;
    if (allow !== undefined) {
      if (allow !== 'migrate' && allow !== 'downgrade') {
        throw new RangeError(`allowPlaintext must be 'migrate' or 'downgrade', got '${String(allow)}'`);
      }
      if (!this.keySource) {
        throw new RangeError(
          `allowPlaintext '${allow}' needs the key: it changes a gallery between plain and encrypted`,
        );
      }
      this.allowPlaintext = allow;
    }
    this.acceptRollback = options.acceptRollback === true;
    this.generationFile = path.resolve(options.generationFile ?? `${this.file}.gen`);
  }

  /** Path of backup n (1 = newest). */
  backupPath(n: number): string {
    return `${this.file}.${n}`;
  }

  get tmpPath(): string {
    return `${this.file}.tmp-${process.pid}`;
  }

  /** Writes the snapshot atomically, keeping earlier verified saves as backups. */
  save(snapshot: GallerySnapshot): Promise<void> {
    const run = this.queue.then(() => this.doSave(snapshot));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Reads the gallery. A missing file gives an undefined snapshot; a damaged one is reported in `problems` and
   * the newest good backup is returned with `recoveredFrom`. Throws when nothing is usable, when the key is
   * missing or wrong, when the file is from a newer format version, when a plain file stands where an encrypted
   * one is expected (`PLAINTEXT_REFUSED`) and when the main file is older than a save seen before (`ROLLBACK`).
   * Writes nothing, so it works in a read-only folder.
   */
  async load(): Promise<GalleryLoadResult> {
    await this.queue;
    const problems: string[] = [];
    const tried: string[] = [];
    // Notes about the record are kept apart: they are no reason to call a missing gallery unrecoverable.
    const recordNotes: string[] = [];
    const record = await this.readRecord(recordNotes);
    const newest = Math.max(this.newestSeen, record.generation);
    const wasEncrypted = this.sawEncrypted || record.encrypted;
    const backups = await this.listBackups();
    const candidates = [this.file, ...backups.map((b) => b.path)];
    let mainMissing = false;
    for (let i = 0; i < candidates.length; i++) {
      const file = candidates[i];
      let buf: Buffer;
      try {
        buf = await fs.readFile(file);
      } catch (e) {
        if (errCode(e) === 'ENOENT' && i === 0) {
          mainMissing = true;
          tried.push(`${file}: missing`);
          continue;
        }
        const why = `${file}: unreadable (${errMessage(e)})`;
        problems.push(why);
        tried.push(why);
        continue;
      }
      let decoded: Decoded;
      try {
        const header = verifyFile(buf, file);
        const refusal = this.plaintextRefusal(header, file, i === 0, wasEncrypted);
        if (refusal !== undefined && i === 0) throw new GalleryStoreError('PLAINTEXT_REFUSED', refusal, file);
        if (refusal !== undefined) throw corrupt(file, refusal);
        decoded = await this.decode(buf, header, file);
      } catch (e) {
        if (e instanceof GalleryStoreError && e.code === 'CORRUPT') {
          problems.push(e.message);
          tried.push(e.message);
          continue;
        }
        throw e;
      }
      const notes = [...recordNotes, ...this.loadNotes(decoded, file, i === 0, newest)];
      this.newestSeen = Math.max(newest, decoded.generation);
      if (decoded.encrypted) this.sawEncrypted = true;
      const { snapshot, generation, encrypted } = decoded;
      if (i === 0) return { snapshot, generation, encrypted, problems: [...problems, ...notes] };
      if (mainMissing) problems.unshift(`${this.file}: missing although backups exist`);
      return { snapshot, generation, encrypted, recoveredFrom: file, problems: [...problems, ...notes] };
    }
    if (mainMissing && problems.length === 0) {
      if (newest > 0) {
        recordNotes.push(
          `${this.file}: missing, and no backups, although generation ${newest} was saved ` +
            `(${this.generationFile}); starting an empty gallery`,
        );
      }
      return { snapshot: undefined, problems: recordNotes };
    }
    throw new GalleryStoreError(
      'UNRECOVERABLE',
      `no usable gallery file; tried:\n  ${tried.join('\n  ')}`,
      this.file,
    );
  }

  /**
   * Deletes every backup (`<file>.1` …) and leftover temporary file, so that data removed from the gallery
   * survives only until the next `save()` rewrites the main file. Returns the paths deleted.
   */
  async purgeBackups(): Promise<string[]> {
    await this.queue;
    const removed: string[] = [];
    for (const b of await this.listBackups()) {
      await fs.rm(b.path, { force: true });
      removed.push(b.path);
    }
    removed.push(...(await this.removeStaleTemps(true)));
    if (removed.length > 0) await this.syncDir();
    return removed;
  }

  // --- internals -------------------------------------------------------------------------------------------

  /** Whether saves are encrypted: with a key, unless the caller is downgrading on purpose. */
  private get writesEncrypted(): boolean {
    return this.keySource !== undefined && this.allowPlaintext !== 'downgrade';
  }

  private async doSave(snapshot: GallerySnapshot): Promise<void> {
    // Above everything seen here and everything any process recorded, so the counter never goes back.
    const record = await this.readRecord([]);
    const generation = Math.max(this.newestSeen, record.generation) + 1;
    const encrypted = this.writesEncrypted;
    const buf = await this.encode(snapshot, generation);

    // Never replace a file written by a newer faceflow; only rotate files that verify.
    let existing: Buffer | undefined;
    try {
      existing = await fs.readFile(this.file);
    } catch (e) {
      if (errCode(e) !== 'ENOENT' && errCode(e) !== 'ENOTDIR') {
        throw new GalleryStoreError(
          'WRITE_FAILED',
          `cannot save gallery: ${errMessage(e)}`,
          this.file,
          errCode(e),
        );
      }
    }
    let existingHeader: ParsedHeader | undefined;
    if (existing) {
      try {
        existingHeader = verifyFile(existing, this.file);
      } catch (e) {
        if (e instanceof GalleryStoreError && e.code === 'FUTURE_VERSION') {
          throw new GalleryStoreError('FUTURE_VERSION', `refusing to overwrite: ${e.message}`, this.file);
        }
      }
    }
    if (existingHeader && existingHeader.flags & FLAG_ENCRYPTED && !this.keySource) {
      throw new GalleryStoreError(
        'PLAINTEXT_REFUSED',
        `refusing to write a plain gallery over the encrypted ${this.file}: give the key, or turn encryption ` +
          `off on purpose with the key and allowPlaintext 'downgrade' (faceflow gallery decrypt)`,
        this.file,
      );
    }
    const rotateMain = existingHeader !== undefined;

    const tmp = this.tmpPath;
    try {
      const fh = await fs.open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(buf);
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (rotateMain && this.backups > 0) await this.rotate();
      await fs.rename(tmp, this.file);
    } catch (e) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw new GalleryStoreError(
        'WRITE_FAILED',
        `could not save gallery to ${this.file} (${errMessage(e)}); the previous file was left as it was`,
        this.file,
        errCode(e),
      );
    }
    await this.syncDir();
    this.newestSeen = generation;
    this.sawEncrypted = encrypted;
    // The gallery is saved at this point; a record that could not be written only lags behind the file,
    // which loads accept, and the next save that can write it catches up.
    await this.writeRecord({ generation, encrypted }).catch(() => undefined);
    await this.removeStaleTemps(false).catch(() => undefined);
  }

  /**
   * Why a plain file must not be used here, or undefined when it may be (or is encrypted). A refused backup is
   * skipped; a refused main file stops the load (see "Encrypted stays encrypted" in the header comment).
   */
  private plaintextRefusal(
    header: ParsedHeader,
    file: string,
    isMain: boolean,
    wasEncrypted: boolean,
  ): string | undefined {
    if (header.flags & FLAG_ENCRYPTED) return undefined;
    if (this.allowPlaintext === 'downgrade') return undefined;
    if (this.allowPlaintext === 'migrate' && !wasEncrypted) return undefined;
    if (!this.keySource && !wasEncrypted) return undefined;
    if (!isMain) return 'backup is not encrypted; a plain copy is never used for an encrypted gallery';
    if (!this.keySource) {
      return (
        `${file}: the gallery file is not encrypted, but ${this.generationFile} says this gallery was ` +
        'encrypted: a plain file put in its place is not loaded. Give the key; to turn encryption off on ' +
        "purpose, decrypt it with the key (faceflow gallery decrypt, or allowPlaintext 'downgrade')"
      );
    }
    if (wasEncrypted) {
      return (
        `${file}: the gallery file is not encrypted, but this gallery was encrypted before ` +
        `(${this.generationFile}): a plain file put in its place is not loaded, not even to migrate it. ` +
        `If you replaced it on purpose, delete ${this.generationFile} and encrypt it again`
      );
    }
    return (
      `${file}: the gallery file is not encrypted, but a key was given. A plain file where an encrypted one ` +
      'is expected may have been put there by anyone who can write the folder, so it is not loaded. To ' +
      'encrypt an existing plain gallery on purpose: faceflow gallery encrypt --key-file FILE, the Node-RED ' +
      `option "Encrypt an existing plain file", or allowPlaintext 'migrate'`
    );
  }

  /** Notes on a file about to be returned; throws ROLLBACK for a main file older than a save seen before. */
  private loadNotes(decoded: Decoded, file: string, isMain: boolean, newest: number): string[] {
    const notes: string[] = [];
    if (!decoded.encrypted && this.allowPlaintext === 'migrate') {
      notes.push(`${file}: file is not encrypted; it will be written encrypted on the next save`);
    }
    const g = decoded.generation;
    if (g >= newest) return notes;
    if (!isMain) {
      notes.push(
        `${file}: generation ${g}, older than the newest save seen (generation ${newest}): ` +
          'what was saved after it is lost',
      );
    } else if (this.acceptRollback) {
      notes.push(
        `${file}: generation ${g} is older than the newest save seen (generation ${newest}); ` +
          'loaded because rollbacks are accepted',
      );
    } else {
      throw new GalleryStoreError(
        'ROLLBACK',
        `${file}: the file is generation ${g}, but generation ${newest} was saved before ` +
          `(${this.generationFile}): an older copy was put in its place, which could bring back deleted ` +
          `people or undo changes, so it is not loaded. If you restored it on purpose, delete ${this.generationFile} ` +
          '(or accept it for one run: acceptRollback, faceflow gallery --accept-rollback)',
        file,
      );
    }
    return notes;
  }

  /** The record of the newest save; problems reading it are noted (a missing record is simply none yet). */
  private async readRecord(notes: string[]): Promise<GenerationRecord> {
    let text: string;
    try {
      text = await fs.readFile(this.generationFile, 'utf8');
    } catch (e) {
      if (errCode(e) !== 'ENOENT' && errCode(e) !== 'ENOTDIR') {
        notes.push(`${this.generationFile}: unreadable (${errMessage(e)}); rollbacks are not detected`);
      }
      return NO_RECORD;
    }
    try {
      const r: unknown = JSON.parse(text);
      if (
        isObject(r) &&
        Number.isSafeInteger(r.generation) &&
        (r.generation as number) >= 0 &&
        typeof r.encrypted === 'boolean'
      ) {
        return { generation: r.generation as number, encrypted: r.encrypted };
      }
    } catch {
      // reported below
    }
    notes.push(
      `${this.generationFile}: not a generation record; rollbacks are not detected until the next save`,
    );
    return NO_RECORD;
  }

  /** Replaces the record atomically (temporary file, fsync, rename), so a crash leaves the old or the new one. */
  private async writeRecord(record: GenerationRecord): Promise<void> {
    const tmp = `${this.generationFile}.tmp-${process.pid}`;
    try {
      const fh = await fs.open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(record)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, this.generationFile);
    } catch (e) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw e;
    }
  }

  /** Shifts `<file>.k` to `<file>.k+1` (dropping the oldest) and links the current main file as `<file>.1`. */
  private async rotate(): Promise<void> {
    for (const b of await this.listBackups()) {
      if (b.n >= this.backups) await fs.rm(b.path, { force: true });
    }
    for (let n = this.backups - 1; n >= 1; n--) {
      try {
        await fs.rename(this.backupPath(n), this.backupPath(n + 1));
      } catch (e) {
        if (errCode(e) !== 'ENOENT') throw e;
      }
    }
    try {
      await fs.link(this.file, this.backupPath(1));
    } catch {
      await fs.copyFile(this.file, this.backupPath(1));
    }
  }

  private async listBackups(): Promise<{ n: number; path: string }[]> {
    const dir = path.dirname(this.file);
    const re = new RegExp(`^${escapeRegExp(path.basename(this.file))}\\.(\\d+)$`);
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return [];
    }
    return names
      .map((name) => ({ m: re.exec(name), name }))
      .filter((x): x is { m: RegExpExecArray; name: string } => x.m !== null && Number(x.m[1]) >= 1)
      .map((x) => ({ n: Number(x.m[1]), path: path.join(dir, x.name) }))
      .sort((a, b) => a.n - b.n);
  }

  /**
   * Removes `<file>.tmp-<pid>` (and `<record>.tmp-<pid>`) files left by processes that died mid-save (all of them
   * when `all`).
   */
  private async removeStaleTemps(all: boolean): Promise<string[]> {
    const removed = await this.removeStaleTempsOf(this.file, all);
    removed.push(...(await this.removeStaleTempsOf(this.generationFile, all)));
    return removed;
  }

  private async removeStaleTempsOf(target: string, all: boolean): Promise<string[]> {
    const dir = path.dirname(target);
    const re = new RegExp(`^${escapeRegExp(path.basename(target))}\\.tmp-(\\d+)$`);
    const removed: string[] = [];
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return removed;
    }
    for (const name of names) {
      const m = re.exec(name);
      if (!m) continue;
      const pid = Number(m[1]);
      if (!all && (pid === process.pid || processExists(pid))) continue;
      if (all && pid !== process.pid && processExists(pid)) continue; // another live writer's file
      await fs.rm(path.join(dir, name), { force: true });
      removed.push(path.join(dir, name));
    }
    return removed;
  }

  private async syncDir(): Promise<void> {
    let dh: fs.FileHandle | undefined;
    try {
      dh = await fs.open(path.dirname(this.file), 'r');
      await dh.sync();
    } catch {
      // Directory fsync is unsupported on some platforms (e.g. Windows); the rename itself has happened.
    } finally {
      await dh?.close().catch(() => undefined);
    }
  }

  private keyFor(salt: Buffer): Promise<Buffer> {
    const src = this.keySource;
    if (!src) throw new Error('no key');
    if (src.kind === 'raw') return Promise.resolve(src.key);
    const id = salt.toString('hex');
    let p = this.derived.get(id);
    if (!p) {
      p = deriveKey(src.passphrase, salt);
      this.derived.set(id, p);
      p.catch(() => this.derived.delete(id));
    }
    return p;
  }

  private async encode(snapshot: GallerySnapshot, generation: number): Promise<Buffer> {
    if (!isObject(snapshot) || !(snapshot.vectors instanceof Float32Array)) {
      throw new GalleryStoreError('INVALID_SNAPSHOT', 'cannot save gallery: vectors must be a Float32Array');
    }
    const unknownVectors = snapshot.unknowns?.vectors ?? new Float32Array(0);
    if (!(unknownVectors instanceof Float32Array)) {
      throw new GalleryStoreError(
        'INVALID_SNAPSHOT',
        'cannot save gallery: unknowns.vectors must be a Float32Array',
      );
    }
    const version =
      snapshot.rejections !== undefined
        ? FORMAT_VERSION
        : snapshot.unknowns !== undefined
          ? VERSION_WITHOUT_REJECTIONS
          : VERSION_WITHOUT_UNKNOWNS;
    const meta = toJson(snapshot);
    const floatCount = snapshot.vectors.length + unknownVectors.length;
    const why = typeof meta === 'string' ? meta : snapshotProblem(meta, floatCount, version);
    if (why) throw new GalleryStoreError('INVALID_SNAPSHOT', `cannot save gallery: ${why}`, this.file);
    const json = Buffer.from(JSON.stringify({ ...(meta as SnapshotJson), generation }), 'utf8');
    let payload: Buffer = Buffer.concat([json, floatBytes(snapshot.vectors), floatBytes(unknownVectors)]);

    const header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(header, 0);
    header.writeUInt16LE(version, 5);
    header.writeUInt32LE(json.length, 8);
    header.writeUInt32LE(floatCount, 12);
    if (this.keySource && this.writesEncrypted) {
      let flags = FLAG_ENCRYPTED;
      let salt: Buffer = Buffer.alloc(SALT_BYTES);
      if (this.keySource.kind === 'passphrase') {
        flags |= FLAG_PASSPHRASE;
        salt = this.salt ??= randomSalt();
      }
      header.writeUInt8(flags, 7);
      salt.copy(header, 16);
      const key = await this.keyFor(salt);
      const sealed = encrypt(key, payload, header.subarray(0, AAD_BYTES));
      sealed.iv.copy(header, 32);
      sealed.tag.copy(header, 44);
      payload = sealed.ciphertext;
    }
    sha256(header.subarray(0, CHECKSUM_OFFSET), payload).copy(header, CHECKSUM_OFFSET);
    return Buffer.concat([header, payload]);
  }

  /** Decrypts (when encrypted) and parses a file whose header `h` verified. */
  private async decode(buf: Buffer, h: ParsedHeader, file: string): Promise<Decoded> {
    const encrypted = (h.flags & FLAG_ENCRYPTED) !== 0;
    let payload = buf.subarray(HEADER_BYTES);
    if (h.flags & FLAG_ENCRYPTED) {
      const src = this.keySource;
      if (!src) {
        throw new GalleryStoreError(
          'KEY_REQUIRED',
          `${file}: gallery file is encrypted; pass the key (options.key) to open it`,
          file,
        );
      }
      const wantsPassphrase = (h.flags & FLAG_PASSPHRASE) !== 0;
      if (wantsPassphrase !== (src.kind === 'passphrase')) {
        throw new GalleryStoreError(
          'WRONG_KEY',
          `${file}: wrong key — the file was encrypted with ${wantsPassphrase ? 'a passphrase' : 'a raw 32-byte key'}` +
            ` but ${src.kind === 'passphrase' ? 'a passphrase' : 'a raw key'} was given`,
          file,
        );
      }
      const key = await this.keyFor(h.salt);
      try {
        payload = decrypt(key, { iv: h.iv, tag: h.tag, ciphertext: payload }, buf.subarray(0, AAD_BYTES));
      } catch (e) {
        if (e instanceof GalleryKeyError) {
          throw new GalleryStoreError(
            'WRONG_KEY',
            `${file}: cannot decrypt gallery: wrong key or corrupt file (the checksum is intact, so the key is most likely wrong)`,
            file,
          );
        }
        throw e;
      }
      if (wantsPassphrase) this.salt = h.salt;
    }

    let meta: SnapshotJson;
    try {
      meta = JSON.parse(payload.subarray(0, h.jsonLength).toString('utf8')) as SnapshotJson;
    } catch (e) {
      throw corrupt(file, `invalid JSON section (${errMessage(e)})`);
    }
    const why = snapshotProblem(meta, h.floatCount, h.version);
    if (why) throw corrupt(file, `invalid snapshot (${why})`);
    const {
      unknowns,
      identities: storedIdentities,
      generation = 0,
      rejections: storedRejections,
      ...json
    } = meta;
    const identities: GalleryIdentityRecord[] = storedIdentities.map(({ thumbnail, ...p }) => ({
      ...p,
      ...(thumbnail !== undefined && { thumbnail: Buffer.from(thumbnail, 'base64') }),
    }));
    const rest: Omit<GallerySnapshot, 'identities' | 'vectors' | 'unknowns'> = { ...json };
    if (storedRejections !== undefined) {
      rest.rejections = storedRejections.map((r) => {
        const bytes = Buffer.from(r.vector, 'base64');
        return { ...r, vector: readFloats(bytes, 0, bytes.length / 4) };
      });
    }
    const embeddingFloats = meta.embeddings.length * meta.dimension;
    const vectors = readFloats(payload, h.jsonLength, embeddingFloats);
    if (unknowns === undefined) return { snapshot: { ...rest, identities, vectors }, generation, encrypted };
    const snapshot: GallerySnapshot = {
      ...rest,
      identities,
      vectors,
      unknowns: {
        nextId: unknowns.nextId,
        dropped: unknowns.dropped,
        records: unknowns.records.map((r) => ({
          ...r,
          ...(r.thumbnail !== undefined && { thumbnail: Buffer.from(r.thumbnail, 'base64') }),
        })) as GalleryUnknownRecord[],
        vectors: readFloats(payload, h.jsonLength + embeddingFloats * 4, h.floatCount - embeddingFloats),
      },
    };
    return { snapshot, generation, encrypted };
  }
}
