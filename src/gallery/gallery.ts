import type { Candidate, Identity } from '../types';
import { embeddingKey } from './embeddingKey';
import { GalleryError } from './errors';
import { identityFromRanking, withModelMargin, type MatchOptions } from './memoryGallery';
import { identityNameProblem } from './names';
import type { GalleryEmbeddingRecord, GalleryRejectionRecord, GallerySnapshot } from './store';
import { MAX_THUMBNAIL_BYTES, UnknownPool } from './unknownPool';
import type { VectorIndex } from './vectorIndex';

// The name rule lives in names.ts; these stay importable from here, where callers have always found them.
export { identityNameProblem, MAX_NAME_LENGTH } from './names';
export { GalleryError };

export interface GalleryMatchOptions extends MatchOptions {
  /** `best`: an identity scores its best embedding; `centroid`: the mean of its embeddings. */
  mode?: 'best' | 'centroid';
}

export interface IdentityInfo {
  name: string;
  meta: Record<string, unknown>;
  createdAt: string;
  embeddings: number;
  /** Enrolled from one photo only: matched less reliably than with a few views; enrol more. */
  singlePhoto: boolean;
  /** Whether {@link Gallery.thumbnailOf} has a picture of this identity. */
  hasThumbnail: boolean;
  /** Faces marked "not this person" (see {@link Gallery.reject}). */
  rejections: number;
}

/** A face marked "not this person", without its vector. */
export type RejectionRecord = Omit<GalleryRejectionRecord, 'vector'>;

export type EmbeddingRecord = GalleryEmbeddingRecord;

/** Everything a gallery holds, as the store writes it. */
export type GalleryState = GallerySnapshot;

export interface GalleryOptions {
  /** How many faces that matched nobody are kept for later naming (default 5,000; oldest dropped first). */
  unknownCapacity?: number;
}

interface Person {
  meta: Record<string, unknown>;
  createdAt: string;
  ids: Set<number>;
  /** Ids of the faces marked "not this person". */
  notIds: Set<number>;
  thumbnail?: Buffer;
}

/**
 * Identities with many embeddings each, searched through a vector index. The gallery owns the
 * ids (the index only maps them to vectors), remembers which model made its embeddings and refuses
 * any other, and can be written out and read back as a `GalleryState`.
 *
 * Beside the named identities it keeps {@link Gallery.unknowns}: faces that matched nobody, with optional
 * thumbnails, for clustering and naming later. They are personal data like the rest (see `UnknownPool`).
 */
export class Gallery {
  private people = new Map<string, Person>();
  private records = new Map<number, EmbeddingRecord>();
  private vectors = new Map<number, Float32Array>();
  /** Faces marked "not this person", by id (ids drawn from the same counter as embeddings). */
  private rejected = new Map<number, GalleryRejectionRecord>();
  /** Which embedding holds a photo, so re-enrolling the same photo is refused without a scan. */
  private bySha = new Map<string, number>();
  /**
   * Embedding keys already computed, by id. A vector never changes after it is added and ids are
   * not reused, so each is hashed once rather than at every save (merging a gallery file digests it
   * several times per save).
   */
  private keys = new Map<number, string>();
  private nextId = 1;
  threshold?: number;
  /** Faces that matched nobody, of this gallery's model and dimension. */
  readonly unknowns: UnknownPool;

  constructor(
    readonly modelId: string,
    readonly dimension: number,
    private readonly index: VectorIndex,
    options: GalleryOptions = {},
  ) {
    if (!modelId) throw new GalleryError('a gallery needs the id of the model that makes its embeddings');
    if (index.dimension !== dimension) {
      throw new GalleryError(`index has ${index.dimension} dimensions, gallery ${dimension}`);
    }
    this.unknowns = new UnknownPool(dimension, { capacity: options.unknownCapacity });
  }

