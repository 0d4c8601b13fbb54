import * as path from 'node:path';

import { ExactIndex, checkQuery } from './exactIndex';
import type { VectorHit, VectorIndex } from './vectorIndex';

/**
 * Inner-product search through faiss-node (FAISS bindings), an optional dependency built at
 * install time against the system FAISS by `scripts/build-faiss.js` (see the README, "FAISS
 * (optional)"). `faissAvailable()` says whether it loads.
 *
 * Which FAISS index (`kind`):
 * - below `largeThreshold` vectors (default 50,000): `IndexFlatIP`, exact, scores identical to
 *   the exact backend up to float rounding;
 * - from `largeThreshold` on, `largeKind` (default `ivf`), approximate; back to flat below half
 *   the threshold, so that a gallery hovering around it does not rebuild on every change:
 *   - `ivf`: `IVF{nlist},Flat` (`Index.fromFactory`, `METRIC_INNER_PRODUCT`), k-means trained on
 *     the vectors held when it is built. `nlist` defaults to the power of two nearest √n (256
 *     from 32,768 to 131,071 vectors, 512 to 524,287, then 1,024), trained on at most 64
 *     vectors per list (and at most 2^25 floats in all: the sample crosses into FAISS as one
 *     plain JS array); the index is retrained when the gallery has grown enough for twice as
 *     many lists (about 4×). `nprobe` (default 16) is
 *     set by rewriting it in the serialised, trained, empty index (`tuneIvf`): faiss-node has no
 *     setter and FAISS's default is 1.
 *   - `hnsw`: `HNSW32,Flat`, with `efConstruction` 80 and `efSearch` 64 written into the
 *     serialised empty index (`tuneHnsw`; FAISS 1.7.3's 40 / 16 found the true best match for
 *     only about 80 % of random queries).
 *   Where a buffer does not have the expected layout, `tuned` is false: HNSW then keeps FAISS's
 *   defaults, and IVF is not used (flat instead), as one probed list would miss most matches.
 *
 * Why IVF by default (bench/RESULTS.md, "Gallery search backends": 2 cores, random unit vectors;
 * "seen again" queries are a gallery vector plus a quarter of its length of noise, as when a
 * known face comes back): at 1M × 512, IVF1024 with nprobe 16 builds in 114 s in one batch (about
 * 20 s of training, then about 9,000 vectors/s, mostly faiss-node copying number by number; 175 s
 * when grown in batches of 10,000, retraining on the way) and answers in 7.0 ms p50 / 7.3–8.5 ms
 * p95 at recall@1 1.000 for seen-again queries; flat takes 400 ms a query. nprobe 8 gave 0.985
 * there in a side run, nprobe 32 13.4 / 14.1 ms. HNSW built 100k × 512 at 96 vectors/s (17 minutes) for seen-
 * again recall 0.970 and 100k × 128 at 580/s, and its single-query search runs an OpenMP team
 * that stalls when another process holds a core (p95 17 ms at 100k × 128 under load). For random
 * queries (strangers) recall@1 is low for both (0.06–0.5): a missed best match only lowers a
 * stranger's score. Noisier returns of a face need more lists: at 100k × 512 with noise of its
 * whole length, nprobe 16 / 32 / 64 found the exact best 0.75 / 0.84 / 0.94 of the time.
 *
 * Ids: faiss-node has no `add_with_ids`; a vector's FAISS label is its position (faiss-node
 * numbers from `ntotal`). `IndexFlat.remove_ids` shifts every later position down, and this
 * class keeps the position → id table and updates it the same way. IVF and HNSW are never asked
 * to delete (after an IVF `remove_ids`, new labels would collide with surviving ones): a deleted
 * vector's position is marked dead and filtered from results, and once the dead exceed the larger
 * of 256 and 5 % of the index, the FAISS index is rebuilt from the live vectors (IVF keeps its
 * trained lists then, and is not retrained).
 *
 * Memory: the vectors are also kept in an `ExactIndex` (it validates input and is the source
 * for rebuilds, for IVF training, and for the switches between kinds), so this backend holds
 * each vector twice, plus the HNSW graph (about 2 × 32 × 4 bytes per vector) or IVF's ids (8
 * bytes per vector). A flat index is rebuilt by handing FAISS a serialised index built here
 * (a copy, instead of faiss-node's per-number conversion, about 130 ns per float). faiss-node
 * frees a native index only when its JS object is collected, so right after a rebuild (a switch,
 * an IVF retraining) the old index may still hold its memory for a while.
 */
