import * as path from 'node:path';

import { ExactIndex, checkQuery } from './exactIndex';
import type { VectorHit, VectorIndex } from './vectorIndex';

/**
 * Inner-product search through faiss-node (FAISS bindings), an optional dependency built at
 * install time against the system FAISS by `scripts/build-faiss.js` (see the README, "FAISS
 * (optional)"). `faissAvailable()` says whether it loads.
 *
 * Which FAISS index:
 * - below `hnswThreshold` vectors (default 50,000): `IndexFlatIP`, exact, scores identical to
 *   the exact backend up to float rounding;
 * - from `hnswThreshold` on: `HNSW32,Flat` (`Index.fromFactory` with `METRIC_INNER_PRODUCT`),
 *   approximate. HNSW rather than IVF because it needs no training pass (IVF must be trained on
 *   a representative sample before the first add, and re-trained as the gallery changes), and
 *   because faiss-node assigns IVF labels from `ntotal`, which collide with surviving labels
 *   after a delete. faiss-node cannot set HNSW's `efConstruction` (40) and `efSearch` (16), and
 *   with those FAISS 1.7.3 finds the true best match for only about 80 % of queries on random
 *   128-d vectors (asking for more results does not raise `efSearch`). So a new HNSW index is
 *   serialised empty, its two fields are rewritten in the buffer and it is read back (see
 *   `tuneHnsw`); defaults `efConstruction` 80 and `efSearch` 64 (recall@1 ≈ 0.99 there). Where
 *   the buffer does not have the expected layout, the FAISS defaults stay and `tuned` is false.
 *
 * Ids: faiss-node has no `add_with_ids`; a vector's FAISS label is its position, and
 * `IndexFlat.remove_ids` shifts every later position down. This class keeps the position → id
 * table and updates it the same way. HNSW cannot delete at all: a deleted vector's position is
 * marked dead and filtered from results, and once the dead exceed `maxDead` (default the larger
 * of 256 and 5 % of the index) the FAISS index is rebuilt from the live vectors.
 *
 * Memory: the vectors are also kept in an `ExactIndex` (it validates input and is the source
 * for those rebuilds, and for the switch from flat to HNSW when the gallery grows), so this
 * backend holds each vector twice, plus the HNSW graph (about 2 × 32 × 4 bytes per vector).
 */
export interface FaissIndexOptions {
  /** From this many vectors on, use HNSW instead of the exact `IndexFlatIP` (default 50,000). */
  hnswThreshold?: number;
  /** Force one FAISS index kind instead of choosing by size. */
  kind?: 'flat' | 'hnsw';
  /** Neighbours per HNSW node (default 32). */
  hnswM?: number;
  /** HNSW candidate list length while searching (default 64) and while adding (default 80). */
  efSearch?: number;
  efConstruction?: number;
  /** Vectors per native `add()` call (default 16,384): each call copies a plain JS array. */
  batchSize?: number;
}

/** The part of faiss-node's API this file uses (its own .d.ts is only there when it is built). */
interface NativeIndex {
  ntotal(): number;
  add(x: number[]): void;
  search(x: number[], k: number): { distances: number[]; labels: number[] };
  removeIds(ids: number[]): number;
  toBuffer(): Buffer;
}

interface FaissModule {
  IndexFlatIP: new (d: number) => NativeIndex;
  Index: {
    fromFactory(d: number, descriptor: string, metric?: number): NativeIndex;
    fromBuffer(buffer: Buffer): NativeIndex;
  };
  MetricType: { METRIC_INNER_PRODUCT: number };
}

let faissModule: FaissModule | null | undefined;
let faissLoadError = '';

/**
 * Where faiss-node is looked for, in order: `$FACEFLOW_FAISS_NODE`, the build that
 * `scripts/build-faiss.js` leaves in the package's `.cache/faiss-node/addon`, then an ordinary
 * `faiss-node` install (for users who build it their own way).
 */
function faissCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const packageRoot = path.resolve(__dirname, '..', '..', '..');
  const candidates = [path.join(packageRoot, '.cache', 'faiss-node', 'addon'), 'faiss-node'];
  if (env.FACEFLOW_FAISS_NODE) candidates.unshift(path.resolve(env.FACEFLOW_FAISS_NODE));
  return candidates;
}