  static fromState(state: GalleryState, index: VectorIndex, options: GalleryOptions = {}): Gallery {
    const g = new Gallery(state.modelId, state.dimension, index, options);
    g.load(state);
    return g;
  }

  /**
   * Swaps the whole content (identities, embeddings, threshold, unknown faces) for a state of the same model,
   * e.g. to undo a failed import. A state that does not hold together is refused before anything changes.
   */
  replaceState(state: GalleryState): void {
    if (state.modelId !== this.modelId || state.dimension !== this.dimension) {
      throw new GalleryError(
        `state holds ${state.dimension}-d embeddings of '${state.modelId}', this gallery ${this.dimension}-d of '${this.modelId}'`,
      );
    }
    this.load(state);
  }

  private load(state: GalleryState): void {
    const d = this.dimension;
    if (!(state.vectors instanceof Float32Array) || state.vectors.length !== state.embeddings.length * d) {
      throw new GalleryError(
        `stored vectors hold ${(state.vectors?.length ?? 0) / d} rows for ${state.embeddings.length} embeddings`,
      );
    }
    // Built aside and swapped in at the end, so that a bad state leaves this gallery as it was.
    const people = new Map<string, Person>();
    for (const p of state.identities) {
      if (people.has(p.name)) throw new GalleryError(`identity '${p.name}' is stored twice`);
      // A picture that is not a usable JPEG is left out rather than refusing the whole gallery over a preview.
      const thumbnail = p.thumbnail !== undefined && !thumbnailProblem(p.thumbnail) ? p.thumbnail : undefined;
      people.set(p.name, {
        meta: { ...p.meta },
        createdAt: p.createdAt,
        ids: new Set(),
        notIds: new Set(),
        ...(thumbnail && { thumbnail: Buffer.from(thumbnail) }),
      });
    }
    const records = new Map<number, EmbeddingRecord>();
    const vectors = new Map<number, Float32Array>();
    const bySha = new Map<string, number>();
    const ids: number[] = [];
    const rows: Float32Array[] = [];
    let nextId = Math.max(state.nextId, 1);
    state.embeddings.forEach((rec, i) => {
      const person = people.get(rec.name);
      if (!person) throw new GalleryError(`embedding ${rec.id} belongs to unknown identity '${rec.name}'`);
      if (records.has(rec.id)) throw new GalleryError(`embedding id ${rec.id} is stored twice`);
      const v = state.vectors.slice(i * d, (i + 1) * d);
      person.ids.add(rec.id);
      records.set(rec.id, { ...rec });
      vectors.set(rec.id, v);
      if (rec.sha256 && !bySha.has(rec.sha256)) bySha.set(rec.sha256, rec.id);
      ids.push(rec.id);
      rows.push(v);
      nextId = Math.max(nextId, rec.id + 1);
    });
    const rejected = new Map<number, GalleryRejectionRecord>();
    for (const r of state.rejections ?? []) {
      const person = people.get(r.name);
      if (!person) throw new GalleryError(`rejection ${r.id} belongs to unknown identity '${r.name}'`);
      if (records.has(r.id) || rejected.has(r.id)) throw new GalleryError(`id ${r.id} is stored twice`);
      if (!(r.vector instanceof Float32Array) || r.vector.length !== d) {
        throw new GalleryError(`rejection ${r.id} is not a vector of ${d} values`);
      }
      person.notIds.add(r.id);
      rejected.set(r.id, { ...r, vector: Float32Array.from(r.vector) });
      nextId = Math.max(nextId, r.id + 1);
    }
    this.unknowns.load(state.unknowns);
    this.index.remove([...this.records.keys()]);
    this.index.add(ids, rows);
    this.people = people;
    this.records = records;
    this.vectors = vectors;
    this.rejected = rejected;
    this.keys = new Map();
    this.bySha = bySha;
    this.nextId = nextId;
    this.threshold = state.threshold;
  }

