import { GalleryError } from './errors';
import type { GalleryUnknownRecord, GalleryUnknownsSnapshot } from './store';

/**
 * A face that matched nobody, kept so that people nobody has named yet can be clustered and named later.
 * cluster.ts groups these (it re-exports this type).
 */
export interface UnknownFace {
  id: number;
  embedding: Float32Array;
  /** A small JPEG of the face, so a person can recognise whom a cluster shows. */
  thumbnail?: Buffer;
  /** Where the face was seen (camera, file, flow node). */
  source?: string;
  /** ISO 8601 time the face was seen. */
  seenAt: string;
}

export interface UnknownFaceOptions {
  thumbnail?: Buffer;
  source?: string;
  /** Defaults to now. */
  seenAt?: string | Date;
}

export const DEFAULT_UNKNOWN_CAPACITY = 5000;
/** A thumbnail is a small preview; larger images belong in the caller's own storage, not in the gallery file. */
export const MAX_THUMBNAIL_BYTES = 64 * 1024;
export const MAX_SOURCE_LENGTH = 4096;

interface Entry {
  embedding: Float32Array;
  thumbnail?: Buffer;
  source?: string;
  seenAt: string;
}

/**
 * A bounded pool of faces that matched nobody, oldest first. When full, the oldest face is dropped for each new
 * one (and counted in {@link UnknownPool.dropped}), so a busy camera cannot grow the gallery without limit. Ids
 * are never reused, even after `remove()` or `clear()`, so a clustering result that names ids stays unambiguous.
 *
 * Privacy: thumbnails are photos of people who have not consented to be enrolled. They live in memory here and
 * in the gallery file (inside its JSON section, encrypted when the file has a key) and in that file's backups;
 * `GalleryFile.removeUnknowns()` / `clearUnknowns()` also purge the backups. They leave the file only through an
 * export made with `includeUnknowns` and `includeThumbnails`, which is unencrypted.
 */
export class UnknownPool {
  readonly capacity: number;
  private faces = new Map<number, Entry>();
  private nextId = 1;
  private droppedCount = 0;

