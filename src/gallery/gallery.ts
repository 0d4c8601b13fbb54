import { UNKNOWN, type Candidate, type Identity } from '../types';
import { identityFromRanking, type MatchOptions } from './memoryGallery';
import type { GalleryEmbeddingRecord, GallerySnapshot } from './store';
import type { VectorIndex } from './vectorIndex';

export interface GalleryMatchOptions extends MatchOptions {
  /** `best`: an identity scores its best embedding; `centroid`: the mean of its embeddings. */
  mode?: 'best' | 'centroid';
}

export interface IdentityInfo {
  name: string;
  meta: Record<string, unknown>;
  createdAt: string;
  embeddings: number;
}

export type EmbeddingRecord = GalleryEmbeddingRecord;

/** A failed gallery operation whose message is meant for a person (bad name, unknown id, …). */
export class GalleryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GalleryError';
  }
}

/** Everything a gallery holds, as the store writes it. */
export type GalleryState = GallerySnapshot;

interface Person {
  meta: Record<string, unknown>;
  createdAt: string;
  ids: Set<number>;
}

/**
 * Identities with many embeddings each, searched through a vector index. The gallery owns the
 * ids (the index only maps them to vectors), remembers which model made its embeddings and refuses
 * any other, and can be written out and read back as a `GalleryState`.
 */
export class Gallery {
  private readonly people = new Map<string, Person>();
  private readonly records = new Map<number, EmbeddingRecord>();
  private readonly vectors = new Map<number, Float32Array>();
  private nextId = 1;
  threshold?: number;

  constructor(
    readonly modelId: string,
    readonly dimension: number,
    private readonly index: VectorIndex,
  ) {
    if (!modelId) throw new GalleryError('a gallery needs the id of the model that makes its embeddings');
    if (index.dimension !== dimension) {
      throw new GalleryError(`index has ${index.dimension} dimensions, gallery ${dimension}`);
    }
  }

  static fromState(state: GalleryState, index: VectorIndex): Gallery {
    const g = new Gallery(state.modelId, state.dimension, index);
    g.threshold = state.threshold;
    for (const p of state.identities)
      g.people.set(p.name, { meta: { ...p.meta }, createdAt: p.createdAt, ids: new Set() });
    const d = state.dimension;
    if (state.vectors.length !== state.embeddings.length * d) {
      throw new GalleryError(
        `stored vectors hold ${state.vectors.length / d} rows for ${state.embeddings.length} embeddings`,
      );
    }
    const ids: number[] = [];
    const rows: Float32Array[] = [];
    state.embeddings.forEach((rec, i) => {
      const person = g.people.get(rec.name);
      if (!person) throw new GalleryError(`embedding ${rec.id} belongs to unknown identity '${rec.name}'`);
      const v = state.vectors.slice(i * d, (i + 1) * d);
      person.ids.add(rec.id);
      g.records.set(rec.id, { ...rec });
      g.vectors.set(rec.id, v);
      ids.push(rec.id);
      rows.push(v);
    });
    index.add(ids, rows);
    g.nextId = Math.max(state.nextId, ...ids.map((id) => id + 1), 1);
    return g;
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
      })),
      embeddings: embeddings.map((r) => ({ ...r })),
      vectors,
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

  /** Create an identity without embeddings yet (or update nothing when it exists). */
  addIdentity(name: string, meta: Record<string, unknown> = {}): void {
    checkName(name);
    if (!this.people.has(name))
      this.people.set(name, { meta: { ...meta }, createdAt: new Date().toISOString(), ids: new Set() });
  }

  /** Add one embedding to an identity (created when new); returns the embedding's id. */
  addEmbedding(
    name: string,
    embedding: Float32Array,
    options: { sha256?: string; meta?: Record<string, unknown> } = {},
  ): number {
    checkName(name);
    if (!(embedding instanceof Float32Array) || embedding.length !== this.dimension) {
      throw new GalleryError(`embedding must be a Float32Array of ${this.dimension} values`);
    }
    if (!embedding.every(Number.isFinite)) throw new GalleryError('embedding contains non-finite values');
    if (options.sha256) {
      const dup = [...this.records.values()].find((r) => r.sha256 === options.sha256);
      if (dup)
        throw new GalleryError(`this photo is already enrolled (as '${dup.name}', embedding ${dup.id})`);
    }
    this.addIdentity(name, options.meta);
    if (options.meta) Object.assign((this.people.get(name) as Person).meta, options.meta);
    const id = this.nextId++;
    const v = Float32Array.from(embedding);
    this.index.add([id], [v]);
    this.vectors.set(id, v);
    this.records.set(id, { id, name, sha256: options.sha256, addedAt: new Date().toISOString() });
    (this.people.get(name) as Person).ids.add(id);
    return id;
  }

  /** Identities sorted by name, a page at a time. */
  list(options: { offset?: number; limit?: number } = {}): { total: number; items: IdentityInfo[] } {
    const offset = Math.max(0, Math.floor(options.offset ?? 0));
    const limit = Math.max(0, Math.floor(options.limit ?? 100));
    const names = [...this.people.keys()].sort((a, b) => a.localeCompare(b));
    const items = names.slice(offset, offset + limit).map((name) => {
      const p = this.people.get(name) as Person;
      return { name, meta: { ...p.meta }, createdAt: p.createdAt, embeddings: p.ids.size };
    });
    return { total: names.length, items };
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
    this.records.delete(id);
    this.vectors.delete(id);
    this.people.get(rec.name)?.ids.delete(id);
  }

  removeIdentity(name: string): number {
    const p = this.person(name);
    this.index.remove([...p.ids]);
    for (const id of p.ids) {
      this.records.delete(id);
      this.vectors.delete(id);
    }
    this.people.delete(name);
    return p.ids.size;
  }

  clear(): void {
    this.index.remove([...this.records.keys()]);
    this.records.clear();
    this.vectors.clear();
    this.people.clear();
  }

  /** Identities ranked by similarity to `query`, best first. */
  rank(query: Float32Array, topK: number, mode: 'best' | 'centroid' = 'best'): Candidate[] {
    if (!(query instanceof Float32Array) || query.length !== this.dimension) {
      throw new GalleryError(`query must be a Float32Array of ${this.dimension} values`);
    }
    return mode === 'centroid' ? this.rankByCentroid(query) : this.rankByBest(query, topK);
  }

  match(query: Float32Array, options: GalleryMatchOptions): Identity {
    const topK = Math.max(1, options.topK ?? 3);
    // One more than asked, so the margin to the runner-up is right even when topK is 1.
    return identityFromRanking(this.rank(query, topK + 1, options.mode).slice(0, topK + 1), options);
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

  private person(name: string): Person {
    const p = this.people.get(name);
    if (!p) throw new GalleryError(`no identity named '${name}'`);
    return p;
  }
}

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.trim() === '')
    throw new GalleryError('identity name must be a non-empty string');
  if (name.length > 200) throw new GalleryError('identity name is longer than 200 characters');
  if (name === UNKNOWN) throw new GalleryError(`'${UNKNOWN}' is reserved for faces that match nobody`);
}
