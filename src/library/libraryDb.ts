/**
 * A photo library's database: which files were scanned, the faces found in each distinct content
 * (by SHA-256, so a copied or renamed photo is not scanned twice and keeps its faces' names), who
 * those faces are, and the last clustering. Everything lives in one append-only record log
 * (recordLog.ts, which says why not SQLite); the state is rebuilt in memory when the file is opened.
 *
 * Memory: every live face's embedding is kept in memory (4 KiB each with the default 1024-d
 * embedder, for clustering and matching); thumbnails stay on disk and are read when asked for.
 * 10,000 faces take about 45 MB.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { QualityReason, QualityScores } from '../quality';
import type { Box, Point } from '../types';
import { FileLock, FileLockError } from '../util/fileLock';
import { LibraryKeyError, newLibraryKey, unlockLibrary } from './libraryKey';
import {
  createLog,
  LogAppender,
  LogDamageError,
  readBytes,
  readLog,
  readRecordBlob,
  RecordLogError,
  syncDir,
  type DamagedRange,
  type LogRecord,
  type RecordSealer,
} from './recordLog';
import { packHint } from '../models/pack/packs';

export const LIBRARY_FORMAT = 'faceflow-library';

const enum T {
  Meta = 1,
  Content = 2,
  File = 3,
  Unreadable = 4,
  Gone = 5,
  Assign = 6,
  Clusters = 7,
}

export class LibraryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LibraryError';
  }
}

/** The library file is damaged in the middle (not a crash's torn tail): see `faceflow library repair`. */
export class LibraryDamagedError extends LibraryError {
  constructor(
    message: string,
    readonly damage: DamagedRange,
  ) {
    super(message);
    this.name = 'LibraryDamagedError';
  }
}

export interface LibraryMeta {
  format: typeof LIBRARY_FORMAT;
  /** The embedder whose vectors the library holds: one library per embedder. */
  modelId: string;
  dimension: number;
  /** The model's similarity threshold for "same person", so that matching needs no model loaded. */
  threshold?: number;
  createdAt: string;
}

export interface FaceQuality {
  scores: QualityScores;
  passed: boolean;
  reasons: QualityReason[];
}

export interface LibraryFace {
  /** Unique in the library, never reused. */
  id: number;
  /** Content hash of the photo it was found in. */
  hash: string;
  /** In the photo's pixels, upright (EXIF orientation applied). */
  box: Box;
  score: number;
  landmarks: Point[];
  quality: FaceQuality;
  embedding: Float32Array;
}

export interface ContentEntry {
  hash: string;
  width: number;
  height: number;
  faces: LibraryFace[];
  scannedAt: string;
}

export interface FileEntry {
  /** Absolute path. */
  path: string;
  hash: string;
  size: number;
  mtimeMs: number;
}

export interface UnreadableEntry {
  path: string;
  size: number;
  mtimeMs: number;
  error: string;
}

export type AssignmentHow = 'named' | 'matched';

export interface Assignment {
  person: string;
  /** `named`: a person said so; `matched`: recognised as an already known person. */
  how: AssignmentHow;
  similarity?: number;
}

export interface StoredClusters {
  at: string;
  eps: number;
  minPoints: number;
  /** Face ids of each cluster, largest cluster first; a cluster's number is its position. */
  clusters: number[][];
}

/**
 * Where a content record's raw bytes lie in the file, and its thumbnails inside its binary tail. `blobOffset`
 * is where that tail starts in the file, -1 in an encrypted library (the record is read whole and decrypted).
 */
interface ContentPlace {
  offset: number;
  length: number;
  blobOffset: number;
  thumbnails: { start: number; length: number }[];
}

interface ContentJson {
  hash: string;
  width: number;
  height: number;
  scannedAt: string;
  faces: {
    id: number;
    box: Box;
    score: number;
    landmarks: Point[];
    quality: FaceQuality;
    thumbnailBytes: number;
  }[];
}