  constructor(
    readonly dimension: number,
    options: { capacity?: number } = {},
  ) {
    const capacity = options.capacity ?? DEFAULT_UNKNOWN_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new GalleryError(`unknown-face capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
  }

  get size(): number {
    return this.faces.size;
  }

  /** How many faces were pushed out by newer ones because the pool was full (over the pool's whole life). */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Keeps a face that matched nobody; returns its id. */
  add(embedding: Float32Array, options: UnknownFaceOptions = {}): number {
    const entry = this.checkedEntry(
      embedding,
      options.thumbnail,
      options.source,
      options.seenAt,
      'unknown face',
    );
    this.evictFor(1);
    const id = this.nextId++;
    this.faces.set(id, entry);
    return id;
  }

  has(id: number): boolean {
    return this.faces.has(id);
  }

  get(id: number): UnknownFace | undefined {
    const e = this.faces.get(id);
    return e && toFace(id, e);
  }

  /** A page of faces, oldest first. */
  list(options: { offset?: number; limit?: number } = {}): { total: number; items: UnknownFace[] } {
    const offset = Math.max(0, Math.floor(options.offset ?? 0));
    const limit = Math.max(0, Math.floor(options.limit ?? 100));
    const items: UnknownFace[] = [];
    let i = 0;
    for (const [id, e] of this.faces) {
      if (i >= offset + limit) break;
      if (i++ >= offset) items.push(toFace(id, e));
    }
    return { total: this.faces.size, items };
  }

  /** Every face, oldest first (copies). */
  all(): UnknownFace[] {
    return [...this.faces].map(([id, e]) => toFace(id, e));
  }

  /** Removes faces by id; ids not held (already removed or dropped) are ignored. Returns how many were removed. */
  remove(ids: Iterable<number>): number {
    let n = 0;
    for (const id of ids) if (this.faces.delete(id)) n++;
    return n;
  }

  /** Removes every face; returns how many there were. Ids keep counting up. */
  clear(): number {
    const n = this.faces.size;
    this.faces.clear();
    return n;
  }

  /** Whether the pool has never held anything, so a snapshot need not mention it. */
  get pristine(): boolean {
    return this.faces.size === 0 && this.nextId === 1 && this.droppedCount === 0;
  }

  toSnapshot(): GalleryUnknownsSnapshot {
    const d = this.dimension;
    const records: GalleryUnknownRecord[] = [];
    const vectors = new Float32Array(this.faces.size * d);
    let i = 0;
    for (const [id, e] of this.faces) {
      records.push({
        id,
        seenAt: e.seenAt,
        ...(e.source !== undefined && { source: e.source }),
        ...(e.thumbnail !== undefined && { thumbnail: Buffer.from(e.thumbnail) }),
      });
      vectors.set(e.embedding, i++ * d);
    }
    return { nextId: this.nextId, dropped: this.droppedCount, records, vectors };
  }

  /**
   * Replaces the content with a snapshot's (undefined: an empty, never used pool). Everything is checked before
   * anything changes. A snapshot larger than this pool's capacity loses its oldest faces, counted as dropped.
   */
  load(snapshot: GalleryUnknownsSnapshot | undefined): void {
    const s = snapshot ?? { nextId: 1, dropped: 0, records: [], vectors: new Float32Array(0) };
    const d = this.dimension;
    if (!(s.vectors instanceof Float32Array) || s.vectors.length !== s.records.length * d) {
      throw new GalleryError(
        `stored unknown faces hold ${s.vectors?.length ?? 0} vector values for ${s.records.length} faces of ${d} dimensions`,
      );
    }
    if (!Number.isInteger(s.dropped) || s.dropped < 0) {
      throw new GalleryError('stored unknown faces: dropped must be a non-negative integer');
    }
    const faces = new Map<number, Entry>();
    let maxId = 0;
    s.records.forEach((r, i) => {
      if (!Number.isInteger(r.id) || r.id < 1)
        throw new GalleryError(`stored unknown face has invalid id ${r.id}`);
      if (faces.has(r.id)) throw new GalleryError(`stored unknown face id ${r.id} appears twice`);
      const what = `stored unknown face ${r.id}`;
      faces.set(
        r.id,
        this.checkedEntry(s.vectors.subarray(i * d, (i + 1) * d), r.thumbnail, r.source, r.seenAt, what),
      );
      maxId = Math.max(maxId, r.id);
    });
    let dropped = s.dropped;
    for (const id of faces.keys()) {
      if (faces.size <= this.capacity) break;
      faces.delete(id);
      dropped++;
    }
    this.faces = faces;
    this.droppedCount = dropped;
    this.nextId = Math.max(Number.isInteger(s.nextId) ? s.nextId : 1, maxId + 1, 1);
  }

  private evictFor(incoming: number): void {
    for (const id of this.faces.keys()) {
      if (this.faces.size + incoming <= this.capacity) break;
      this.faces.delete(id);
      this.droppedCount++;
    }
  }

  /** Validates one face and returns private copies of its parts. */
  private checkedEntry(
    embedding: unknown,
    thumbnail: unknown,
    source: unknown,
    seenAt: unknown,
    what: string,
  ): Entry {
    if (!(embedding instanceof Float32Array) || embedding.length !== this.dimension) {
      throw new GalleryError(`${what}: embedding must be a Float32Array of ${this.dimension} values`);
    }
    if (!embedding.every(Number.isFinite))
      throw new GalleryError(`${what}: embedding contains non-finite values`);
    if (thumbnail !== undefined) {
      if (!Buffer.isBuffer(thumbnail)) throw new GalleryError(`${what}: thumbnail must be a Buffer (a JPEG)`);
      if (thumbnail.length > MAX_THUMBNAIL_BYTES) {
        throw new GalleryError(
          `${what}: thumbnail is ${thumbnail.length} bytes; at most ${MAX_THUMBNAIL_BYTES} (64 KiB) are kept — ` +
            'send a smaller crop or a lower JPEG quality',
        );
      }
    }
    if (source !== undefined) {
      if (typeof source !== 'string') throw new GalleryError(`${what}: source must be a string`);
      if (source.length > MAX_SOURCE_LENGTH) {
        throw new GalleryError(`${what}: source is longer than ${MAX_SOURCE_LENGTH} characters`);
      }
    }
    let seen: string;
    if (seenAt === undefined) seen = new Date().toISOString();
    else if (seenAt instanceof Date && !Number.isNaN(seenAt.getTime())) seen = seenAt.toISOString();
    else if (typeof seenAt === 'string' && !Number.isNaN(Date.parse(seenAt))) seen = seenAt;
    else throw new GalleryError(`${what}: seenAt must be a date or an ISO 8601 date string`);
    return {
      embedding: Float32Array.from(embedding),
      seenAt: seen,
      ...(thumbnail !== undefined && { thumbnail: Buffer.from(thumbnail as Buffer) }),
      ...(source !== undefined && { source: source as string }),
    };
  }
}

function toFace(id: number, e: Entry): UnknownFace {
  return {
    id,
    embedding: Float32Array.from(e.embedding),
    seenAt: e.seenAt,
    ...(e.thumbnail !== undefined && { thumbnail: Buffer.from(e.thumbnail) }),
    ...(e.source !== undefined && { source: e.source }),
  };
}