function loadFaiss(): FaissModule | null {
  if (faissModule === undefined) {
    const errors: string[] = [];
    for (const candidate of faissCandidates()) {
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        faissModule = require(candidate) as FaissModule;
        return faissModule;
      } catch (error) {
        errors.push(`${candidate}: ${(error as Error).message.split('\n')[0]}`);
      }
    }
    faissModule = null;
    faissLoadError = errors.join('; ');
  }
  return faissModule;
}

/** Whether faiss-node is installed and loads. */
export function faissAvailable(): boolean {
  return loadFaiss() !== null;
}

function requireFaiss(): FaissModule {
  const faiss = loadFaiss();
  if (faiss === null) {
    throw new Error(
      `the faiss vector index backend is not available (faiss-node does not load: ${faissLoadError}). ` +
        'It is optional: install libfaiss-dev, cmake and libopenblas-dev (Debian) and run ' +
        "`npm run postinstall:faiss`, or use the 'exact' backend.",
    );
  }
  return faiss;
}

const DEAD = -1;

export class FaissIndex implements VectorIndex {
  readonly backend = 'faiss';
  private readonly faiss: FaissModule;
  private readonly store: ExactIndex;
  private readonly hnswThreshold: number;
  private readonly hnswM: number;
  private readonly efSearch: number;
  private readonly efConstruction: number;
  /** Whether the HNSW index runs with this class's efSearch/efConstruction (see `tuneHnsw`). */
  tuned = false;
  private readonly batchSize: number;
  private native: NativeIndex | null = null;
  private nativeKind: 'flat' | 'hnsw' = 'flat';
  /** FAISS position → id (`DEAD` for deleted HNSW entries). */
  private positionIds: number[] = [];
  private readonly positionOf = new Map<number, number>();
  private dead = 0;

  constructor(
    readonly dimension: number,
    private readonly options: FaissIndexOptions = {},
  ) {
    this.faiss = requireFaiss();
    this.store = new ExactIndex(dimension);
    this.hnswThreshold = options.hnswThreshold ?? 50_000;
    this.hnswM = options.hnswM ?? 32;
    this.efSearch = options.efSearch ?? 64;
    this.efConstruction = options.efConstruction ?? 80;
    this.batchSize = options.batchSize ?? 16_384;
    this.rebuild();
  }

  get size(): number {
    return this.store.size;
  }

  /** The FAISS index in use: `flat` (IndexFlatIP) or `hnsw` (HNSW32,Flat). */
  get kind(): 'flat' | 'hnsw' {
    return this.nativeKind;
  }

  add(ids: number[], vectors: Float32Array[]): void {
    this.store.add(ids, vectors); // validates the whole batch first
    if (this.wantedKind() !== this.nativeKind) {
      this.rebuild();
      return;
    }
    const d = this.dimension;
    for (let start = 0; start < ids.length; start += this.batchSize) {
      const end = Math.min(ids.length, start + this.batchSize);
      const flat = new Array<number>((end - start) * d);
      for (let i = start, o = 0; i < end; i++) {
        const v = vectors[i];
        for (let j = 0; j < d; j++) flat[o++] = v[j];
      }
      this.nativeIndex().add(flat);
      for (let i = start; i < end; i++) this.place(ids[i]);
    }
  }

  remove(ids: number[]): number {
    const known = [...new Set(ids)].filter((id) => this.positionOf.has(id));
    if (known.length === 0) return 0;
    this.store.remove(known);
    if (this.nativeKind === 'flat') {
      const positions = known.map((id) => this.positionOf.get(id) as number);
      this.nativeIndex().removeIds(positions);
      // IndexFlat compacts in place, keeping order: do the same to the table.
      for (const id of known) {
        this.positionIds[this.positionOf.get(id) as number] = DEAD;
        this.positionOf.delete(id);
      }
      let first = Infinity;
      for (const position of positions) first = Math.min(first, position);
      let write = first;
      for (let read = first; read < this.positionIds.length; read++) {
        const id = this.positionIds[read];
        if (id === DEAD) continue;
        this.positionIds[write] = id;
        this.positionOf.set(id, write++);
      }
      this.positionIds.length = write;
    } else {
      for (const id of known) {
        this.positionIds[this.positionOf.get(id) as number] = DEAD;
        this.positionOf.delete(id);
      }
      this.dead += known.length;
      const maxDead = Math.max(256, Math.floor(0.05 * this.positionIds.length));
      if (this.dead > maxDead || this.wantedKind() !== 'hnsw') this.rebuild();
    }
    return known.length;
  }