export type FaissKind = 'flat' | 'ivf' | 'hnsw';

export interface FaissIndexOptions {
  /** From this many vectors on, use `largeKind` instead of the exact `IndexFlatIP` (default 50,000). */
  largeThreshold?: number;
  /** @deprecated the former name of `largeThreshold`. */
  hnswThreshold?: number;
  /** The index above the threshold (default `ivf`). */
  largeKind?: 'ivf' | 'hnsw';
  /** Force one FAISS index kind instead of choosing by size. */
  kind?: FaissKind;
  /** IVF lists (default: the power of two nearest √n, retrained as the gallery grows). */
  nlist?: number;
  /** IVF lists searched per query (default 16). */
  nprobe?: number;
  /** IVF k-means training vectors per list (default 64; at least 39, below which FAISS warns). */
  trainPerList?: number;
  /** Neighbours per HNSW node (default 32). */
  hnswM?: number;
  /** HNSW candidate list length while searching (default 64) and while adding (default 80). */
  efSearch?: number;
  efConstruction?: number;
  /** Vectors per native `add()` call (default 16,384): each call copies a plain JS array. */
  batchSize?: number;
}

export const FAISS_DEFAULTS = {
  largeThreshold: 50_000,
  largeKind: 'ivf',
  nprobe: 16,
  trainPerList: 64,
  hnswM: 32,
  efSearch: 64,
  efConstruction: 80,
  batchSize: 16_384,
} as const;

/** FAISS's k-means warns below 39 training vectors per centroid; fewer lists are used instead. */
const MIN_TRAIN_PER_LIST = 39;
/** The training sample crosses into FAISS as one JS array: 2^25 numbers is 256 MiB of doubles. */
const MAX_TRAIN_FLOATS = 2 ** 25;

/** The default IVF list count for `n` vectors: the power of two nearest √n. */
export function defaultLists(n: number): number {
  if (n < 1) return 1;
  return 2 ** Math.round(Math.log2(Math.sqrt(n)));
}

/** The part of faiss-node's API this file uses (its own .d.ts is only there when it is built). */
interface NativeIndex {
  ntotal(): number;
  isTrained(): boolean;
  add(x: number[]): void;
  train(x: number[]): void;
  search(x: number[], k: number): { distances: number[]; labels: number[] };
  removeIds(ids: number[]): number;
  toBuffer(): Buffer;
}

interface FaissModule {
  IndexFlatIP: (new (d: number) => NativeIndex) & { fromBuffer(buffer: Buffer): NativeIndex };
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
  private readonly largeThreshold: number;
  private readonly largeKind: 'ivf' | 'hnsw';
  private readonly nprobe: number;
  private readonly trainPerList: number;
  private readonly hnswM: number;
  private readonly efSearch: number;
  private readonly efConstruction: number;
  private readonly batchSize: number;
  /**
   * Whether the approximate index runs with this class's search parameters (`nprobe`, or
   * `efSearch`/`efConstruction`), rewritten in its serialised form (see `tuneIvf`, `tuneHnsw`).
   */
  tuned = false;
  /** Null only for an IVF index that had nothing to train on yet (and after `dispose`). */
  private native: NativeIndex | null = null;
  private nativeKind: FaissKind = 'flat';
  private disposed = false;
  /** IVF: the trained, tuned, empty index, reused when deletes force a rebuild. */
  private ivfTemplate: Buffer | null = null;
  private ivfLists = 0;
  /** Set when IVF's `nprobe` could not be written: IVF is then replaced by flat. */
  private ivfUntunable = false;
  /** FAISS position → id (`DEAD` for deleted IVF/HNSW entries). */
  private positionIds: number[] = [];
  private readonly positionOf = new Map<number, number>();
  private dead = 0;

