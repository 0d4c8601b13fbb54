/**
 * Per-stage timings of the faceflow pipeline on one 1280×720 frame made from a real group photo:
 * decode, detect (SCRFD-500M, SCRFD-2.5G), align, embed (MobileFaceNet, batch 1 and 8), match
 * against a 1,000-identity gallery, and the whole frame end to end.
 *
 *   node dist/bench/stages.js [--runs N] [--threads T] [--json]
 *
 * Every figure is also printed as a ratio to a fixed reference workload measured in the same run
 * (plain JS 128-d dot products), so that figures taken on different machines can be compared.
 * This file prints numbers; it asserts nothing. Needs `../shared/data` (real photos and models);
 * without it, it says so and exits 0.
 */

import { seededRandom as rng } from '../src/util/seededRandom';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { alignFace } from '../src/align';
import { MemoryGallery } from '../src/gallery/memoryGallery';
import { decodeImage } from '../src/image/decode';
import { letterbox, type Normalization } from '../src/image/letterbox';
import { loadModel } from '../src/models/registry';
import type { Detector, Embedder } from '../src/models/roles';
import { ScrfdDetector } from '../src/models/scrfd';
import type { Face, Frame } from '../src/types';
import {
  BUSY_WARNING,
  cpuMark,
  fmt as fmtNumber,
  machineInfo,
  makeReference,
  othersShare,
  packageVersion,
  positiveInt as positiveIntOf,
  randomUnitVector as randomUnit,
  REFERENCE_DESCRIPTION as REF_DESCRIPTION,
  referenceSink,
  SHARED_DATA,
  stats,
  type Stats,
} from './common';

// ---------------------------------------------------------------------------------------------
// Options and data

interface BenchOptions {
  runs: number;
  warmup: number;
  threads: number;
  json: boolean;
}

const USAGE = 'usage: node dist/bench/stages.js [--runs N] [--threads T] [--json]';

