/**
 * Load time of a gallery file: how long `GalleryFile.open` takes to read a saved gallery and
 * build its vector index, per backend. The file is written first with `GalleryFile` itself
 * (seeded random unit vectors, `--per-identity` embeddings per person, no key).
 *
 *   node --expose-gc dist/bench/galleryLoad.js [--size 100000] [--dim 512] [--per-identity 10]
 *        [--backends exact,flat,ivf,hnsw] [--runs 3] [--json]
 *
 * Backends: `exact`; `auto` (createIndex's default: FAISS when faiss-node loads, whose kind then
 * depends on the size, see src/gallery/faissIndex.ts); `flat`, `ivf`, `hnsw` (FAISS, that kind
 * forced). For each: the file read alone (`GalleryStore.load`: read, checks, JSON, vectors), then
 * the whole `open` (the same read, the gallery's own maps, the index build), median of `--runs`;
 * then one `rank` of a stored vector, which must find its own person. Prints numbers; asserts
 * only that the loaded gallery answers.
 */

import { performance } from 'node:perf_hooks';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GalleryFile, type GalleryFileOptions } from '../src/gallery/galleryFile';
import { faissAvailable } from '../src/gallery/faissIndex';
import { GalleryStore } from '../src/gallery/store';
import { seededRandom } from '../src/util/seededRandom';
import { machineLine, positiveInt, randomUnitVector as randomUnit, rankPercentile, settle } from './common';

const BACKENDS = ['exact', 'auto', 'flat', 'ivf', 'hnsw'];
const USAGE =
  'usage: node [--expose-gc] dist/bench/galleryLoad.js [--size 100000] [--dim 512] [--per-identity 10] ' +
  '[--backends exact,auto,flat,ivf,hnsw] [--runs 3] [--json]';

interface Options {
  size: number;
  dim: number;
  perIdentity: number;
  backends: string[];
  runs: number;
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    size: 100_000,
    dim: 512,
    perIdentity: 10,
    backends: ['exact', 'auto', 'flat'],
    runs: 3,
    json: false,
  };
  const positive = (flag: string, value: string | undefined) => positiveInt(flag, value, USAGE);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--size') options.size = positive(arg, argv[++i]);
    else if (arg === '--dim') options.dim = positive(arg, argv[++i]);
    else if (arg === '--per-identity') options.perIdentity = positive(arg, argv[++i]);
    else if (arg === '--runs') options.runs = positive(arg, argv[++i]);
    else if (arg === '--json') options.json = true;
    else if (arg === '--backends') {
      options.backends = (argv[++i] ?? '').split(',');
      const unknown = options.backends.filter((b) => !BACKENDS.includes(b));
      if (unknown.length > 0)
        throw new Error(`unknown backend '${unknown[0]}' (${BACKENDS.join(', ')})\n${USAGE}`);
    } else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument '${arg}'\n${USAGE}`);
  }
  return options;
}

/** The middle run (the upper one of an even count), one that really happened. */
const median = (xs: number[]) =>
  rankPercentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
const MODEL = 'bench-random';

function indexOptions(backend: string): Partial<GalleryFileOptions> {
  if (backend === 'exact') return { backend: 'exact' };
  if (backend === 'auto') return { backend: 'auto' };
  return { backend: 'faiss', faiss: { kind: backend as 'flat' | 'ivf' | 'hnsw' } };
}

interface Row {
  backend: string;
  readSeconds: number;
  openSeconds: number;
  rankMs: number;
  rssMiB: number;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const log = (line: string) => {
    if (!options.json) console.log(line);
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faceflow-gallery-load-'));
  const file = path.join(dir, 'gallery.ffg');
  const { size, dim } = options;
  try {
    const rand = seededRandom(size);
    let t = performance.now();
    const writer = await GalleryFile.open(file, { modelId: MODEL, dimension: dim, backend: 'exact' });
    const probe = randomUnit(rand, dim);
    for (let i = 0; i < size; i++) {
      const name = `person-${Math.floor(i / options.perIdentity)}`;
      writer.gallery.addEmbedding(name, i === size - 1 ? probe : randomUnit(rand, dim));
    }
    await writer.save();
    const probeName = `person-${Math.floor((size - 1) / options.perIdentity)}`;
    const bytes = fs.statSync(file).size;
    log(
      `wrote ${size} × ${dim} (${writer.gallery.size} identities) in ${((performance.now() - t) / 1000).toFixed(1)} s: ` +
        `${(bytes / 2 ** 20).toFixed(0)} MiB`,
    );

    const rows: Row[] = [];
    for (const backend of options.backends) {
      if (backend !== 'exact' && backend !== 'auto' && !faissAvailable()) {
        log(`${backend}: skipped, faiss-node is not built (README "FAISS (optional)")`);
        continue;
      }
      const reads: number[] = [];
      const opens: number[] = [];
      let rankMs = 0;
      let rssMiB = 0;
      for (let run = 0; run < options.runs; run++) {
        await settle();
        t = performance.now();
        const loaded = await new GalleryStore(file).load();
        reads.push((performance.now() - t) / 1000);
        if (loaded.snapshot?.embeddings.length !== size) throw new Error('the file did not read back');
        await settle();
        const rssBefore = process.memoryUsage().rss;
        t = performance.now();
        const opened = await GalleryFile.open(file, {
          modelId: MODEL,
          dimension: dim,
          ...indexOptions(backend),
        });
        opens.push((performance.now() - t) / 1000);
        rssMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
        t = performance.now();
        const [best] = opened.gallery.rank(probe, 1);
        rankMs = performance.now() - t;
        if (best?.name !== probeName) throw new Error(`${backend}: the stored vector found ${best?.name}`);
      }
      const row: Row = { backend, readSeconds: median(reads), openSeconds: median(opens), rankMs, rssMiB };
      rows.push(row);
      log(
        `${backend.padEnd(6)} read ${row.readSeconds.toFixed(2)} s  open (read + index) ${row.openSeconds.toFixed(2)} s  ` +
          `index ≈ ${(row.openSeconds - row.readSeconds).toFixed(2)} s  first rank ${row.rankMs.toFixed(1)} ms  ` +
          `+${Math.round(row.rssMiB)} MiB  (median of ${options.runs})`,
      );
    }
    const machine = machineLine();
    if (options.json) console.log(JSON.stringify({ machine, size, dim, fileBytes: bytes, rows }, null, 2));
    else log(machine);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