  constructor(
    readonly dimension: number,
    private readonly options: FaissIndexOptions = {},
  ) {
    this.faiss = requireFaiss();
    this.store = new ExactIndex(dimension);
    this.largeThreshold = options.largeThreshold ?? options.hnswThreshold ?? FAISS_DEFAULTS.largeThreshold;
    this.largeKind = options.largeKind ?? FAISS_DEFAULTS.largeKind;
    this.nprobe = positiveOption('nprobe', options.nprobe, FAISS_DEFAULTS.nprobe);
    this.trainPerList = positiveOption('trainPerList', options.trainPerList, FAISS_DEFAULTS.trainPerList);
    positiveOption('nlist', options.nlist, 1);
    this.hnswM = positiveOption('hnswM', options.hnswM, FAISS_DEFAULTS.hnswM);
    this.efSearch = positiveOption('efSearch', options.efSearch, FAISS_DEFAULTS.efSearch);
    this.efConstruction = positiveOption(
      'efConstruction',
      options.efConstruction,
      FAISS_DEFAULTS.efConstruction,
    );
    this.batchSize = positiveOption('batchSize', options.batchSize, FAISS_DEFAULTS.batchSize);
    if (options.kind !== undefined && !['flat', 'ivf', 'hnsw'].includes(options.kind)) {
      throw new Error(`vector index: unknown FAISS index kind '${String(options.kind)}' (flat, ivf or hnsw)`);
    }
    if (!['ivf', 'hnsw'].includes(this.largeKind)) {
      throw new Error(
        `vector index: unknown large FAISS index kind '${String(this.largeKind)}' (ivf or hnsw)`,
      );
    }
    this.rebuild(true);
  }

  get size(): number {
    return this.store.size;
  }

  /** The FAISS index in use: `flat` (IndexFlatIP), `ivf` (IVF{nlist},Flat) or `hnsw` (HNSW32,Flat). */
  get kind(): FaissKind {
    return this.nativeKind;
  }

  /** IVF: the number of lists of the index in use (0 when it is not IVF, or not trained yet). */
  get nlist(): number {
    return this.nativeKind === 'ivf' ? this.ivfLists : 0;
  }

  add(ids: number[], vectors: Float32Array[]): void {
    this.checkOpen();
    this.store.add(ids, vectors); // validates the whole batch first
    if (ids.length === 0) return;
    if (this.wantedKind() !== this.nativeKind || this.ivfWantsTraining()) {
      this.rebuild(true);
      return;
    }
    // Handing FAISS a serialised copy of everything beats converting a big batch number by number.
    if (this.nativeKind === 'flat' && ids.length * 4 >= this.size && this.flatByBuffer()) {
      this.rebuild(false);
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
    this.checkOpen();
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
      if (this.wantedKind() !== this.nativeKind) this.rebuild(true);
      else if (this.dead > maxDead) this.rebuild(false);
    }
    return known.length;
  }

  search(query: Float32Array, k: number): VectorHit[] {
    this.checkOpen();
    checkQuery(this.dimension, query, k);
    const want = Math.min(k, this.size);
    if (want === 0) return [];
    const native = this.nativeIndex();
    const total = this.positionIds.length;
    const x = Array.from(query);
    // Dead entries take places in FAISS's answer; ask for a few more, and more again in the rare
    // case (a query close to deleted vectors) where they crowd out the live ones.
    let ask = this.dead === 0 ? want : Math.min(total, want + Math.min(this.dead, Math.max(want, 16)));
    for (;;) {
      const { distances, labels } = native.search(x, ask);
      const hits: VectorHit[] = [];
      let exhausted = false;
      for (let i = 0; i < labels.length && hits.length < want; i++) {
        const label = labels[i];
        if (label < 0) {
          // IVF pads with -1 when the probed lists hold fewer than `ask`: asking more finds nothing.
          exhausted = true;
          continue;
        }
        const id = this.positionIds[label];
        if (id === DEAD || id === undefined) continue;
        hits.push({ id, score: distances[i] });
      }
      if (hits.length >= want || exhausted || ask >= total) return hits;
      ask = Math.min(total, ask * 4);
    }
  }

  ids(): number[] {
    return this.store.ids();
  }

  dispose(): void {
    // faiss-node frees the native index when the JS object is collected.
    this.disposed = true;
    this.native = null;
    this.ivfTemplate = null;
    this.positionIds = [];
    this.positionOf.clear();
    this.store.dispose();
  }

  private wantedKind(): FaissKind {
    const wanted = this.options.kind ?? this.kindBySize();
    return wanted === 'ivf' && this.ivfUntunable ? 'flat' : wanted;
  }

  private kindBySize(): FaissKind {
    if (this.nativeKind !== 'flat') return this.size >= this.largeThreshold / 2 ? this.largeKind : 'flat';
    return this.size >= this.largeThreshold ? this.largeKind : 'flat';
  }

