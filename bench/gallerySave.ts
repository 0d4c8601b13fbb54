/**
 * What one-writer-per-file costs a save: `GalleryFile.save()` (take the file's lock, look whether
 * another process wrote the file, write, then digest the gallery as the base of the next merge)
 * against `GalleryStore.save()` of the same state (the write alone), in the same run, for galleries
 * of several sizes. Also the save after another process changed the file (read, merge, write).
 *
 *   node --expose-gc dist/bench/gallerySave.js [--sizes 1000,10000,50000] [--dim 512] [--runs 5]
 *
 * The save blocks the event loop only in its synchronous parts (the digest, the merge); the
 * figures are wall time of the whole save. Prints numbers; asserts only that the merge kept the
 * other process's person.
 */

import { performance } from 'node:perf_hooks';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GalleryFile } from '../src/gallery/galleryFile';
import { GalleryStore } from '../src/gallery/store';
import { seededRandom } from '../src/util/seededRandom';
import { machineLine, median, positiveInt, positiveInts, randomUnitVector, settle } from './common';

const USAGE =
  'usage: node --expose-gc dist/bench/gallerySave.js [--sizes 1000,10000,50000] [--dim 512] [--runs 5]';
const MODEL = 'bench-random';
const PER_PERSON = 10;

interface Options {
  sizes: number[];
  dim: number;
  runs: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { sizes: [1000, 10_000, 50_000], dim: 512, runs: 5 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--sizes') options.sizes = positiveInts(arg, argv[++i], USAGE);
    else if (arg === '--dim') options.dim = positiveInt(arg, argv[++i], USAGE);
    else if (arg === '--runs') options.runs = positiveInt(arg, argv[++i], USAGE);
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument '${arg}'\n${USAGE}`);
  }
  return options;
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  await settle();
  const t = performance.now();
  await work();
  return performance.now() - t;
}

async function main(): Promise<void> {
  const { sizes, dim, runs } = parseArgs(process.argv.slice(2));
  console.log(
    `gallery save, ${dim}-d, ${PER_PERSON} embeddings a person, median of ${runs}; ${machineLine()}`,
  );
  console.log('embeddings | store.save ms | GalleryFile.save ms | ratio | save after another writer ms');
  for (const size of sizes) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faceflow-gallery-save-'));
    try {
      const file = path.join(dir, 'gallery.ffg');
      const rand = seededRandom(size);
      const opened = await GalleryFile.open(file, { modelId: MODEL, dimension: dim, backend: 'exact' });
      for (let i = 0; i < size; i++) {
        opened.gallery.addEmbedding(`person-${Math.floor(i / PER_PERSON)}`, randomUnitVector(rand, dim));
      }
      await opened.save();
      const bare = new GalleryStore(path.join(dir, 'bare.ffg'));
      const storeMs: number[] = [];
      const fileMs: number[] = [];
      const mergedMs: number[] = [];
      for (let run = 0; run < runs; run++) {
        storeMs.push(await timed(() => bare.save(opened.gallery.toState())));
        fileMs.push(await timed(() => opened.save()));
        // Another process's enrolment: the next save reads the file and merges it in.
        const other = await GalleryFile.open(file, { modelId: MODEL, dimension: dim, backend: 'exact' });
        other.gallery.addEmbedding(`visitor-${run}`, randomUnitVector(rand, dim));
        await other.save();
        mergedMs.push(await timed(() => opened.save()));
        if (!opened.gallery.has(`visitor-${run}`)) throw new Error('the merge lost the other writer');
      }
      const [s, f, m] = [median(storeMs), median(fileMs), median(mergedMs)];
      console.log(
        `${String(size).padStart(10)} | ${s.toFixed(1).padStart(13)} | ${f.toFixed(1).padStart(19)} | ` +
          `${(f / s).toFixed(2).padStart(5)} | ${m.toFixed(1).padStart(10)}`,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

main().catch((err: unknown) => {
  console.error((err as Error).message);
  process.exitCode = 1;
});