  toState(): GalleryState {
    const embeddings = [...this.records.values()].sort((a, b) => a.id - b.id);
    const vectors = new Float32Array(embeddings.length * this.dimension);
    embeddings.forEach((rec, i) => vectors.set(this.vectors.get(rec.id) as Float32Array, i * this.dimension));
    return {
      modelId: this.modelId,
      dimension: this.dimension,
      threshold: this.threshold,
      nextId: this.nextId,
      identities: [...this.people.entries()].map(([name, p]) => ({
        name,
        meta: { ...p.meta },
        createdAt: p.createdAt,
        ...(p.thumbnail !== undefined && { thumbnail: Buffer.from(p.thumbnail) }),
      })),
      embeddings: embeddings.map((r) => ({ ...r })),
      vectors,
      // Left out while never used, so the file keeps the version 1 layout that older faceflow can read.
      ...(!this.unknowns.pristine && { unknowns: this.unknowns.toSnapshot() }),
      // Likewise: only a gallery that holds some needs the format version that knows them.
      ...(this.rejected.size > 0 && {
        rejections: [...this.rejected.values()]
          .sort((a, b) => a.id - b.id)
          .map((r) => ({ ...r, vector: Float32Array.from(r.vector) })),
      }),
    };
  }

  /** Refuse embeddings from another model: their similarities would mean nothing here. */
  checkModel(modelId: string): void {
    if (modelId !== this.modelId) {
      throw new GalleryError(
        `this gallery holds embeddings of '${this.modelId}', not '${modelId}'; use a gallery per model`,
      );
    }
  }

  get size(): number {
    return this.people.size;
  }

  get embeddingCount(): number {
    return this.records.size;
  }

  has(name: string): boolean {
    return this.people.has(name);
  }

  /**
   * Create an identity without embeddings yet (or update nothing when it exists). `createdAt` (ISO 8601)
   * carries the original date over when an identity is imported; it defaults to now.
   */
  addIdentity(name: string, meta: Record<string, unknown> = {}, options: { createdAt?: string } = {}): void {
    checkName(name);
    if (this.people.has(name)) return;
    const createdAt = options.createdAt ?? new Date().toISOString();
    checkDate(createdAt, 'createdAt');
    this.people.set(name, { meta: { ...meta }, createdAt, ids: new Set(), notIds: new Set() });
  }

  /** The embedding made from the photo with this SHA-256, if it is enrolled. */
  findBySha256(sha256: string): EmbeddingRecord | undefined {
    const id = this.bySha.get(sha256);
    const rec = id === undefined ? undefined : this.records.get(id);
    return rec && { ...rec };
  }

  /**
   * Add one embedding to an identity (created when new); returns the embedding's id. `addedAt` (ISO 8601)
   * carries the original date over when an embedding is imported; it defaults to now.
   */
  addEmbedding(
    name: string,
    embedding: Float32Array,
    options: { sha256?: string; meta?: Record<string, unknown>; addedAt?: string } = {},
  ): number {
    checkName(name);
    this.checkVector(embedding);
    const addedAt = options.addedAt ?? new Date().toISOString();
    checkDate(addedAt, 'addedAt');
    if (options.sha256) {
      const dup = this.findBySha256(options.sha256);
      if (dup)
        throw new GalleryError(`this photo is already enrolled (as '${dup.name}', embedding ${dup.id})`);
    }
    this.addIdentity(name, options.meta);
    if (options.meta) Object.assign((this.people.get(name) as Person).meta, options.meta);
    const id = this.nextId++;
    const v = Float32Array.from(embedding);
    this.index.add([id], [v]);
    this.vectors.set(id, v);
    this.records.set(id, { id, name, sha256: options.sha256, addedAt });
    if (options.sha256) this.bySha.set(options.sha256, id);
    (this.people.get(name) as Person).ids.add(id);
    return id;
  }