  /** The IVF list count for `n` vectors, capped so that each list has enough training vectors. */
  private listsFor(n: number): number {
    const wanted = this.options.nlist ?? defaultLists(n);
    const trainable = Math.floor(Math.min(n, this.maxTrainVectors()) / MIN_TRAIN_PER_LIST);
    return Math.max(1, Math.min(wanted, trainable));
  }

  private maxTrainVectors(): number {
    return Math.max(1, Math.floor(MAX_TRAIN_FLOATS / this.dimension));
  }

  /**
   * Whether the IVF index should be retrained before this add: it has none yet, or the gallery
   * has grown into twice the lists (or into the fixed `nlist` that its size capped before).
   */
  private ivfWantsTraining(): boolean {
    if (this.nativeKind !== 'ivf') return false;
    if (this.native === null) return true;
    const lists = this.listsFor(this.size);
    if (lists <= this.ivfLists) return false;
    return this.options.nlist !== undefined || lists >= 2 * this.ivfLists;
  }

  private place(id: number): void {
    this.positionOf.set(id, this.positionIds.length);
    this.positionIds.push(id);
  }

  /**
   * A fresh FAISS index of the wanted kind holding every live vector. `retrain`: IVF trains new
   * lists (otherwise it reuses its trained template, when it has one).
   */
  private rebuild(retrain: boolean): void {
    const { ids, data } = this.store.rows();
    const n = ids.length;
    let kind = this.wantedKind();
    let native: NativeIndex | null = null;
    if (kind === 'ivf') {
      native = this.newIvf(data, n, retrain);
      if (this.ivfUntunable) kind = 'flat';
    }
    if (kind === 'flat') native = this.newFlat(data, n);
    else if (kind === 'hnsw') native = this.newHnsw();
    this.native = native;
    this.nativeKind = kind;
    this.positionIds = [];
    this.positionOf.clear();
    this.dead = 0;
    if (this.native !== null && this.native.ntotal() === 0) {
      for (let start = 0; start < n; start += this.batchSize) {
        const end = Math.min(n, start + this.batchSize);
        this.native.add(plainArray(data, start * this.dimension, end * this.dimension));
      }
    }
    for (let i = 0; i < n; i++) this.place(ids[i]);
  }

  private newFlat(data: Float32Array, n: number): NativeIndex {
    if (n > 0 && this.flatByBuffer()) {
      return this.faiss.IndexFlatIP.fromBuffer(flatIndexBuffer(this.dimension, data, n));
    }
    return new this.faiss.IndexFlatIP(this.dimension);
  }

  /** Whether a serialised `IndexFlatIP` built by `flatIndexBuffer` reads back as FAISS writes it. */
  private flatByBuffer(): boolean {
    if (flatLayoutChecked === undefined) {
      try {
        const probe = new this.faiss.IndexFlatIP(2);
        probe.add([1, 2, 3, 4]);
        flatLayoutChecked = probe.toBuffer().equals(flatIndexBuffer(2, Float32Array.of(1, 2, 3, 4), 2));
      } catch {
        flatLayoutChecked = false;
      }
    }
    return flatLayoutChecked;
  }

  /** An empty IVF index with trained lists and this class's `nprobe`, or null with nothing to train on. */
  private newIvf(data: Float32Array, n: number, retrain: boolean): NativeIndex | null {
    const { Index, MetricType } = this.faiss;
    if (!retrain && this.ivfTemplate !== null) return Index.fromBuffer(this.ivfTemplate);
    this.ivfTemplate = null;
    this.ivfLists = 0;
    if (n === 0) return null;
    const lists = this.listsFor(n);
    const index = Index.fromFactory(this.dimension, `IVF${lists},Flat`, MetricType.METRIC_INNER_PRODUCT);
    // FAISS warns below 39 training vectors per list; listsFor() keeps to that except for a single
    // list under 39 vectors, trained here on repeated rows (any centroid serves one list).
    const perList = Math.max(this.trainPerList, MIN_TRAIN_PER_LIST);
    const count = Math.max(lists * MIN_TRAIN_PER_LIST, Math.min(n, lists * perList, this.maxTrainVectors()));
    index.train(strideSample(data, this.dimension, n, count));
    const buffer = index.toBuffer();
    this.tuned = tuneIvf(buffer, lists, Math.min(this.nprobe, lists));
    if (!this.tuned) {
      this.ivfUntunable = true;
      return null;
    }
    this.ivfTemplate = buffer;
    this.ivfLists = lists;
    return Index.fromBuffer(buffer);
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
    this.checkOpen();
    if (this.native === null) throw new Error('vector index: the FAISS index has not been built');
    return this.native;
  }

