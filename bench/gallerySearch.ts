/**
 * Gallery search backends: exact (typed arrays, plain JS), and FAISS IndexFlatIP, IVF and HNSW
 * (faiss-node, when it is built; see README "FAISS (optional)").
 *
 *   node --expose-gc dist/bench/gallerySearch.js [--sizes 1000,100000] [--dim 512] [--queries 200]
 *        [--backends exact,flat,ivf,hnsw] [--nlist N] [--nprobe 16] [--noise 0.25] [--batch 10000] [--json]
 *
 * For each gallery size: add throughput (vectors/s, in batches of `--batch`; for IVF this
 * includes its training and its retraining as the gallery grows), p50/p95 ms of one top-5
 * query, recall@1 against the exact backend for random queries (the hard case for approximate
 * indexes: every vector is about as far as every other) and for "seen again" queries (a gallery
 * vector plus noise of `--noise` times its length, as when a known face comes back), RSS growth,
 * and a same-run baseline ratio: the p50 divided by the median of the same plain-JS reference
 * workload as bench/stages.ts (10×1000 dot products of 128-d vectors), so that figures from
 * different machines compare. Data: seeded random unit vectors. Prints numbers; asserts
 * nothing. With `--expose-gc` the native memory of one backend is freed before the next starts
 * (faiss-node frees an index only when its JS object is collected).
 */

import { performance } from 'node:perf_hooks';
import { ExactIndex } from '../src/gallery/exactIndex';
import { FAISS_DEFAULTS, FaissIndex, faissAvailable } from '../src/gallery/faissIndex';
import type { VectorIndex } from '../src/gallery/vectorIndex';
import { seededRandom } from '../src/util/seededRandom';
import {
  machineLine,
  positiveInt,
  positiveInts,
  randomUnitVector as randomUnit,
  rankPercentile as percentile,
  referenceBlock,
  makeReference,
  referenceSink,
  settle,
} from './common';

interface Options {
  sizes: number[];
  dim: number;
  queries: number;
  backends: string[];
  nlist?: number;
  nprobe?: number;
  noise: number;
  batch: number;
  json: boolean;
}

const BACKENDS = ['exact', 'flat', 'ivf', 'hnsw'];

const USAGE =
  'usage: node [--expose-gc] dist/bench/gallerySearch.js [--sizes 1000,100000] [--dim 512] [--queries 200] ' +
  '[--backends exact,flat,ivf,hnsw] [--nlist N] [--nprobe 16] [--noise 0.25] [--batch 10000] [--json]';