  /** Identities sorted by name, a page at a time. */
  list(options: { offset?: number; limit?: number } = {}): { total: number; items: IdentityInfo[] } {
    const offset = Math.max(0, Math.floor(options.offset ?? 0));
    const limit = Math.max(0, Math.floor(options.limit ?? 100));
    const names = [...this.people.keys()].sort((a, b) => a.localeCompare(b));
    const items = names
      .slice(offset, offset + limit)
      .map((name) => info(name, this.people.get(name) as Person));
    return { total: names.length, items };
  }

  /** One identity's details, or undefined when there is none by that name. */
  identity(name: string): IdentityInfo | undefined {
    const p = this.people.get(name);
    return p && info(name, p);
  }

  /** The identity's picture (a copy), or undefined when it has none; throws for an unknown name. */
  thumbnailOf(name: string): Buffer | undefined {
    const t = this.person(name).thumbnail;
    return t && Buffer.from(t);
  }

  /**
   * Sets (or with undefined, removes) the small JPEG that shows who an identity is in lists. One per identity:
   * a preview for people, never used for matching.
   */
  setThumbnail(name: string, jpeg: Buffer | undefined): void {
    const p = this.person(name);
    if (jpeg === undefined) {
      delete p.thumbnail;
      return;
    }
    const why = thumbnailProblem(jpeg);
    if (why) throw new GalleryError(why);
    p.thumbnail = Buffer.from(jpeg);
  }

  /** The content key of embedding `id` (see embeddingKey.ts), computed once. */
  keyOf(id: number): string {
    let key = this.keys.get(id);
    if (key === undefined) {
      const vector = this.vectors.get(id);
      if (!vector) throw new GalleryError(`no embedding ${id}`);
      key = embeddingKey(vector);
      this.keys.set(id, key);
    }
    return key;
  }

  embeddingsOf(name: string): EmbeddingRecord[] {
    const p = this.person(name);
    return [...p.ids].map((id) => ({ ...(this.records.get(id) as EmbeddingRecord) }));
  }

  /** An identity's embeddings with their vectors (copies), for calibration and export. */
  vectorsOf(name: string): { record: EmbeddingRecord; vector: Float32Array }[] {
    const p = this.person(name);
    return [...p.ids]
      .sort((a, b) => a - b)
      .map((id) => ({
        record: { ...(this.records.get(id) as EmbeddingRecord) },
        vector: Float32Array.from(this.vectors.get(id) as Float32Array),
      }));
  }

  rename(from: string, to: string): void {
    checkName(to);
    const p = this.person(from);
    if (from === to) return;
    if (this.people.has(to)) throw new GalleryError(`'${to}' already exists; delete or merge it first`);
    this.people.delete(from);
    this.people.set(to, p);
    for (const id of p.ids) (this.records.get(id) as EmbeddingRecord).name = to;
    for (const id of p.notIds) (this.rejected.get(id) as GalleryRejectionRecord).name = to;
  }

  /**
   * Marks a face as "not this person": from then on a face that is at least as similar to it as to the person's
   * own embeddings is never matched to them (see {@link rank}). For the wrong name a person saw, or an unknown face
   * that came close: the face itself is not enrolled anywhere. The same face twice is kept once; returns its id.
   */
  reject(name: string, embedding: Float32Array, options: { addedAt?: string } = {}): number {
    const p = this.person(name);
    this.checkVector(embedding);
    const addedAt = options.addedAt ?? new Date().toISOString();
    checkDate(addedAt, 'addedAt');
    const key = embeddingKey(embedding);
    for (const id of p.notIds) {
      if (embeddingKey((this.rejected.get(id) as GalleryRejectionRecord).vector) === key) return id;
    }
    const id = this.nextId++;
    this.rejected.set(id, { id, name, addedAt, vector: Float32Array.from(embedding) });
    p.notIds.add(id);
    return id;
  }