export interface NewFace {
  box: Box;
  score: number;
  landmarks: Point[];
  quality: FaceQuality;
  embedding: Float32Array;
  thumbnail: Buffer;
}

export interface OpenOptions {
  /** Create the file when it does not exist; needs `modelId` and `dimension`. */
  create?: boolean;
  modelId?: string;
  dimension?: number;
  /** The model's threshold, recorded in a new library. */
  threshold?: number;
  /** Open for reading only: no lock, no repair, nothing written. */
  readOnly?: boolean;
  /**
   * With `readOnly`: read past damage in the middle of the file (listing it in `damage`) instead of
   * refusing. Only for a caller that shows the damage next to what it read, such as `status`.
   */
  skipDamage?: boolean;
  /**
   * The key of an encrypted library: a passphrase (8 characters or more) or a raw 32-byte key (Buffer or 64 hex
   * digits). A new library is created encrypted with it; an existing one must have been made with it.
   */
  key?: string | Buffer;
}

export class LibraryDb {
  meta!: LibraryMeta;
  readonly contents = new Map<string, ContentEntry>();
  readonly files = new Map<string, FileEntry>();
  readonly unreadable = new Map<string, UnreadableEntry>();
  readonly assignments = new Map<number, Assignment>();
  clusters: StoredClusters | undefined;
  /** Bytes of a torn last record dropped on open (a crash during the previous write). */
  recoveredBytes = 0;
  /** Stretches of the file that could not be read (opened read-only with `skipDamage`). */
  damage: DamagedRange[] = [];
  /** Photos whose face record was lost to damage: forgotten, so that the next scan reads them again. */
  forgottenFiles = 0;

  private readonly places = new Map<string, ContentPlace>();
  private readonly faceById = new Map<number, LibraryFace>();
  private nextFaceId = 1;
  private records = 0;
  private appender: LogAppender | undefined;
  private lock: FileLock | undefined;
  private closed = false;
  /** The key record and sealer of an encrypted library. */
  private sealing: { record: unknown; sealer: RecordSealer } | undefined;

  private constructor(
    readonly file: string,
    private readonly readOnly: boolean,
  ) {}