function parseArgs(argv: string[]): BenchOptions {
  const options: BenchOptions = { runs: 30, warmup: 5, threads: 2, json: false };
  const positiveInt = (flag: string, value: string | undefined) => positiveIntOf(flag, value, USAGE);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--runs') options.runs = positiveInt(arg, argv[++i]);
    else if (arg === '--threads') options.threads = positiveInt(arg, argv[++i]);
    else if (arg === '--json') options.json = true;
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument '${arg}'\n${USAGE}`);
  }
  return options;
}

const FILES = {
  photo: path.join(SHARED_DATA, 'bbt', 'group', 'bbt1.jpg'),
  scrfd500m: path.join(SHARED_DATA, 'models', 'scrfd_500m_bnkps.onnx'),
  scrfd2_5g: path.join(SHARED_DATA, 'models', 'scrfd_2.5g_bnkps.onnx'),
  mobilefacenetA: path.join(SHARED_DATA, 'models', 'mobilefacenet_128_a.onnx'),
  mobilefacenetB: path.join(SHARED_DATA, 'models', 'mobilefacenet_128_b.onnx'),
};

const FRAME_W = 1280;
const FRAME_H = 720;
const JPEG_QUALITY = 85;
const GALLERY_IDENTITIES = 1000;
const GALLERY_PER_IDENTITY = 5;
const DIM = 128;
const MATCH_THRESHOLD = 0.35;

/** Design budget per 720p frame at 15 fps on the 2-core target (ms). */
const BUDGET = {
  decode: 6,
  detect: 20,
  alignEmbedPerFace: 8,
  match: 2,
  frame: 1000 / 15,
};

// ---------------------------------------------------------------------------------------------
// Sampling

interface Samples {
  ms: number[];
  /** Share of the cores other processes used during the timed runs. */
  othersBusy?: number;
}

/**
 * Warm-up lasts at least this long as well as `warmup` runs: the CPU accounting of /proc/stat
 * counts 10 ms ticks, so a short stage needs a longer window for its share of others to mean much.
 */
const MIN_WARMUP_MS = 250;

/** Run `fn` untimed to warm up, then `runs` times timed; other processes are watched throughout. */
async function sample(fn: () => unknown, runs: number, warmup: number): Promise<Samples> {
  const start = cpuMark();
  for (let i = 0; i < warmup || performance.now() - start.wall < MIN_WARMUP_MS; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return { ms, othersBusy: othersShare(start, cpuMark()) };
}

/** A row's figures from its samples; `divisor` turns a batch's time into a per-item time. */
function summary(s: Samples, divisor = 1): Pick<Row, 'stats' | 'othersBusy'> {
  return { stats: stats(s.ms, divisor), othersBusy: s.othersBusy };
}

// ---------------------------------------------------------------------------------------------
// Machine

interface Machine {
  cpu: string;
  cores: number;
  platform: string;
  node: string;
  onnxruntimeNode: string;
  sharp: string;
  libvips: string;
  threads: number;
  date: string;
}

function machine(threads: number): Machine {
  const m = machineInfo();
  return {
    cpu: m.cpu,
    cores: m.cores,
    platform: m.platform,
    node: m.node,
    onnxruntimeNode: packageVersion('onnxruntime-node'),
    sharp: packageVersion('sharp'),
    libvips: sharp.versions.vips,
    threads,
    date: m.date,
  };
}

// ---------------------------------------------------------------------------------------------
// Stages

interface Row {
  stage: string;
  input: string;
  stats: Stats;
  /** Design budget for this row (ms, median), where the design sets one. */
  budget?: number;
  /** Share of all cores that other processes used during this row's warm-up and timed runs. */
  othersBusy?: number;
}

async function loadDetector(file: string, threads: number): Promise<Detector> {
  const { model } = await loadModel(file, { threads, inputSize: 640 });
  if (model.role !== 'detector') throw new Error(`${file}: expected a detector`);
  return model;
}

async function loadEmbedder(file: string, threads: number): Promise<Embedder> {
  const { model } = await loadModel(file, { threads });
  if (model.role !== 'embedder') throw new Error(`${file}: expected an embedder`);
  return model;
}

function inputLabel(detector: Detector, frame: Frame): string {
  if (!(detector instanceof ScrfdDetector)) return `${frame.width}×${frame.height}`;
  const [w, h] = detector.inputSizeFor(frame);
  return `${frame.width}×${frame.height} → ${w}×${h}`;
}

async function run(options: BenchOptions): Promise<{ machine: Machine; rows: Row[]; notes: string[] }> {
  const { runs, warmup, threads } = options;
  // The thread budget applies to libvips too, and its operation cache is off: a camera never
  // sends the same bytes twice, so a cached decode or resize would flatter the figures.
  sharp.concurrency(threads);
  sharp.cache(false);
  const log = (msg: string) => {
    if (!options.json) console.error(msg);
  };
  const rows: Row[] = [];
  const notes: string[] = [];
  const reference = makeReference();
  // The baseline runs as a block before every stage, so a stage and its baseline see the same
  // machine, and one disturbed block cannot move the median of all of them much.
  const refBlocks: Samples[] = [];
  const timed = async (fn: () => unknown): Promise<Samples> => {
    refBlocks.push(await sample(reference, runs, warmup));
    return sample(fn, runs, warmup);
  };
  const measure = async (fn: () => unknown, divisor = 1) => summary(await timed(fn), divisor);

  // The frame: a real group photo resized to 720p, encoded once in memory.
  const jpeg = await sharp(FILES.photo)
    .resize(FRAME_W, FRAME_H, { fit: 'cover' })
    .jpeg({ quality: JPEG_QUALITY })
    .toBuffer();
  const frame = await decodeImage(jpeg);
  log(`frame: ${path.basename(FILES.photo)} → ${frame.width}×${frame.height} JPEG q${JPEG_QUALITY}`);

  log('loading models…');
  const det500m = await loadDetector(FILES.scrfd500m, threads);
  const det2_5g = await loadDetector(FILES.scrfd2_5g, threads);
  const embA = await loadEmbedder(FILES.mobilefacenetA, threads);
  const embB = await loadEmbedder(FILES.mobilefacenetB, threads);

  log('measuring: decode');
  const decode: Row = {
    stage: 'decode',
    input: `${FRAME_W}×${FRAME_H} JPEG, ${Math.round(jpeg.length / 1024)} KiB`,
    ...(await measure(() => decodeImage(jpeg))),
    budget: BUDGET.decode,
  };
  rows.push(decode);

  log('measuring: letterbox');
  // SCRFD's normalisation (src/models/scrfd.ts); the values do not change the cost.
  const norm: Normalization = { mean: [127.5, 127.5, 127.5], std: [128, 128, 128] };
  rows.push({
    stage: 'letterbox (part of detect)',
    input: `${frame.width}×${frame.height} → 640×640`,
    ...(await measure(() => letterbox(frame, 640, 640, norm))),
  });

  log('measuring: detect');
  const faces500m = await det500m.detect(frame);
  const faces2_5g = await det2_5g.detect(frame);
  const detect500m: Row = {
    stage: `detect SCRFD-500M (${faces500m.length} faces)`,
    input: inputLabel(det500m, frame),
    ...(await measure(() => det500m.detect(frame))),
    budget: BUDGET.detect,
  };
  rows.push(detect500m);
  rows.push({
    stage: `detect SCRFD-2.5G (${faces2_5g.length} faces)`,
    input: inputLabel(det2_5g, frame),
    ...(await measure(() => det2_5g.detect(frame))),
    budget: BUDGET.detect,
  });
  if (faces500m.length === 0) throw new Error(`SCRFD-500M found no face in ${FILES.photo}: cannot go on`);

  log('measuring: align');
  const size = embB.inputSize;
  const face = faces500m[0];
  rows.push({
    stage: 'align 1 face',
    input: `5 landmarks → ${size}×${size}`,
    ...(await measure(() => alignFace(frame, face.landmarks, size))),
  });

  log('measuring: embed');
  const crops = faces500m.map((f) => alignFace(frame, f.landmarks, size).aligned);
  const batch8 = Array.from({ length: 8 }, (_, i) => crops[i % crops.length]);
  if (crops.length < 8) notes.push(`The batch of 8 repeats the ${crops.length} detected faces' crops.`);
  rows.push({
    stage: 'embed MobileFaceNet-B, batch 1',
    input: `1×3×${size}×${size}`,
    ...(await measure(() => embB.embed([crops[0]]))),
  });
  const b8 = await timed(() => embB.embed(batch8));
  rows.push({ stage: 'embed MobileFaceNet-B, batch 8', input: `8×3×${size}×${size}`, ...summary(b8) });
  rows.push({ stage: '↳ per face', input: `8×3×${size}×${size} ÷ 8`, ...summary(b8, 8) });
  rows.push({
    stage: 'embed MobileFaceNet-A, batch 1',
    input: `1×3×${size}×${size}`,
    ...(await measure(() => embA.embed([crops[0]]))),
  });

  log('measuring: align + embed');
  rows.push({
    stage: 'align + embed B, batch 1, per face',
    input: `1 face`,
    ...(await measure(async () => embB.embed([alignFace(frame, face.landmarks, size).aligned]))),
    budget: BUDGET.alignEmbedPerFace,
  });
  const faces8 = Array.from({ length: 8 }, (_, i) => faces500m[i % faces500m.length]);
  rows.push({
    stage: 'align + embed B, batch 8, per face',
    input: `8 faces ÷ 8`,
    ...(await measure(() => embB.embed(faces8.map((f) => alignFace(frame, f.landmarks, size).aligned)), 8)),
    budget: BUDGET.alignEmbedPerFace,
  });
  const n = faces500m.length;
  const alignEmbedFrame: Row = {
    stage: `align + embed B, the frame's ${n} faces`,
    input: `${n} faces, one batch`,
    ...(await measure(() => embB.embed(faces500m.map((f) => alignFace(frame, f.landmarks, size).aligned)))),
    budget: BUDGET.alignEmbedPerFace * n,
  };
  rows.push(alignEmbedFrame);

  log('measuring: match');
  const rand = rng(42);
  const gallery = new MemoryGallery(embB.id);
  for (let p = 0; p < GALLERY_IDENTITIES; p++) {
    for (let k = 0; k < GALLERY_PER_IDENTITY; k++) gallery.add(`person-${p}`, randomUnit(rand, DIM));
  }
  const query = randomUnit(rand, DIM);
  const match: Row = {
    stage: 'match 1 query',
    input: `${GALLERY_IDENTITIES.toLocaleString('en')} ids × ${GALLERY_PER_IDENTITY} × ${DIM}-d`,
    ...(await measure(() => gallery.match(query, { threshold: MATCH_THRESHOLD, topK: 3 }))),
    budget: BUDGET.match,
  };
  rows.push(match);

  log('measuring: full frame');
  let lastFaces = 0;
  const fullFrame = async () => {
    const f = await decodeImage(jpeg);
    const found: Face[] = await det500m.detect(f);
    for (const x of found) x.aligned = alignFace(f, x.landmarks, size).aligned;
    const vectors = found.length > 0 ? await embB.embed(found.map((x) => x.aligned as Buffer)) : [];
    vectors.forEach((v, i) => {
      found[i].embedding = v;
      found[i].identity = gallery.match(v, { threshold: MATCH_THRESHOLD, topK: 3 });
    });
    lastFaces = found.length;
  };
  const full = await measure(fullFrame);
  rows.push({
    stage: `full frame (${lastFaces} faces)`,
    input: 'decode + 500M + align + embed B + match',
    ...full,
    budget: BUDGET.frame,
  });
  // The stages one after the other cost more than each alone when they disturb each other
  // (thread pools of different sessions, caches): compare the frame with the sum of its parts.
  const parts =
    decode.stats.median + detect500m.stats.median + alignEmbedFrame.stats.median + n * match.stats.median;
  notes.push(
    `Full frame ${fmt(full.stats.median)} ms against ${fmt(parts)} ms for its stages measured alone ` +
      `(decode + detect 500M + align + embed ${n} faces + ${n} matches): ×${(full.stats.median / parts).toFixed(2)}.`,
  );

  const blockMedians = refBlocks.map((b) => stats(b.ms).median);
  const shares = refBlocks.map((b) => b.othersBusy).filter((x) => x !== undefined);
  rows.unshift({
    stage: 'baseline (reference)',
    input: REF_DESCRIPTION,
    stats: stats(refBlocks.flatMap((b) => b.ms)),
    othersBusy: shares.length > 0 ? Math.max(...shares) : undefined,
  });
  notes.push(
    `The baseline ran as ${refBlocks.length} blocks, one before each stage; their medians ranged ` +
      `${fmt(Math.min(...blockMedians))}–${fmt(Math.max(...blockMedians))} ms.`,
  );
  const busy = rows.filter((r) => (r.othersBusy ?? 0) > BUSY_WARNING);
  if (busy.length > 0) {
    notes.push(
      `WARNING: other processes kept more than ${BUSY_WARNING * 100} % of the cores busy during: ` +
        busy.map((r) => `${r.stage} (${Math.round((r.othersBusy ?? 0) * 100)} %)`).join(', ') +
        '. Those figures are inflated; run again on a quiet machine.',
    );
  }
  const all = rows.map((r) => r.othersBusy).filter((x) => x !== undefined);
  if (all.length > 0) {
    notes.push(`Other processes' share of the cores, worst row: ${Math.round(Math.max(...all) * 100)} %.`);
  }

  await Promise.all([det500m, det2_5g, embA, embB].map((m) => m.dispose()));
  if (!Number.isFinite(referenceSink())) notes.push('reference sink is not finite');
  return { machine: machine(threads), rows, notes };
}