  /** The faces marked "not `name`", oldest first, with their vectors (copies). */
  rejectionsOf(name: string): { record: RejectionRecord; vector: Float32Array }[] {
    return [...this.person(name).notIds]
      .sort((a, b) => a - b)
      .map((id) => {
        const { vector, ...record } = this.rejected.get(id) as GalleryRejectionRecord;
        return { record, vector: Float32Array.from(vector) };
      });
  }

  /** Undoes a {@link reject}; returns the name it was held against. */
  removeRejection(id: number): string {
    const r = this.rejected.get(id);
    if (!r) throw new GalleryError(`no rejection ${id}`);
    this.rejected.delete(id);
    this.people.get(r.name)?.notIds.delete(id);
    return r.name;
  }

  get rejectionCount(): number {
    return this.rejected.size;
  }

  updateMeta(name: string, meta: Record<string, unknown>, mode: 'merge' | 'replace' = 'merge'): void {
    if (meta === null || typeof meta !== 'object' || Array.isArray(meta))
      throw new GalleryError('metadata must be an object');
    const p = this.person(name);
    p.meta = mode === 'merge' ? { ...p.meta, ...meta } : { ...meta };
  }

  removeEmbedding(id: number): void {
    const rec = this.records.get(id);
    if (!rec) throw new GalleryError(`no embedding ${id}`);
    this.index.remove([id]);
    this.forget(rec);
    this.people.get(rec.name)?.ids.delete(id);
  }

  removeIdentity(name: string): number {
    const p = this.person(name);
    this.index.remove([...p.ids]);
    for (const id of p.ids) this.forget(this.records.get(id) as EmbeddingRecord);
    for (const id of p.notIds) this.rejected.delete(id);
    this.people.delete(name);
    return p.ids.size;
  }

  /** Deletes every identity. The unknown faces are kept; `unknowns.clear()` deletes those. */
  clear(): void {
    this.index.remove([...this.records.keys()]);
    this.records.clear();
    this.vectors.clear();
    this.keys.clear();
    this.bySha.clear();
    this.rejected.clear();
    this.people.clear();
  }

  private forget(rec: EmbeddingRecord): void {
    this.records.delete(rec.id);
    this.vectors.delete(rec.id);
    this.keys.delete(rec.id);
    if (rec.sha256 && this.bySha.get(rec.sha256) === rec.id) this.bySha.delete(rec.sha256);
  }

  /**
   * Identities ranked by similarity to `query`, best first. A person is left out when the query is at least as
   * similar to one of the faces marked "not them" as to the person (see {@link reject}): the nearest example
   * decides, so a rejection only takes away the faces that look more like it than like the person.
   */
  rank(query: Float32Array, topK: number, mode: 'best' | 'centroid' = 'best'): Candidate[] {
    if (!(query instanceof Float32Array) || query.length !== this.dimension) {
      throw new GalleryError(`query must be a Float32Array of ${this.dimension} values`);
    }
    if (this.rejected.size === 0) {
      return mode === 'centroid' ? this.rankByCentroid(query) : this.rankByBest(query, topK);
    }
    // Asked for more, so that `topK` people are left after the rejected ones are taken out.
    const ranked =
      mode === 'centroid' ? this.rankByCentroid(query) : this.rankByBest(query, topK + this.rejected.size);
    return ranked.filter((c) => !this.rejectedFor(c.name, query, c.similarity));
  }

  private rejectedFor(name: string, query: Float32Array, similarity: number): boolean {
    const p = this.people.get(name);
    if (!p) return false;
    for (const id of p.notIds) {
      if (dot(query, (this.rejected.get(id) as GalleryRejectionRecord).vector) >= similarity) return true;
    }
    return false;
  }

  match(query: Float32Array, options: GalleryMatchOptions): Identity {
    const topK = Math.max(1, options.topK ?? 3);
    // One more than asked, so the margin to the runner-up is right even when topK is 1.
    return identityFromRanking(
      this.rank(query, topK + 1, options.mode).slice(0, topK + 1),
      withModelMargin(options, this.modelId),
    );
  }

