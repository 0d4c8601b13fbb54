/**
 * Soak (issue 7): the demo's pipeline for a long time, to see whether it keeps going and whether
 * its memory settles. The demo's clip (1280×720, 15 fps, made by `prepareDemo` from photos shipped
 * in npm, with 'Sam' enrolled) loops through `CameraSource.processLatest` → `recognizeFrames` →
 * `faceEvents`, and every Nth processed frame goes to an `MjpegServer` watched by a loopback viewer,
 * as the demo's live view is when someone watches it.
 *
 *   node dist/bench/soak.js [--minutes 60] [--rate full|live] [--sample-s 10] [--warmup-s 60]
 *        [--annotate-every 2] [--cooldown-s 1] [--detect-every 1] [--png bench/soak-rss.png]
 *        [--json] [--no-wait]
 *
 * `--rate full` reads the file without `-re`, as fast as ffmpeg decodes it, so the chain is never
 * idle and `processLatest` drops what it cannot take: the most work an hour can hold. `--rate live`
 * reads it in real time (`-re`), as a camera delivers it.
 *
 * Every `--sample-s` seconds: frames decoded, processed and dropped, events, JPEGs encoded, RSS,
 * V8 heap used and total, external and ArrayBuffer memory, CPU of node and of ffmpeg. They go to
 * bench/out/soak-<date>.csv and a chart (memory over time; frames/s below) to `--png`. The verdict
 * line compares the median RSS of the first and last quarters of the samples after `--warmup-s`.
 * A plain-JS reference block runs before and after, and CPU per processed frame is also given as a
 * ratio to it. Prints figures; asserts nothing.
 *
 * `runSoak` is exported for test/soak.test.ts, the short variant that asserts behaviour.
 */

import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { lastValueFrom, of, tap, count as countAll } from 'rxjs';
import sharp from 'sharp';
import { DEMO_PERSON } from '../src/demo/sampleMedia';
import { prepareDemo, type DemoFiles } from '../src/demo/prepareDemo';
import { escapeXml } from '../src/eval/plot';
import { FaceFlow } from '../src/faceflow';
import { GalleryFile } from '../src/gallery/galleryFile';
import { CameraSource, fileFrames } from '../src/io/cameraSource';
import { MjpegServer } from '../src/io/mjpegServer';
import { faceEvents } from '../src/pipeline/events';
import { recognizeFrames } from '../src/pipeline/live';
import type { FaceEvent, FaceFrame } from '../src/types';
import {
  BENCH_OUT,
  childPids,
  cpuMark,
  fmt,
  machineInfo,
  median,
  mib,
  OTHER_RUNS,
  packageVersion,
  pct,
  PROJECT_ROOT,
  referenceBlock,
  makeReference,
  positiveInt,
  sleep,
  usage,
  waitForQuiet,
  type Quiet,
} from './common';

// ---------------------------------------------------------------------------------------------
// The demo, opened once

export interface DemoSetup {
  files: DemoFiles;
  flow: FaceFlow;
  gallery: GalleryFile;
  threshold: number;
  /** Frames in one pass of the clip: a looping reader's `seq` divided by it is the loop. */
  clipFrames: number;
  close(): Promise<void>;
}

/**
 * The demo's files in `dir` (made when missing, kept otherwise), its models and its gallery, as
 * `npm start` opens them; ONNX Runtime threads per model: `threads` (default: each model's own, as there).
 */