function parseArgs(argv: string[]): Options {
  const options: Options = {
    sizes: [1000, 100_000],
    dim: 512,
    queries: 200,
    backends: [...BACKENDS],
    noise: 0.25,
    batch: 10_000,
    json: false,
  };
  const positive = (flag: string, value: string | undefined) => positiveInt(flag, value, USAGE);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--sizes') options.sizes = positiveInts(arg, argv[++i], USAGE);
    else if (arg === '--dim') options.dim = positive(arg, argv[++i]);
    else if (arg === '--queries') options.queries = positive(arg, argv[++i]);
    else if (arg === '--backends') {
      options.backends = (argv[++i] ?? '').split(',');
      const unknown = options.backends.filter((b) => !BACKENDS.includes(b));
      if (unknown.length > 0)
        throw new Error(`unknown backend '${unknown[0]}' (${BACKENDS.join(', ')})\n${USAGE}`);
    } else if (arg === '--nlist') options.nlist = positive(arg, argv[++i]);
    else if (arg === '--nprobe') options.nprobe = positive(arg, argv[++i]);
    else if (arg === '--batch') options.batch = positive(arg, argv[++i]);
    else if (arg === '--noise') {
      options.noise = Number(argv[++i]);
      if (!(options.noise >= 0)) throw new Error(`--noise needs a number ≥ 0\n${USAGE}`);
    } else if (arg === '--json') options.json = true;
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument '${arg}'\n${USAGE}`);
  }
  return options;
}

/** A gallery vector plus noise of `amount` times its length, renormalised. */
function seenAgain(rand: () => number, v: Float32Array, amount: number): Float32Array {
  const noise = randomUnit(rand, v.length);
  const w = v.map((x, j) => x + amount * noise[j]);
  const n = Math.hypot(...w);
  return w.map((x) => x / n);
}

/**
 * The same-run baseline: the median of a reference block, taken as the 16th of 30 sorted runs
 * (nearest rank), as this bench has always reported it.
 */
function referenceMedianMs(): number {
  return percentile(
    referenceBlock(makeReference(), 30).sort((a, b) => a - b),
    50,
  );
}

interface Row {
  size: number;
  dim: number;
  backend: string;
  buildSeconds: number;
  addPerSecond: number;
  p50: number;
  p95: number;
  ratio: number;
  recallRandom: number;
  recallSeen: number;
  rssMiB: number;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const baseline = referenceMedianMs();
  const rows: Row[] = [];
  const log = (line: string) => {
    if (!options.json) console.log(line);
  };
  log(`baseline (10×1000 dot products of 128-d, plain JS): ${baseline.toFixed(3)} ms`);
  if (!faissAvailable())
    log('faiss-node is not built: only the exact backend runs (README "FAISS (optional)")');

  for (const size of options.sizes) {
    const d = options.dim;
    const rand = seededRandom(size);
    const vectors = Array.from({ length: size }, () => randomUnit(rand, d));
    const ids = vectors.map((_, i) => i);
    const randomQueries = Array.from({ length: options.queries }, () => randomUnit(rand, d));
    const seenQueries = randomQueries.map((_, i) =>
      seenAgain(rand, vectors[(i * 7919) % size], options.noise),
    );
    let truthRandom: number[] = [];
    let truthSeen: number[] = [];

    // Recall is measured against the exact backend's answers, so it always runs first.
    const backends: [string, () => VectorIndex][] = [['exact', () => new ExactIndex(d)]];
    if (faissAvailable() && options.backends.includes('flat')) {
      backends.push(['faiss IndexFlatIP', () => new FaissIndex(d, { kind: 'flat' })]);
    }
    if (faissAvailable() && options.backends.includes('ivf')) {
      const ivf = { kind: 'ivf' as const, nlist: options.nlist, nprobe: options.nprobe };
      backends.push([
        `faiss IVF nprobe ${options.nprobe ?? FAISS_DEFAULTS.nprobe}`,
        () => new FaissIndex(d, ivf),
      ]);
    }
    if (faissAvailable() && options.backends.includes('hnsw')) {
      backends.push(['faiss HNSW32 (efC 80, efS 64)', () => new FaissIndex(d, { kind: 'hnsw' })]);
    }
    for (const [label, make] of backends) {
      await settle();
      const rssBefore = process.memoryUsage().rss;
      const index = make();
      let t = performance.now();
      for (let start = 0; start < size; start += options.batch) {
        index.add(ids.slice(start, start + options.batch), vectors.slice(start, start + options.batch));
      }
      const addSeconds = (performance.now() - t) / 1000;
      const name =
        index instanceof FaissIndex && index.kind === 'ivf'
          ? label.replace('IVF', `IVF${index.nlist}`)
          : label;
      const rssMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
      for (let i = 0; i < Math.min(10, options.queries); i++) index.search(randomQueries[i], 5);
      const times: number[] = [];
      const topRandom: number[] = [];
      for (const q of randomQueries) {
        t = performance.now();
        const hits = index.search(q, 5);
        times.push(performance.now() - t);
        topRandom.push(hits[0].id);
      }
      const topSeen = seenQueries.map((q) => index.search(q, 1)[0].id);
      if (label === 'exact') {
        truthRandom = topRandom;
        truthSeen = topSeen;
      }
      const recall = (top: number[], truth: number[]) =>
        top.filter((id, i) => id === truth[i]).length / top.length;
      times.sort((a, b) => a - b);
      const row: Row = {
        size,
        dim: d,
        backend: name,
        buildSeconds: addSeconds,
        addPerSecond: size / addSeconds,
        p50: percentile(times, 50),
        p95: percentile(times, 95),
        ratio: percentile(times, 50) / baseline,
        recallRandom: recall(topRandom, truthRandom),
        recallSeen: recall(topSeen, truthSeen),
        rssMiB,
      };
      rows.push(row);
      index.dispose();
      log(
        `${size} × ${d}  ${name.padEnd(30)} build ${addSeconds.toFixed(1)} s = ${Math.round(row.addPerSecond)}/s  p50 ${row.p50.toFixed(3)} ms  ` +
          `p95 ${row.p95.toFixed(3)} ms  ×${row.ratio.toFixed(2)}  recall@1 ${row.recallRandom.toFixed(3)} / ` +
          `${row.recallSeen.toFixed(3)}  +${Math.round(rssMiB)} MiB`,
      );
    }
  }
  const machine = machineLine();
  const settings = { noise: options.noise, batch: options.batch, queries: options.queries };
  if (options.json) console.log(JSON.stringify({ machine, baselineMs: baseline, settings, rows }, null, 2));
  else log(`${machine}; seen-again noise ${options.noise}; sink ${referenceSink() > 0 ? '+' : '-'}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