  private rankByBest(query: Float32Array, topK: number): Candidate[] {
    const total = this.records.size;
    if (total === 0) return [];
    // Enough neighbours to see `topK` different people; widen when a few people own all the hits.
    for (let k = Math.min(total, Math.max(32, topK * 8)); ; k = Math.min(total, k * 4)) {
      const best = new Map<string, number>();
      for (const hit of this.index.search(query, k)) {
        const name = this.records.get(hit.id)?.name;
        if (name !== undefined && !best.has(name)) best.set(name, hit.score);
      }
      if (best.size >= Math.min(topK, this.peopleWithEmbeddings()) || k >= total) {
        return [...best.entries()]
          .map(([name, similarity]) => ({ name, similarity }))
          .sort((a, b) => b.similarity - a.similarity);
      }
    }
  }

  private peopleWithEmbeddings(): number {
    let n = 0;
    for (const p of this.people.values()) if (p.ids.size > 0) n++;
    return n;
  }

  private rankByCentroid(query: Float32Array): Candidate[] {
    const out: Candidate[] = [];
    for (const [name, p] of this.people) {
      if (p.ids.size === 0) continue;
      const c = new Float32Array(this.dimension);
      for (const id of p.ids) {
        const v = this.vectors.get(id) as Float32Array;
        for (let i = 0; i < c.length; i++) c[i] += v[i];
      }
      let norm = 0;
      for (let i = 0; i < c.length; i++) norm += c[i] * c[i];
      norm = Math.sqrt(norm) || 1;
      let dot = 0;
      for (let i = 0; i < c.length; i++) dot += (c[i] / norm) * query[i];
      out.push({ name, similarity: dot });
    }
    return out.sort((a, b) => b.similarity - a.similarity);
  }

  private checkVector(embedding: Float32Array): void {
    if (!(embedding instanceof Float32Array) || embedding.length !== this.dimension) {
      throw new GalleryError(`embedding must be a Float32Array of ${this.dimension} values`);
    }
    if (!embedding.every(Number.isFinite)) throw new GalleryError('embedding contains non-finite values');
  }

  private person(name: string): Person {
    const p = this.people.get(name);
    if (!p) throw new GalleryError(`no identity named '${name}'`);
    return p;
  }
}

function info(name: string, p: Person): IdentityInfo {
  return {
    name,
    meta: { ...p.meta },
    createdAt: p.createdAt,
    embeddings: p.ids.size,
    singlePhoto: p.ids.size === 1,
    hasThumbnail: p.thumbnail !== undefined,
    rejections: p.notIds.size,
  };
}

/** Inner product: the index's score, a cosine for the normalised vectors a gallery holds. */
function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Why `jpeg` cannot be an identity's thumbnail, or undefined when it can. The bound is the unknown faces' one:
 * a preview, not a photo archive inside the gallery file. Served as image/jpeg, so the bytes must be a JPEG.
 */
export function thumbnailProblem(jpeg: unknown): string | undefined {
  if (!Buffer.isBuffer(jpeg)) return 'a thumbnail must be a Buffer of JPEG bytes';
  if (jpeg.length < 3 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8 || jpeg[2] !== 0xff)
    return 'a thumbnail must be a JPEG';
  if (jpeg.length > MAX_THUMBNAIL_BYTES) {
    return `thumbnail is ${jpeg.length} bytes, at most ${MAX_THUMBNAIL_BYTES} are kept`;
  }
  return undefined;
}

function checkName(name: unknown): asserts name is string {
  const why = identityNameProblem(name);
  if (why) throw new GalleryError(why);
}

function checkDate(value: unknown, what: string): void {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) {
    throw new GalleryError(`${what} must be an ISO 8601 date string`);
  }
}