  private checkOpen(): void {
    if (this.disposed) throw new Error('vector index: used after dispose()');
  }
}

let flatLayoutChecked: boolean | undefined;

function positiveOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`vector index: FAISS option ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** `data[start, end)` as the plain JS array faiss-node takes (a loop beats `Array.from` here). */
function plainArray(data: Float32Array, start: number, end: number): number[] {
  const out = new Array<number>(end - start);
  for (let i = start, o = 0; i < end; i++) out[o++] = data[i];
  return out;
}

/** `count` rows spread evenly over the `n` rows of `data` (repeating rows when `count` > `n`), as one plain array. */
function strideSample(data: Float32Array, d: number, n: number, count: number): number[] {
  const out = new Array<number>(count * d);
  const step = n / count;
  for (let i = 0, o = 0; i < count; i++) {
    const base = Math.floor(i * step) * d;
    for (let j = 0; j < d; j++) out[o++] = data[base + j];
  }
  return out;
}

/** Bytes of FAISS 1.7.3's index header (faiss/impl/index_write.cpp, `write_index_header`). */
const HEADER_BYTES = 4 + 8 + 8 + 8 + 1 + 4;

/**
 * A serialised `IndexFlatIP` holding the first `n` rows of `data`: fourcc `IxFI`, the header
 * (d i32, ntotal i64, two dummies i64 of 2^20, is_trained u8, metric i32), then the vectors as
 * a u64 float count and the floats. `FaissIndex` compares it once with FAISS's own output.
 */
export function flatIndexBuffer(d: number, data: Float32Array, n: number): Buffer {
  const floats = n * d;
  const offset = 4 + HEADER_BYTES + 8;
  const buffer = Buffer.allocUnsafe(offset + floats * 4);
  buffer.write('IxFI', 0, 'latin1');
  buffer.writeInt32LE(d, 4);
  buffer.writeBigInt64LE(BigInt(n), 8);
  buffer.writeBigInt64LE(1n << 20n, 16);
  buffer.writeBigInt64LE(1n << 20n, 24);
  buffer.writeUInt8(1, 32);
  buffer.writeInt32LE(0, 33);
  buffer.writeBigUInt64LE(BigInt(floats), 37);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, floats * 4);
  if (new Uint8Array(Float32Array.of(1).buffer)[3] === 0x3f) buffer.set(bytes, offset);
  else for (let i = 0; i < floats; i++) buffer.writeFloatLE(data[i], offset + 4 * i);
  return buffer;
}

/**
 * Rewrites `nprobe` in a serialised, trained FAISS `IndexIVFFlat` (faiss/impl/index_write.cpp,
 * `write_ivf_header`): fourcc `IwFl`, the index header (metric i32 followed by an f32 argument
 * when above 1), then nlist and nprobe (u64), then the quantizer (here an `IndexFlatIP`, fourcc
 * `IxFI`). Returns false, changing nothing, when the buffer does not look like that: another
 * fourcc, an nlist other than `nlist`, an nprobe outside 1..nlist, no quantizer after it.
 */
export function tuneIvf(buffer: Buffer, nlist: number, nprobe: number): boolean {
  try {
    if (buffer.toString('latin1', 0, 4) !== 'IwFl') return false;
    const metric = buffer.readInt32LE(4 + HEADER_BYTES - 4);
    const offset = 4 + HEADER_BYTES + (metric > 1 ? 4 : 0);
    const storedLists = buffer.readBigUInt64LE(offset);
    const storedProbe = buffer.readBigUInt64LE(offset + 8);
    if (storedLists !== BigInt(nlist) || storedProbe < 1n || storedProbe > storedLists) return false;
    if (buffer.toString('latin1', offset + 16, offset + 20) !== 'IxFI') return false;
    buffer.writeBigUInt64LE(BigInt(nprobe), offset + 8);
    return true;
  } catch {
    return false;
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
    let offset = 4 + HEADER_BYTES - 4;
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