// ---------------------------------------------------------------------------------------------
// Output

/** Stages go below a millisecond: three decimals there. */
const fmt = (ms: number): string => fmtNumber(ms, true);

function markdown(result: { machine: Machine; rows: Row[]; notes: string[] }, options: BenchOptions): string {
  const m = result.machine;
  const base = result.rows[0].stats.median;
  const lines = [
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.platform}`,
    `Node ${m.node}, onnxruntime-node ${m.onnxruntimeNode}, sharp ${m.sharp} (libvips ${m.libvips})`,
    `Threads: ${m.threads} (ONNX Runtime intra-op, libvips); runs: ${options.runs} per stage, after ` +
      `${options.warmup} warm-up runs (and at least ${MIN_WARMUP_MS} ms)`,
    `Date: ${m.date}`,
    '',
    '| stage | input | median ms | p90 ms | × baseline | budget ms | within | others’ CPU |',
    '|---|---|--:|--:|--:|--:|:-:|--:|',
  ];
  for (const r of result.rows) {
    const within = r.budget === undefined ? '' : r.stats.median <= r.budget ? 'yes' : 'no';
    const others = r.othersBusy === undefined ? 'n/a' : `${Math.round(r.othersBusy * 100)} %`;
    lines.push(
      `| ${r.stage} | ${r.input} | ${fmt(r.stats.median)} | ${fmt(r.stats.p90)} | ` +
        `${(r.stats.median / base).toFixed(2)} | ${r.budget === undefined ? '' : fmt(r.budget)} | ${within} | ` +
        `${others} |`,
    );
  }
  lines.push('');
  lines.push('× baseline: stage median ÷ baseline median, both from this run.');
  lines.push('Budgets are for the 2-core target; "within" compares the median and means little elsewhere.');
  lines.push(
    "others’ CPU: share of all cores that other processes used during the row's warm-up and timed runs (Linux).",
  );
  for (const n of result.notes) lines.push(n);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(SHARED_DATA)) {
    console.log(`bench skipped: needs the real photos and models of ${SHARED_DATA}, which is not there`);
    return;
  }
  const missing = Object.values(FILES).filter((f) => !existsSync(f));
  if (missing.length > 0) {
    console.log(
      `bench skipped: ${SHARED_DATA} lacks ${missing.map((f) => path.relative(SHARED_DATA, f)).join(', ')}`,
    );
    return;
  }
  const result = await run(options);
  if (options.json) {
    const base = result.rows[0].stats.median;
    const rows = result.rows.map((r) => ({ ...r, ratio: r.stats.median / base }));
    console.log(JSON.stringify({ ...result, rows, runs: options.runs, warmup: options.warmup }, null, 2));
  } else {
    console.log(markdown(result, options));
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
