/**
 * Photo library scan throughput (issue 8): photos per minute of `scanFolder` on sets of real
 * photos, the cost of a rescan that finds nothing new, and clustering time.
 *
 *   node dist/bench/libraryScan.js [--copies 4] [--no-wait]
 *
 * Sets: the six face-api sample photos (1920 px group photos, shipped in npm), each re-encoded
 * `--copies` times at different JPEG qualities so that every file is new content; the same at
 * 4000 px (phone-camera size: decode and shrink dominate); and, when ../shared is there, the bbt
 * portraits and group photos. A plain-JS reference block before and after gives each figure as a
 * ratio to a baseline measured in the same run. Prints figures; asserts nothing.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';

import { samplePhotosDir } from '../src/demo/sampleMedia';
import { FaceFlow } from '../src/faceflow';
import { clusterLibrary, LibraryDb, scanFolder } from '../src/library';
import {
  fmt,
  machineLine,
  makeReference,
  median,
  positiveInt,
  referenceBlock,
  SHARED_DATA,
  waitForQuiet,
} from './common';

const USAGE = 'usage: node dist/bench/libraryScan.js [--copies N] [--no-wait]';

interface Row {
  set: string;
  photos: number;
  faces: number;
  scanS: number;
  photosPerMin: number;
  rescanS: number;
  clusterS: number;
  clusters: number;
  rssMiB: number;
}

async function makeSet(dir: string, copies: number, width?: number): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  let n = 0;
  for (let c = 0; c < copies; c++) {
    for (let i = 1; i <= 6; i++) {
      let img = sharp(path.join(samplePhotosDir(), `sample${i}.jpg`));
      if (width) img = img.resize(width);
      await img
        .jpeg({ quality: 92 - c * 4 })
        .toFile(path.join(dir, `photo-${String(n++).padStart(3, '0')}.jpg`));
    }
  }
}

async function measure(flow: FaceFlow, set: string, dir: string, work: string): Promise<Row> {
  const file = path.join(work, `${set.replace(/\W+/g, '-')}.ffl`);
  const db = await LibraryDb.open(file, {
    create: true,
    modelId: flow.embedder.id,
    dimension: flow.embedder.dimension,
    threshold: flow.threshold,
  });
  try {
    const t0 = performance.now();
    const report = await scanFolder(flow, db, dir);
    const scanS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    await scanFolder(flow, db, dir);
    const rescanS = (performance.now() - t1) / 1000;
    const t2 = performance.now();
    const stored = clusterLibrary(db);
    const clusterS = (performance.now() - t2) / 1000;
    return {
      set,
      photos: report.scanned,
      faces: report.faces,
      scanS,
      photosPerMin: (report.scanned / scanS) * 60,
      rescanS,
      clusterS,
      clusters: stored.clusters.length,
      rssMiB: process.memoryUsage().rss / 2 ** 20,
    };
  } finally {
    await db.close();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let copies = 4;
  let wait = true;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--copies') copies = positiveInt('--copies', args[++i], USAGE);
    else if (args[i] === '--no-wait') wait = false;
    else throw new Error(USAGE);
  }
  const quiet = await waitForQuiet(wait, (s) => console.log(`[library] ${s}`));
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-bench-library-'));
  try {
    const ref = makeReference();
    const before = median(referenceBlock(ref));
    const flow = await FaceFlow.open();
    const rows: Row[] = [];
    try {
      const hd = path.join(work, 'hd');
      await makeSet(hd, copies);
      rows.push(await measure(flow, `face-api samples, 1920 px (${6 * copies})`, hd, work));
      const big = path.join(work, 'big');
      await makeSet(big, copies, 4000);
      rows.push(await measure(flow, `face-api samples, 4000 px (${6 * copies})`, big, work));
      const bbt = path.join(SHARED_DATA, 'bbt');
      if (await fs.stat(bbt).catch(() => undefined)) {
        rows.push(await measure(flow, 'bbt: 40 portraits of ~150 px + 5 group photos', bbt, work));
      }
    } finally {
      await flow.dispose();
    }
    const after = median(referenceBlock(ref));
    const refMs = (before + after) / 2;

    console.log(
      `\n${machineLine()}; 1-min load at start ${quiet.load1.toFixed(2)}${quiet.quiet ? '' : ' (NOT quiet)'}`,
    );
    console.log(`reference block: ${fmt(before)} ms before, ${fmt(after)} ms after\n`);
    console.log(
      '| set | photos | faces | scan s | photos/min | photos per reference-second | rescan s | cluster s | groups | RSS MiB |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of rows) {
      // Photos per second of the reference workload: a figure that moves with the machine's speed.
      const perRef = (r.photos / r.scanS) * (refMs / 1000);
      console.log(
        `| ${r.set} | ${r.photos} | ${r.faces} | ${fmt(r.scanS)} | ${fmt(r.photosPerMin)} | ${perRef.toFixed(3)} | ` +
          `${fmt(r.rescanS)} | ${fmt(r.clusterS)} | ${r.clusters} | ${fmt(r.rssMiB)} |`,
      );
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