export async function openDemo(
  dir: string,
  log: (s: string) => void = () => undefined,
  threads?: number,
): Promise<DemoSetup> {
  const files = await prepareDemo(dir, log);
  const flow = await FaceFlow.open({ threads });
  try {
    const gallery = await GalleryFile.open(files.gallery, {
      modelId: flow.embedder.id,
      dimension: flow.embedder.dimension,
    });
    // One plain pass: how long a loop is, and ffmpeg and the disk cache warmed up on the way.
    const clipFrames = await lastValueFrom(fileFrames(files.video, { cameraId: 'count' }).pipe(countAll()));
    return {
      files,
      flow,
      gallery,
      threshold: gallery.gallery.threshold ?? flow.threshold,
      clipFrames,
      close: () => flow.dispose(),
    };
  } catch (err) {
    await flow.dispose();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// The run

export interface SoakOptions {
  /** 'full': the file as fast as ffmpeg decodes it; 'live': in real time, as a camera. */
  rate: 'full' | 'live';
  durationMs: number;
  sampleEveryMs: number;
  /** Push every Nth processed frame to the live view; 0: no live view at all. */
  annotateEvery: number;
  /** faceEvents' cooldown: small, so that a person is announced again on each loop. */
  cooldownMs: number;
  detectEvery: number;
  /** Called with each sample as it is taken (progress). */
  onSample?: (sample: SoakSample) => void;
  /**
   * Collect garbage before each sample (needs `node --expose-gc`): memory then shows what is kept, not
   * where the collector's cycle happens to be, which over a minute or two is noise as large as a leak.
   */
  collectBeforeSample?: boolean;
}

export interface SoakSample {
  /** Seconds since the pipeline was subscribed. */
  t: number;
  /** Frames out of ffmpeg. */
  decoded: number;
  processed: number;
  /** Frames skipped by processLatest: decoded between the first and last processed, not processed. */
  dropped: number;
  events: number;
  /** Events naming the demo person. */
  recognized: number;
  /** JPEGs the live view encoded. */
  encoded: number;
  rssMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  arrayBuffersMiB: number;
  /** CPU seconds so far of node, and of ffmpeg. */
  cpuS: number;
  ffmpegCpuS: number;
}

export interface SoakEvent {
  type: FaceEvent['type'];
  name: string;
  /** The seq of the frame the event came from, and its pass through the clip. */
  seq: number;
  loop: number;
  t: number;
}

export interface SoakResult {
  samples: SoakSample[];
  events: SoakEvent[];
  /** What went wrong: a pipeline error, a camera that went down or stalled, a failed encode. */
  problems: string[];
  firstSeq: number;
  lastSeq: number;
  clipFrames: number;
  /** Bytes the viewer received. */
  viewerBytes: number;
}

/** A loopback viewer of the MJPEG stream that reads and discards, as a browser tab would. */
function openViewer(port: number): Promise<{ bytes(): number; close(): void }> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    const req = http.get({ host: '127.0.0.1', port, path: '/stream.mjpg', agent: false }, (res) => {
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      // The server ends the stream on close; nothing to do about it then.
      res.on('error', () => undefined);
      resolve({ bytes: () => bytes, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

/**
 * Runs the demo pipeline for `durationMs`, sampling as it goes; resolves when it is stopped and
 * its ffmpeg has exited. Never throws for the pipeline's own failures: they are in `problems`.
 */
export async function runSoak(setup: DemoSetup, options: SoakOptions): Promise<SoakResult> {
  const { flow, threshold, clipFrames } = setup;
  const problems: string[] = [];
  const events: SoakEvent[] = [];
  const samples: SoakSample[] = [];
  const source = new CameraSource(
    { kind: 'file', path: setup.files.video, loop: true, realtime: options.rate === 'live' },
    // As the demo's camera node delivers them: with the detector's picture.
    { cameraId: 'demo-cam', detectorInput: flow.detector.inputBox },
  );
  source.events$.subscribe((e) => {
    if (e.type === 'down') problems.push(`camera down: ${e.reason}`);
    else if (e.type === 'stalled') problems.push(`camera stalled (${e.silentMs} ms without a frame)`);
    else if (e.type === 'log' && (e.level === 'error' || e.level === 'fatal' || e.level === 'panic'))
      problems.push(`ffmpeg: ${e.message}`);
  });

  const server =
    options.annotateEvery > 0
      ? new MjpegServer({
          // No cap of its own: every pushed frame is encoded if the encoder is free, so the
          // encode rate is set by --annotate-every alone.
          maxFps: 1000,
          annotate: { threshold },
          onError: (err) => problems.push(`live view: ${err.message}`),
        })
      : undefined;
  const viewer = server ? await openViewer(await server.listen(0)) : undefined;
  while (server && server.clientCount === 0) await sleep(5);

  const op = recognizeFrames(flow, setup.gallery.gallery, { threshold, detectEvery: options.detectEvery });
  let decoded = 0;
  let processed = 0;
  let firstSeq = -1;
  let lastSeq = -1;
  let recognized = 0;
  const start = cpuMark(true);
  const elapsed = () => (performance.now() - start.wall) / 1000;

  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const counter = source.frames$.subscribe({ next: () => decoded++, error: () => undefined });
  const subscription = source
    .processLatest((frame) => of(frame).pipe(op))
    .pipe(
      tap((out: FaceFrame) => {
        processed++;
        if (firstSeq < 0) firstSeq = out.frame.seq;
        lastSeq = out.frame.seq;
        if (server && processed % options.annotateEvery === 0) server.push(out);
      }),
      faceEvents({ cooldownMs: options.cooldownMs, unknownAfterFrames: 5 }),
    )
    .subscribe({
      next: (e) => {
        // faceEvents answers within a microtask of its frame, long before the next frame is out.
        events.push({
          type: e.type,
          name: e.name,
          seq: lastSeq,
          loop: Math.floor(lastSeq / clipFrames),
          t: elapsed(),
        });
        if (e.name === DEMO_PERSON) recognized++;
      },
      error: (err: unknown) => {
        problems.push(`pipeline error: ${err instanceof Error ? err.message : String(err)}`);
        stop();
      },
      complete: () => {
        problems.push('the looping camera completed');
        stop();
      },
    });

  const sample = (): void => {
    const now = cpuMark(true);
    const used = usage(start, now);
    if (options.collectBeforeSample) {
      const collect = (globalThis as { gc?: () => void }).gc;
      if (!collect) throw new Error('collectBeforeSample needs node --expose-gc');
      collect();
    }
    const m = process.memoryUsage();
    const s: SoakSample = {
      t: elapsed(),
      decoded,
      processed,
      dropped: firstSeq < 0 ? 0 : lastSeq - firstSeq + 1 - processed,
      events: events.length,
      recognized,
      encoded: server?.stats().encoded ?? 0,
      rssMiB: mib(m.rss),
      heapUsedMiB: mib(m.heapUsed),
      heapTotalMiB: mib(m.heapTotal),
      externalMiB: mib(m.external),
      arrayBuffersMiB: mib(m.arrayBuffers),
      cpuS: used.cpuS,
      ffmpegCpuS: used.childCpuS,
    };
    samples.push(s);
    options.onSample?.(s);
  };
  sample();
  const timer = setInterval(sample, options.sampleEveryMs);
  await Promise.race([sleep(options.durationMs), stopped]);
  clearInterval(timer);
  sample();

  subscription.unsubscribe();
  counter.unsubscribe();
  viewer?.close();
  await server?.close();
  // The decoder gets SIGTERM on unsubscribe; wait for it, so nothing outlives the run.
  for (let i = 0; i < 100 && childPids().length > 0; i++) await sleep(50);
  return { samples, events, problems, firstSeq, lastSeq, clipFrames, viewerBytes: viewer?.bytes() ?? 0 };
}

// ---------------------------------------------------------------------------------------------
// Verdict

export interface SoakVerdict {
  /** Samples after the warm-up, and the quarters compared. */
  steady: number;
  firstQuarterRssMiB: number;
  lastQuarterRssMiB: number;
  growthMiB: number;
  growthShare: number;
  /** Last quarter ≤ first × 1.3 + 40 MiB: a generous plateau. */
  plateau: boolean;
  /**
   * Least-squares slope of RSS over the second half of the samples after the warm-up, in MiB per
   * minute: what a leak looks like once the caches have filled (0 for a plateau, noise aside).
   */
  slopeMiBPerMin: number;
}

/** RSS medians of the first and last quarters of the samples taken after `warmupS`. */
export function rssVerdict(samples: readonly SoakSample[], warmupS: number): SoakVerdict {
  const steady = samples.filter((s) => s.t >= warmupS);
  const use = steady.length >= 4 ? steady : samples;
  const quarter = Math.max(1, Math.floor(use.length / 4));
  const first = median(use.slice(0, quarter).map((s) => s.rssMiB));
  const last = median(use.slice(-quarter).map((s) => s.rssMiB));
  return {
    steady: use.length,
    firstQuarterRssMiB: first,
    lastQuarterRssMiB: last,
    growthMiB: last - first,
    growthShare: (last - first) / first,
    plateau: last <= first * 1.3 + 40,
    slopeMiBPerMin: rssSlope(use.slice(Math.floor(use.length / 2))),
  };
}

/**
 * How far the floor of `external` (Buffers: frames and crops) rose: the last third's lowest sample against the
 * first third's. The frames in flight when a sample is taken add a large positive noise; the floor is what is
 * kept whatever is in flight, so it is what a leak of Buffers raises.
 */
export function bufferFloorRise(samples: readonly SoakSample[]): number {
  if (samples.length < 2) return 0;
  const third = Math.max(1, Math.floor(samples.length / 3));
  const floor = (part: readonly SoakSample[]) => Math.min(...part.map((s) => s.externalMiB));
  return floor(samples.slice(-third)) - floor(samples.slice(0, third));
}

/** Least-squares slope of RSS against time, MiB per minute; 0 for fewer than two samples. */
export function rssSlope(samples: readonly SoakSample[]): number {
  return memorySlope(samples, (s) => s.rssMiB);
}

/**
 * Least-squares slope of `value` (MiB) against time, in MiB per minute; 0 for fewer than two samples. With
 * `heapUsedMiB + externalMiB` sampled after a collection it is the memory JavaScript keeps alive (frames and
 * crops are Buffers, counted in `external`): a leak of those shows in a minute, where RSS still grows as
 * native caches and arenas fill.
 */
export function memorySlope(samples: readonly SoakSample[], value: (s: SoakSample) => number): number {
  if (samples.length < 2) return 0;
  const n = samples.length;
  const mt = samples.reduce((a, s) => a + s.t, 0) / n;
  const mv = samples.reduce((a, s) => a + value(s), 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.t - mt) * (value(s) - mv);
    den += (s.t - mt) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 60;
}

// ---------------------------------------------------------------------------------------------
// CSV and chart

const CSV_COLUMNS: (keyof SoakSample)[] = [
  't',
  'decoded',
  'processed',
  'dropped',
  'events',
  'recognized',
  'encoded',
  'rssMiB',
  'heapUsedMiB',
  'heapTotalMiB',
  'externalMiB',
  'arrayBuffersMiB',
  'cpuS',
  'ffmpegCpuS',
];

export function soakCsv(samples: readonly SoakSample[]): string {
  const rows = samples.map((s) =>
    CSV_COLUMNS.map((k) => (Number.isInteger(s[k]) ? String(s[k]) : s[k].toFixed(3))).join(','),
  );
  return [CSV_COLUMNS.join(','), ...rows].join('\n') + '\n';
}

/** Round steps (1, 2, 5 × 10^k) giving about `target` ticks over [0, max]. */
function ticks(max: number, target: number): number[] {
  const span = max > 0 ? max : 1;
  const raw = span / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = 0; v <= span + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  // A run stopped a moment after its planned end should not add a whole empty step to the axis.
  if (out[out.length - 1] < span / 1.02) out.push(Number((out[out.length - 1] + step).toPrecision(12)));
  return out;
}

interface Series {
  label: string;
  colour: string;
  points: [number, number][];
  dashed?: boolean;
}

/** One panel: axes from 0, a grid, the series, a legend; coordinates in the chart's pixels. */
function panel(
  box: { left: number; top: number; width: number; height: number },
  title: string,
  yLabel: string,
  xMax: number,
  series: Series[],
): string {
  const yMaxData = Math.max(0, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const xs = ticks(xMax, 8);
  const ys = ticks(yMaxData * 1.05, 5);
  const x1 = xs[xs.length - 1];
  const y1 = ys[ys.length - 1];
  const px = (x: number) => box.left + (x / x1) * box.width;
  const py = (y: number) => box.top + box.height - (y / y1) * box.height;
  const n = (v: number) => v.toFixed(1);
  const out: string[] = [];
  out.push(
    `<text x="${n(box.left)}" y="${n(box.top - 12)}" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  );
  for (const y of ys) {
    out.push(
      `<line x1="${n(box.left)}" x2="${n(box.left + box.width)}" y1="${n(py(y))}" y2="${n(py(y))}" stroke="#e2e2e2"/>`,
      `<text x="${n(box.left - 8)}" y="${n(py(y) + 4)}" font-size="12" text-anchor="end">${y}</text>`,
    );
  }
  for (const x of xs) {
    out.push(
      `<line x1="${n(px(x))}" x2="${n(px(x))}" y1="${n(box.top)}" y2="${n(box.top + box.height)}" stroke="#f1f1f1"/>`,
      `<text x="${n(px(x))}" y="${n(box.top + box.height + 16)}" font-size="12" text-anchor="middle">${x}</text>`,
    );
  }
  out.push(
    `<rect x="${n(box.left)}" y="${n(box.top)}" width="${n(box.width)}" height="${n(box.height)}" fill="none" stroke="#444"/>`,
    `<text transform="translate(${n(box.left - 48)},${n(box.top + box.height / 2)}) rotate(-90)" font-size="13" text-anchor="middle">${escapeXml(yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    if (s.points.length > 0) {
      const d = s.points.map(([x, y]) => `${n(px(x))},${n(py(y))}`).join(' ');
      out.push(
        `<polyline points="${d}" fill="none" stroke="${s.colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      );
    }
    // Beside the panel's title, above the plot, where no line can run through it.
    const lx = box.left + 110 + i * 190;
    const ly = box.top - 12;
    out.push(
      `<line x1="${n(lx)}" x2="${n(lx + 24)}" y1="${n(ly - 4)}" y2="${n(ly - 4)}" stroke="${s.colour}" stroke-width="3"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${n(lx + 30)}" y="${n(ly)}" font-size="12">${escapeXml(s.label)}</text>`,
    );
  });
  return out.join('\n');
}

/** The chart as SVG: memory (MiB) over minutes above, frames/s per sampling window below. */
export function soakSvg(samples: readonly SoakSample[], title: string): string {
  const width = 960;
  const height = 680;
  const minutes = (s: SoakSample) => s.t / 60;
  const xMax = Math.max(...samples.map(minutes), 1 / 60);
  const memory: Series[] = [
    { label: 'RSS', colour: '#1f6fb4', points: samples.map((s) => [minutes(s), s.rssMiB]) },
    { label: 'V8 heap used', colour: '#ff7f0e', points: samples.map((s) => [minutes(s), s.heapUsedMiB]) },
    {
      label: 'external (buffers)',
      colour: '#2ca02c',
      points: samples.map((s) => [minutes(s), s.externalMiB]),
      dashed: true,
    },
  ];
  // Rates per window between consecutive samples, drawn at the window's end.
  const rate = (key: 'processed' | 'dropped' | 'decoded'): [number, number][] =>
    samples.slice(1).map((s, i) => {
      const prev = samples[i];
      const dt = s.t - prev.t;
      return [minutes(s), dt > 0 ? (s[key] - prev[key]) / dt : 0];
    });
  const frames: Series[] = [
    { label: 'processed frames/s', colour: '#1f6fb4', points: rate('processed') },
    { label: 'dropped frames/s', colour: '#d62728', points: rate('dropped'), dashed: true },
  ];
  const left = 80;
  const plotWidth = width - left - 30;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="'DejaVu Sans', Arial, sans-serif" fill="#222">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="28" font-size="17" font-weight="bold" text-anchor="middle">${escapeXml(title)}</text>`,
    panel({ left, top: 70, width: plotWidth, height: 250 }, 'Memory', 'MiB', xMax, memory),
    panel({ left, top: 390, width: plotWidth, height: 230 }, 'Frames', 'frames/s', xMax, frames),
    `<text x="${left + plotWidth / 2}" y="${height - 14}" font-size="13" text-anchor="middle">minutes</text>`,
    '</svg>',
  ].join('\n');
}

export async function writeSoakPng(
  file: string,
  samples: readonly SoakSample[],
  title: string,
): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await sharp(Buffer.from(soakSvg(samples, title), 'utf8'))
    .png()
    .toFile(file);
}

// ---------------------------------------------------------------------------------------------
// Command line

interface Options {
  minutes: number;
  rate: 'full' | 'live';
  sampleS: number;
  warmupS?: number;
  annotateEvery: number;
  cooldownS: number;
  detectEvery: number;
  png: string;
  json: boolean;
  wait: boolean;
}

const USAGE =
  'usage: node dist/bench/soak.js [--minutes 60] [--rate full|live] [--sample-s 10] [--warmup-s 60] ' +
  '[--annotate-every 2] [--cooldown-s 1] [--detect-every 1] [--png bench/soak-rss.png] [--json] [--no-wait]';

function parseArgs(argv: string[]): Options {
  const options: Options = {
    minutes: 60,
    rate: 'full',
    sampleS: 10,
    annotateEvery: 2,
    cooldownS: 1,
    detectEvery: 1,
    png: path.join(PROJECT_ROOT, 'bench', 'soak-rss.png'),
    json: false,
    wait: true,
  };
  const positive = (flag: string, value: string | undefined): number => {
    const n = Number(value);
    if (!(n > 0)) throw new Error(`${flag} needs a positive number, got ${value ?? 'nothing'}\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--minutes') options.minutes = positive(arg, argv[++i]);
    else if (arg === '--rate') {
      const r = argv[++i];
      if (r !== 'full' && r !== 'live') throw new Error(`--rate is full or live, got ${r}\n${USAGE}`);
      options.rate = r;
    } else if (arg === '--sample-s') options.sampleS = positive(arg, argv[++i]);
    else if (arg === '--warmup-s') {
      options.warmupS = Number(argv[++i]);
      if (!(options.warmupS >= 0)) throw new Error(`--warmup-s needs a number ≥ 0\n${USAGE}`);
    } else if (arg === '--annotate-every') {
      options.annotateEvery = Number(argv[++i]);
      if (!Number.isInteger(options.annotateEvery) || options.annotateEvery < 0)
        throw new Error(`--annotate-every needs a whole number ≥ 0 (0: no live view)\n${USAGE}`);
    } else if (arg === '--cooldown-s') {
      options.cooldownS = Number(argv[++i]);
      if (!(options.cooldownS >= 0)) throw new Error(`--cooldown-s needs a number ≥ 0\n${USAGE}`);
    } else if (arg === '--detect-every') options.detectEvery = positiveInt(arg, argv[++i], USAGE);
    else if (arg === '--png') options.png = path.resolve(argv[++i] ?? '');
    else if (arg === '--json') options.json = true;
    else if (arg === '--no-wait') options.wait = false;
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument '${arg}'\n${USAGE}`);
  }
  return options;
}

interface Report {
  machine: Record<string, string | number>;
  options: Omit<Options, 'json' | 'wait'> & { warmupS: number };
  quiet: Quiet;
  loadAtEnd: number;
  refMs: { before: number; after: number };
  clipFrames: number;
  loops: number;
  totals: {
    decoded: number;
    processed: number;
    dropped: number;
    events: number;
    recognized: number;
    encoded: number;
    processedFps: number;
    cpuMsPerFrame: number;
    cpuMsPerFrameRatio: number;
    nodeCores: number;
    ffmpegCores: number;
    viewerMiB: number;
  };
  verdict: SoakVerdict;
  problems: string[];
  csv: string;
  png: string;
}

function verdictLine(r: Report): string {
  const v = r.verdict;
  const t = r.totals;
  const growth = `${v.growthMiB >= 0 ? '+' : ''}${fmt(v.growthMiB)} MiB, ${v.growthShare >= 0 ? '+' : ''}${pct(v.growthShare)}`;
  return (
    `Verdict: RSS ${fmt(v.firstQuarterRssMiB)} → ${fmt(v.lastQuarterRssMiB)} MiB between the first and last ` +
    `quarters after warm-up (${growth}; ${v.plateau ? 'a plateau' : 'STILL GROWING'} by the ≤ ×1.3 + 40 MiB test; ` +
    `slope over the second half ${v.slopeMiBPerMin >= 0 ? '+' : ''}${v.slopeMiBPerMin.toFixed(2)} MiB/min); ` +
    `${t.processed} frames processed, ${t.dropped} dropped (${pct(t.dropped / Math.max(1, t.processed + t.dropped))}), ` +
    `${t.events} events (${t.recognized} for ${DEMO_PERSON} over ${r.loops} loops), ` +
    `${r.problems.length === 0 ? 'no problems' : `${r.problems.length} PROBLEMS`}`
  );
}

function markdown(r: Report): string {
  const m = r.machine;
  const t = r.totals;
  const lines = [
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.platform}; Node ${m.node}, onnxruntime-node ${m.onnxruntimeNode}`,
    `Pack: ${m.pack}; date: ${m.date}; 1-min load before ${r.quiet.load1.toFixed(2)} (waited ${r.quiet.waitedS} s` +
      `${r.quiet.quiet ? '' : ', machine NOT quiet'}), after ${r.loadAtEnd.toFixed(2)}`,
    `Run: ${r.options.minutes} min at rate ${r.options.rate}, detect every ${r.options.detectEvery}, live view every ` +
      `${r.options.annotateEvery || '—'} frame(s), cooldown ${r.options.cooldownS} s, samples every ${r.options.sampleS} s, ` +
      `warm-up ${r.options.warmupS} s; clip ${r.clipFrames} frames a loop`,
    `Baseline (${'10×1000 128-d dot products'}): ${fmt(r.refMs.before)} ms before, ${fmt(r.refMs.after)} ms after`,
    '',
    '| decoded | processed | dropped | processed fps | CPU ms/frame | × baseline | node cores | ffmpeg cores | events | JPEGs | RSS first ¼ MiB | last ¼ MiB |',
    '|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    `| ${t.decoded} | ${t.processed} | ${t.dropped} | ${fmt(t.processedFps)} | ${fmt(t.cpuMsPerFrame)} | ` +
      `${fmt(t.cpuMsPerFrameRatio)} | ${fmt(t.nodeCores)} | ${fmt(t.ffmpegCores)} | ${t.events} | ${t.encoded} | ` +
      `${fmt(r.verdict.firstQuarterRssMiB)} | ${fmt(r.verdict.lastQuarterRssMiB)} |`,
    '',
    `CSV: ${path.relative(process.cwd(), r.csv)}; chart: ${path.relative(process.cwd(), r.png)}`,
  ];
  for (const p of r.problems.slice(0, 20)) lines.push(`Problem: ${p}`);
  if (r.problems.length > 20) lines.push(`… and ${r.problems.length - 20} more problems`);
  lines.push(verdictLine(r));
  return lines.join('\n');
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const log = (s: string) => console.error(`[soak] ${s}`);
  const warmupS = options.warmupS ?? Math.min(60, (options.minutes * 60) / 10);
  const quiet = await waitForQuiet(options.wait, log, { others: `${OTHER_RUNS}|dist/bench/` });
  log(`1-min load ${quiet.load1.toFixed(2)}${quiet.quiet ? '' : ' (NOT quiet)'}; waited ${quiet.waitedS} s`);
  const setup = await openDemo(path.join(BENCH_OUT, 'demo'), log);
  try {
    const ref = makeReference();
    const before = median(referenceBlock(ref));
    const startedAt = new Date();
    log(
      `running ${options.minutes} min at rate ${options.rate} (clip: ${setup.clipFrames} frames a loop); ` +
        `a line every ${options.sampleS} s`,
    );
    const result = await runSoak(setup, {
      rate: options.rate,
      durationMs: options.minutes * 60_000,
      sampleEveryMs: options.sampleS * 1000,
      annotateEvery: options.annotateEvery,
      cooldownMs: options.cooldownS * 1000,
      detectEvery: options.detectEvery,
      onSample: (s) =>
        log(
          `${fmt(s.t)} s: ${s.processed} processed, ${s.dropped} dropped, ${s.events} events, ` +
            `RSS ${fmt(s.rssMiB)} MiB, heap ${fmt(s.heapUsedMiB)} MiB, external ${fmt(s.externalMiB)} MiB`,
        ),
    });
    const after = median(referenceBlock(ref));
    const last = result.samples[result.samples.length - 1];
    const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
    const csv = path.join(BENCH_OUT, `soak-${stamp}.csv`);
    await fs.mkdir(BENCH_OUT, { recursive: true });
    await fs.writeFile(csv, soakCsv(result.samples));
    const title =
      `faceflow soak: demo clip 1280×720, rate ${options.rate}, ${options.minutes} min, ` +
      `${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
    await writeSoakPng(options.png, result.samples, title);
    const m = machineInfo();
    const refMs = (before + after) / 2;
    const cpuMsPerFrame = (last.cpuS * 1000) / Math.max(1, last.processed);
    const report: Report = {
      machine: {
        ...m,
        onnxruntimeNode: packageVersion('onnxruntime-node'),
        pack: `default (${setup.flow.detector.id} + ${setup.flow.embedder.id}), threshold ${setup.threshold}`,
      },
      options: {
        minutes: options.minutes,
        rate: options.rate,
        sampleS: options.sampleS,
        warmupS,
        annotateEvery: options.annotateEvery,
        cooldownS: options.cooldownS,
        detectEvery: options.detectEvery,
        png: options.png,
      },
      quiet,
      loadAtEnd: os.loadavg()[0],
      refMs: { before, after },
      clipFrames: setup.clipFrames,
      loops: result.lastSeq < 0 ? 0 : Math.floor(result.lastSeq / setup.clipFrames) + 1,
      totals: {
        decoded: last.decoded,
        processed: last.processed,
        dropped: last.dropped,
        events: last.events,
        recognized: last.recognized,
        encoded: last.encoded,
        processedFps: last.processed / last.t,
        cpuMsPerFrame,
        cpuMsPerFrameRatio: cpuMsPerFrame / refMs,
        nodeCores: last.cpuS / last.t,
        ffmpegCores: last.ffmpegCpuS / last.t,
        viewerMiB: mib(result.viewerBytes),
      },
      verdict: rssVerdict(result.samples, warmupS),
      problems: result.problems,
      csv,
      png: options.png,
    };
    if (options.json) console.log(JSON.stringify({ ...report, samples: result.samples }, null, 2));
    else console.log(markdown(report));
  } finally {
    await setup.close();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 1;
  });
}