  search(query: Float32Array, k: number): VectorHit[] {
    checkQuery(this.dimension, query, k);
    const want = Math.min(k, this.size);
    if (want === 0) return [];
    const native = this.nativeIndex();
    const total = this.positionIds.length;
    const ask = this.nativeKind === 'flat' ? want : Math.min(total, want + this.dead);
    const { distances, labels } = native.search(Array.from(query), ask);
    const hits: VectorHit[] = [];
    for (let i = 0; i < labels.length && hits.length < want; i++) {
      const label = labels[i];
      if (label < 0) continue;
      const id = this.positionIds[label];
      if (id === DEAD || id === undefined) continue;
      hits.push({ id, score: distances[i] });
    }
    return hits;
  }

  ids(): number[] {
    return this.store.ids();
  }

  dispose(): void {
    // faiss-node frees the native index when the JS object is collected.
    this.native = null;
    this.positionIds = [];
    this.positionOf.clear();
    this.store.dispose();
  }

  private wantedKind(): 'flat' | 'hnsw' {
    if (this.options.kind) return this.options.kind;
    if (this.nativeKind === 'hnsw') return this.size >= this.hnswThreshold / 2 ? 'hnsw' : 'flat';
    return this.size >= this.hnswThreshold ? 'hnsw' : 'flat';
  }

  private place(id: number): void {
    this.positionOf.set(id, this.positionIds.length);
    this.positionIds.push(id);
  }

  /** A fresh FAISS index of the wanted kind holding every live vector. */
  private rebuild(): void {
    const kind = this.wantedKind();
    this.native = kind === 'flat' ? new this.faiss.IndexFlatIP(this.dimension) : this.newHnsw();
    this.nativeKind = kind;
    this.positionIds = [];
    this.positionOf.clear();
    this.dead = 0;
    const { ids, data } = this.store.rows();
    const d = this.dimension;
    for (let start = 0; start < ids.length; start += this.batchSize) {
      const end = Math.min(ids.length, start + this.batchSize);
      this.native.add(Array.from(data.subarray(start * d, end * d)));
      for (let i = start; i < end; i++) this.place(ids[i]);
    }
  }

  private newHnsw(): NativeIndex {
    const { Index, MetricType } = this.faiss;
    const index = Index.fromFactory(
      this.dimension,
      `HNSW${this.hnswM},Flat`,
      MetricType.METRIC_INNER_PRODUCT,
    );
    const buffer = index.toBuffer();
    this.tuned = tuneHnsw(buffer, this.efConstruction, this.efSearch);
    return this.tuned ? Index.fromBuffer(buffer) : index;
  }

  private nativeIndex(): NativeIndex {
    if (this.native === null) throw new Error('vector index: used after dispose()');
    return this.native;
  }
}

/**
 * Rewrites `efConstruction` and `efSearch` in a serialised, empty FAISS `IndexHNSWFlat`
 * (faiss/impl/index_write.cpp): fourcc `IHNf`; header d (i32), ntotal, two dummies (i64),
 * is_trained (u8), metric (i32, then a f32 argument when above 1); then the HNSW:
 * assign_probas (f64[]), cum_nneighbor_per_level (i32[]), levels (i32[]), offsets (u64[]),
 * neighbors (i32[]), each as a u64 count then the items; entry_point, max_level,
 * efConstruction, efSearch, upper_beam (i32). Returns false, changing nothing, when the buffer
 * does not look like that.
 */
export function tuneHnsw(buffer: Buffer, efConstruction: number, efSearch: number): boolean {
  try {
    if (buffer.toString('latin1', 0, 4) !== 'IHNf') return false;
    let offset = 4 + 4 + 8 + 8 + 8 + 1;
    const metric = buffer.readInt32LE(offset);
    offset += metric > 1 ? 8 : 4;
    for (const itemBytes of [8, 4, 4, 8, 4]) {
      offset += 8 + Number(buffer.readBigUInt64LE(offset)) * itemBytes;
    }
    offset += 8; // entry_point, max_level
    const oldConstruction = buffer.readInt32LE(offset);
    const oldSearch = buffer.readInt32LE(offset + 4);
    const plausible = (n: number) => n >= 1 && n <= 100_000;
    if (!plausible(oldConstruction) || !plausible(oldSearch) || offset + 12 > buffer.length) return false;
    buffer.writeInt32LE(efConstruction, offset);
    buffer.writeInt32LE(efSearch, offset + 4);
    return true;
  } catch {
    return false;
  }
}