  static async open(file: string, options: OpenOptions = {}): Promise<LibraryDb> {
    const db = new LibraryDb(path.resolve(file), options.readOnly ?? false);
    const exists = await fs.stat(db.file).then(
      (s) => s.isFile() || Promise.reject(new LibraryError(`${file}: not a file`)),
      (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? false : Promise.reject(err)),
    );
    if (!exists && !options.create) throw new LibraryError(`${file}: no such library (scan a folder first)`);
    if (options.skipDamage && !db.readOnly) {
      // A writer appends after the last record it read: past damage that would bury it for good.
      throw new LibraryError('damage can only be skipped when reading (readOnly)');
    }
    if (!db.readOnly) db.lock = await lockLibrary(db.file);
    try {
      if (!exists) {
        if (!options.modelId || !options.dimension) {
          throw new LibraryError('a new library needs the embedder id and dimension');
        }
        if (options.key !== undefined) db.sealing = await newLibraryKey(options.key);
        await createLog(db.file, db.sealing?.record);
        db.appender = await LogAppender.open(db.file, db.sealing?.sealer);
        db.meta = {
          format: LIBRARY_FORMAT,
          modelId: options.modelId,
          dimension: options.dimension,
          ...(options.threshold === undefined ? {} : { threshold: options.threshold }),
          createdAt: new Date().toISOString(),
        };
        db.appender.append(T.Meta, db.meta);
        await db.appender.flush();
        db.records = 1;
      } else {
        const result = await readLog(db.file, (r) => db.apply(r), {
          repair: !db.readOnly,
          onDamage: options.skipDamage ? 'skip' : 'refuse',
          unlock: async (record) => {
            const sealer = await unlockLibrary(record, options.key, file);
            db.sealing = { record, sealer };
            return sealer;
          },
        });
        if (!result.sealed && options.key !== undefined) {
          throw new LibraryKeyError(`${file} is not encrypted: open it without a key`);
        }
        db.recoveredBytes = result.truncatedBytes;
        db.damage = result.damage;
        if (!db.meta) throw new LibraryError(`${file}: library file without its description record`);
        db.forgetFilesWithoutFaces();
        if (options.modelId && options.modelId !== db.meta.modelId) {
          throw new LibraryError(
            `${file} holds faces embedded by '${db.meta.modelId}', not '${options.modelId}': use one library per model` +
              packHint(db.meta.modelId),
          );
        }
        if (!db.readOnly) db.appender = await LogAppender.open(db.file, db.sealing?.sealer);
      }
      return db;
    } catch (err) {
      await db.appender?.close().catch(() => undefined);
      await db.lock?.release();
      if (err instanceof LogDamageError) throw new LibraryDamagedError(err.message, err.damage);
      if (err instanceof RecordLogError) throw new LibraryError(err.message);
      throw err;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Reading the log

  /**
   * A file record whose content record is missing can only come from damage (a scan writes the
   * content first) and a repair that dropped it: the photo is forgotten, so that the next scan
   * reads it again instead of taking it for unchanged and its faces for none.
   */
  private forgetFilesWithoutFaces(): void {
    for (const [p, f] of this.files) {
      if (this.contents.has(f.hash)) continue;
      this.files.delete(p);
      this.forgottenFiles++;
    }
  }

  private apply(r: LogRecord): void {
    this.records++;
    const j = r.json as Record<string, unknown>;
    switch (r.type) {
      case T.Meta:
        if (j.format !== LIBRARY_FORMAT) throw new LibraryError(`${this.file}: not a faceflow library`);
        this.meta = j as unknown as LibraryMeta;
        break;
      case T.Content:
        this.applyContent(j as unknown as ContentJson, r);
        break;
      case T.File: {
        const f = j as unknown as FileEntry;
        this.files.set(f.path, { path: f.path, hash: f.hash, size: f.size, mtimeMs: f.mtimeMs });
        this.unreadable.delete(f.path);
        break;
      }
      case T.Unreadable: {
        const u = j as unknown as UnreadableEntry;
        this.unreadable.set(u.path, { path: u.path, size: u.size, mtimeMs: u.mtimeMs, error: u.error });
        this.files.delete(u.path);
        break;
      }
      case T.Gone:
        this.files.delete(j.path as string);
        this.unreadable.delete(j.path as string);
        break;
      case T.Assign:
        this.applyAssign(j as unknown as AssignJson);
        break;
      case T.Clusters:
        this.clusters = j as unknown as StoredClusters;
        break;
      default:
        // A record type from a newer faceflow: skipped, so that its other records still load.
        break;
    }
  }

  private applyContent(c: ContentJson, r: LogRecord): void {
    if (!this.meta) throw new LibraryError(`${this.file}: faces before the library's description record`);
    const d = this.meta.dimension;
    const vectorBytes = c.faces.length * d * 4;
    const thumbBytes = c.faces.reduce((s, f) => s + f.thumbnailBytes, 0);
    if (r.blob.length !== vectorBytes + thumbBytes) {
      throw new LibraryError(`${this.file}: face record at byte ${r.offset} has the wrong size`);
    }
    // Copied out of the record's buffer so that the buffer can be collected.
    const vectors = new Float32Array(c.faces.length * d);
    Buffer.from(vectors.buffer).set(r.blob.subarray(0, vectorBytes));
    let at = vectorBytes;
    const thumbnails = c.faces.map((f) => {
      const place = { start: at, length: f.thumbnailBytes };
      at += f.thumbnailBytes;
      return place;
    });
    const faces = c.faces.map((f, i): LibraryFace => ({
      id: f.id,
      hash: c.hash,
      box: f.box,
      score: f.score,
      landmarks: f.landmarks,
      quality: f.quality,
      embedding: vectors.subarray(i * d, (i + 1) * d),
    }));
    for (const f of faces) {
      this.faceById.set(f.id, f);
      this.nextFaceId = Math.max(this.nextFaceId, f.id + 1);
    }
    this.contents.set(c.hash, {
      hash: c.hash,
      width: c.width,
      height: c.height,
      faces,
      scannedAt: c.scannedAt,
    });
    this.places.set(c.hash, { offset: r.offset, length: r.length, blobOffset: r.blobOffset, thumbnails });
  }

  private applyAssign(a: AssignJson): void {
    a.ids.forEach((id, i) => {
      if (a.person === null) this.assignments.delete(id);
      else {
        const assignment: Assignment = { person: a.person, how: a.how };
        const similarity = a.similarity?.[i];
        // A compaction writes a face without one as null (JSON has no NaN).
        if (typeof similarity === 'number') assignment.similarity = similarity;
        this.assignments.set(id, assignment);
      }
    });
  }

  // -------------------------------------------------------------------------------------------
  // Queries

  face(id: number): LibraryFace | undefined {
    return this.faceById.get(id);
  }

  /** Contents that at least one scanned file still has. */
  liveHashes(): Set<string> {
    return new Set([...this.files.values()].map((f) => f.hash));
  }

  /** Faces of photos still in the library, in id order. */
  liveFaces(): LibraryFace[] {
    const live = this.liveHashes();
    return [...this.faceById.values()].filter((f) => live.has(f.hash)).sort((a, b) => a.id - b.id);
  }

  /** Files showing each content, sorted by path. */
  pathsByHash(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const f of [...this.files.values()].sort((a, b) => a.path.localeCompare(b.path))) {
      const list = out.get(f.hash) ?? [];
      list.push(f.path);
      out.set(f.hash, list);
    }
    return out;
  }

  /** Person → ids of their live faces, people sorted by name. */
  people(): Map<string, number[]> {
    const live = this.liveHashes();
    const out = new Map<string, number[]>();
    for (const [id, a] of [...this.assignments.entries()].sort(([x], [y]) => x - y)) {
      const face = this.faceById.get(id);
      if (!face || !live.has(face.hash)) continue;
      const list = out.get(a.person) ?? [];
      list.push(id);
      out.set(a.person, list);
    }
    return new Map([...out.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  async thumbnail(id: number): Promise<Buffer> {
    const face = this.faceById.get(id);
    if (!face) throw new LibraryError(`no face ${id} in this library`);
    const content = this.contents.get(face.hash)!;
    const place = this.places.get(face.hash)!;
    const thumb = place.thumbnails[content.faces.indexOf(face)];
    // A face added since the last flush is still in memory only: written first, then read like the others.
    if (this.appender && this.appender.pendingBytes > 0) await this.appender.flush();
    if (!this.sealing) return readBytes(this.file, place.blobOffset + thumb.start, thumb.length);
    const blob = await readRecordBlob(this.file, place.offset, place.length, this.sealing.sealer);
    return blob.subarray(thumb.start, thumb.start + thumb.length);
  }

  /** Share of the file that a compaction would remove (records superseded or of deleted photos). */
  garbageRatio(): number {
    const groups = new Set([...this.assignments.values()].map((a) => `${a.how}\u0000${a.person}`)).size;
    const liveRecords =
      1 + this.liveHashes().size + this.files.size + this.unreadable.size + groups + (this.clusters ? 1 : 0);
    return this.records <= liveRecords ? 0 : 1 - liveRecords / this.records;
  }

  // -------------------------------------------------------------------------------------------
  // Changes: queued in memory and in the log; durable after `flush()`

  /** Records the faces of a new content; returns them with their ids. */
  addContent(hash: string, width: number, height: number, faces: NewFace[]): ContentEntry {
    const appender = this.writable();
    if (this.contents.has(hash)) throw new LibraryError(`content ${hash} is already in the library`);
    const d = this.meta.dimension;
    faces.forEach((f) => {
      if (f.embedding.length !== d) {
        throw new LibraryError(`a face embedding has ${f.embedding.length} values, the library ${d}`);
      }
    });
    const scannedAt = new Date().toISOString();
    const json: ContentJson = {
      hash,
      width,
      height,
      scannedAt,
      faces: faces.map((f) => ({
        id: this.nextFaceId++,
        box: f.box,
        score: f.score,
        landmarks: f.landmarks,
        quality: f.quality,
        thumbnailBytes: f.thumbnail.length,
      })),
    };
    const vectors = Buffer.alloc(faces.length * d * 4);
    faces.forEach((f, i) =>
      vectors.set(Buffer.from(f.embedding.buffer, f.embedding.byteOffset, d * 4), i * d * 4),
    );
    const blob = Buffer.concat([vectors, ...faces.map((f) => f.thumbnail)]);
    const record = appender.encode(T.Content, json, blob);
    const { offset, blobOffset } = appender.appendRaw(record);
    this.applyContent(json, { type: T.Content, json, blob, offset, blobOffset, length: record.length });
    this.records++;
    return this.contents.get(hash)!;
  }

  setFile(entry: FileEntry): void {
    this.write(T.File, entry);
  }

  setUnreadable(entry: UnreadableEntry): void {
    this.write(T.Unreadable, entry);
  }

  markGone(file: string): void {
    this.write(T.Gone, { path: file });
  }

  /** Says who faces are (`person` null: nobody, undoing an earlier assignment). */
  assign(ids: number[], person: string | null, how: AssignmentHow, similarity?: number[]): void {
    for (const id of ids) if (!this.faceById.has(id)) throw new LibraryError(`no face ${id} in this library`);
    if (person !== null) checkPersonName(person);
    const json: AssignJson = { ids, person, how };
    if (similarity) json.similarity = similarity.map((s) => Math.round(s * 1e4) / 1e4);
    this.write(T.Assign, json);
  }

  setClusters(clusters: StoredClusters): void {
    this.write(T.Clusters, clusters);
  }

  private write(type: T, json: unknown): void {
    this.writable().append(type, json);
    this.apply({ type, json, blob: Buffer.alloc(0), offset: 0, blobOffset: 0, length: 0 });
  }

  private writable(): LogAppender {
    if (this.closed) throw new LibraryError('the library is closed');
    if (!this.appender) throw new LibraryError('the library was opened read-only');
    return this.appender;
  }

  get unflushedBytes(): number {
    return this.appender?.pendingBytes ?? 0;
  }

  /** Makes every change so far durable. */
  async flush(): Promise<void> {
    await this.appender?.flush();
  }

  /**
   * Rewrites the file with only what is live: the faces of photos that were deleted, superseded
   * records and old assignments are gone from disk afterwards (also a matter of privacy). Written
   * beside the file, fsynced and renamed over it, so a crash leaves either file whole.
   */
  async compact(): Promise<void> {
    const appender = this.writable();
    await appender.flush();
    const tmp = `${this.file}.compact-${process.pid}`;
    await fs.rm(tmp, { force: true });
    // Same key record and key: the live records are copied as they are, still sealed.
    await createLog(tmp, this.sealing?.record);
    const out = await LogAppender.open(tmp, this.sealing?.sealer);
    const live = this.liveHashes();
    const places = new Map<string, ContentPlace>();
    let records = 0;
    try {
      out.append(T.Meta, this.meta);
      records++;
      const source = await fs.open(this.file, 'r');
      try {
        for (const hash of live) {
          const place = this.places.get(hash)!;
          const raw = Buffer.alloc(place.length);
          await source.read(raw, 0, place.length, place.offset);
          const { offset } = out.appendRaw(raw);
          const shift = offset - place.offset;
          places.set(hash, {
            offset,
            length: place.length,
            blobOffset: place.blobOffset < 0 ? -1 : place.blobOffset + shift,
            thumbnails: place.thumbnails,
          });
          records++;
          if (out.pendingBytes > 8 * 1024 * 1024) await out.flush();
        }
      } finally {
        await source.close();
      }
      const rest: [T, unknown][] = [
        ...[...this.files.values()].map((f): [T, unknown] => [T.File, f]),
        ...[...this.unreadable.values()].map((u): [T, unknown] => [T.Unreadable, u]),
        ...this.assignmentGroups(live).map((a): [T, unknown] => [T.Assign, a]),
      ];
      for (const [type, json] of rest) out.append(type, json);
      records += rest.length;
      if (this.clusters) {
        const liveIds = (ids: number[]) => ids.filter((id) => live.has(this.faceById.get(id)?.hash ?? ''));
        out.append(T.Clusters, { ...this.clusters, clusters: this.clusters.clusters.map(liveIds) });
        records++;
      }
      await out.close();
    } catch (err) {
      await out.close().catch(() => undefined);
      await fs.rm(tmp, { force: true });
      throw err;
    }
    await appender.close();
    this.appender = undefined;
    await fs.rename(tmp, this.file);
    await syncDir(path.dirname(this.file));
    this.appender = await LogAppender.open(this.file, this.sealing?.sealer);
    for (const hash of [...this.contents.keys()]) {
      if (live.has(hash)) continue;
      for (const f of this.contents.get(hash)!.faces) {
        this.faceById.delete(f.id);
        this.assignments.delete(f.id);
      }
      this.contents.delete(hash);
    }
    this.places.clear();
    for (const [hash, place] of places) this.places.set(hash, place);
    this.records = records;
  }

  /** The live assignments as few records as possible: one per person and kind. */
  private assignmentGroups(live: Set<string>): AssignJson[] {
    const groups = new Map<string, AssignJson>();
    for (const [id, a] of this.assignments) {
      if (!live.has(this.faceById.get(id)?.hash ?? '')) continue;
      const key = `${a.how}\u0000${a.person}`;
      const g = groups.get(key) ?? { ids: [], person: a.person, how: a.how, similarity: [] };
      g.ids.push(id);
      g.similarity!.push(a.similarity ?? NaN);
      groups.set(key, g);
    }
    return [...groups.values()].map((g) =>
      g.similarity!.every((s) => Number.isNaN(s)) ? { ids: g.ids, person: g.person, how: g.how } : g,
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.appender?.close();
    } finally {
      await this.lock?.release();
    }
  }
}

interface AssignJson {
  ids: number[];
  person: string | null;
  how: AssignmentHow;
  similarity?: number[];
}

/** A person's name as people write it; nothing that would break a CSV line or a file name. */
export function checkPersonName(name: string): void {
  if (typeof name !== 'string' || name.trim() === '' || name !== name.trim()) {
    throw new LibraryError(`a person's name must be non-empty text without surrounding spaces`);
  }
  if (name.length > 100) throw new LibraryError(`a person's name may have at most 100 characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name))
    throw new LibraryError(`a person's name may not hold control characters`);
}

// ---------------------------------------------------------------------------------------------
// One writer at a time: two scans appending to one file would hand out the same face ids.

/** The writer's lock of a library file; a second writer is refused at once, told who holds it. */
export async function lockLibrary(file: string, purpose = 'faceflow library scan'): Promise<FileLock> {
  try {
    return await FileLock.acquire(file, { purpose });
  } catch (err) {
    if (!(err instanceof FileLockError)) throw err;
    if (!err.holder) throw new LibraryError(err.message);
    const { pid, host, purpose, since } = err.holder;
    if (pid === process.pid && host === os.hostname()) {
      throw new LibraryError(`${file} is already open in this process (${purpose}, since ${since})`);
    }
    const where = host === os.hostname() ? '' : ` on ${host}`;
    throw new LibraryError(
      `${file} is in use by process ${pid}${where} (${purpose}, since ${since}): a scan still running? ` +
        `(lock file ${err.lockFile})`,
    );
  }
}
