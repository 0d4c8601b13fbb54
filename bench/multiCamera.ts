/**
 * Multi-camera scaling (issue 7): 1, 2, 4 and 8 cameras in one process, as a Node-RED deployment
 * with that many camera nodes runs them. Each camera is a `CameraSource` reading the demo's clip
 * (1280×720, made by `prepareDemo`) looped in real time (ffmpeg `-re`: 15 fps, as a camera
 * delivers), through its own `processLatest` + `recognizeFrames` + `faceEvents`; every camera
 * shares one `FaceFlow` (the models) and the demo's gallery, as the nodes share their config nodes.
 *
 *   node dist/bench/multiCamera.js [--cameras 1,2,4,8] [--seconds 30] [--warmup-s 5]
 *        [--detect-every 1,2] [--threads N] [--scene people|empty] [--no-skip-still] [--no-detector-picture]
 *        [--json] [--no-wait]
 *
 * `--scene empty` gives every camera an empty room instead of the demo clip: the clip's first frame
 * blurred until no face is left in it, with sensor-like noise on every frame, H.264 at 720p, 15 fps and
 * 2 Mbit/s (what a camera in a room nobody is in sends). `--no-skip-still` detects on its still frames too.
 * `--no-detector-picture`: the detector shrinks each full frame itself instead of taking ffmpeg's picture of
 * it (the camera node's detector size 0).
 *
 * Per row (cameras × detect-every), measured over `--seconds` after `--warmup-s` of running:
 * frames/s each camera delivered to node (processed + dropped: below 15 when the decoders, or
 * node reading their pipes, fell behind), processed frames/s per camera (mean and the slowest), the
 * detector's runs per second and camera (below the processed rate where still frames were skipped),
 * the share dropped by processLatest, latency p50/p95 from `frame.ts` (when node received the
 * decoded frame) to its recognised FaceFrame, CPU of node and of the ffmpeg decoders (100 % = one
 * core), peak RSS, and the share of the cores other processes used. A plain-JS reference block
 * runs before every row; the latency p95 is also given as a ratio to it. The summary says up to
 * how many cameras every one still got ≥ 5 frames/s processed, and up to how many the full 15
 * (≥ 95 % of 15 frames/s processed and ≤ 2 % dropped). Prints figures; asserts nothing.
 */

import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { of, tap, type Subscription } from 'rxjs';
import { DEMO_PERSON, VIDEO_FPS } from '../src/demo/sampleMedia';
import { CameraSource } from '../src/io/cameraSource';
import { ffmpegPath } from '../src/io/ffmpeg';
import { faceEvents } from '../src/pipeline/events';
import { recognizeFrames } from '../src/pipeline/live';
import type { FaceFrame } from '../src/types';
import {
  BENCH_OUT,
  BUSY_WARNING,
  childPids,
  cpuMark,
  dist,
  fmt,
  machineInfo,
  makeReference,
  median,
  OTHER_RUNS,
  packageVersion,
  pct,
  positiveInt,
  positiveInts,
  referenceBlock,
  rssWatch,
  sleep,
  usage,
  waitForQuiet,
  type Dist,
  type Quiet,
} from './common';
import { openDemo, type DemoSetup } from './soak';

const USAGE =
  'usage: node dist/bench/multiCamera.js [--cameras 1,2,4,8] [--seconds 30] [--warmup-s 5] ' +
  '[--detect-every 1,2] [--threads N] [--scene people|empty] [--no-skip-still] [--no-detector-picture] ' +
  '[--json] [--no-wait]';

/** The two bars of the summary: a usable rate per camera, and every frame of a 15 fps camera. */
const USABLE_FPS = 5;
const FULL_SHARE = 0.95;
const FULL_MAX_DROPS = 0.02;

interface Options {
  cameras: number[];
  seconds: number;
  warmupS: number;
  detectEvery: number[];
  /** ONNX Runtime threads per model (default: each model's own default, as the nodes and the CLI open them). */
  threads?: number;
  scene: 'people' | 'empty';
  /** Skip the detector on still frames of an empty scene (recognizeFrames' default). */
  skipStill: boolean;
  /** Cameras deliver ffmpeg's picture for the detector (the camera node's default). */
  detectorPicture: boolean;
  json: boolean;
  wait: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    cameras: [1, 2, 4, 8],
    seconds: 30,
    warmupS: 5,
    detectEvery: [1, 2],
    threads: undefined,
    scene: 'people',
    skipStill: true,
    detectorPicture: true,
    json: false,
    wait: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--cameras') options.cameras = positiveInts(arg, argv[++i], USAGE);
    else if (arg === '--seconds') options.seconds = positiveInt(arg, argv[++i], USAGE);
    else if (arg === '--warmup-s') {
      options.warmupS = Number(argv[++i]);
      if (!(options.warmupS >= 0)) throw new Error(`--warmup-s needs a number ≥ 0\n${USAGE}`);
    } else if (arg === '--detect-every') options.detectEvery = positiveInts(arg, argv[++i], USAGE);
    else if (arg === '--threads') options.threads = positiveInt(arg, argv[++i], USAGE);
    else if (arg === '--scene') {
      const scene = argv[++i];
      if (scene !== 'people' && scene !== 'empty') throw new Error(`--scene is people or empty\n${USAGE}`);
      options.scene = scene;
    } else if (arg === '--no-skip-still') options.skipStill = false;
    else if (arg === '--no-detector-picture') options.detectorPicture = false;
    else if (arg === '--json') options.json = true;
    else if (arg === '--no-wait') options.wait = false;
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument '${arg}'\n${USAGE}`);
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// One row: N cameras for a while

interface Camera {
  id: string;
  source: CameraSource;
  processed: number;
  dropped: number;
  latencies: number[];
  prevSeq: number;
  recognized: number;
  unknown: number;
}

interface CameraFigures {
  id: string;
  deliveredFps: number;
  processedFps: number;
  dropShare: number;
  recognized: number;
}

interface Row {
  detectEvery: number;
  cameras: number;
  seconds: number;
  perCamera: CameraFigures[];
  deliveredFpsMean: number;
  /** Detector runs per second and camera. */
  detectionsPerS: number;
  /** Faces embedded per second per camera: what the track-level policy asks for. */
  embedsPerS: number;
  fpsMean: number;
  fpsMin: number;
  dropShare: number;
  latency: Dist;
  latencyMax: number;
  /** 100 = one core. */
  nodeCpuPct: number;
  ffmpegCpuPct: number;
  rssPeakMiB: number;
  /** Cameras on which the demo person was announced (warm-up included). */
  recognizedOn: number;
  unknownEvents: number;
  othersBusy?: number;
  refMs: number;
  usable: boolean;
  full: boolean;
  problems: string[];
}

async function runRow(
  setup: DemoSetup,
  video: string,
  ref: () => void,
  n: number,
  detectEvery: number,
  options: Options,
): Promise<Row> {
  const refMs = median(referenceBlock(ref));
  const problems: string[] = [];
  const cameras: Camera[] = Array.from({ length: n }, (_, i) => {
    const id = `cam-${i + 1}`;
    return {
      id,
      source: new CameraSource(
        { kind: 'file', path: video, loop: true, realtime: true },
        { cameraId: id, detectorInput: options.detectorPicture ? setup.flow.detector.inputBox : undefined },
      ),
      processed: 0,
      dropped: 0,
      latencies: [],
      prevSeq: -1,
      recognized: 0,
      unknown: 0,
    };
  });
  let measuring = false;
  const subscriptions: Subscription[] = cameras.map((cam) => {
    cam.source.events$.subscribe((e) => {
      if (e.type === 'down' || e.type === 'stalled') problems.push(`${cam.id}: ${e.type}`);
    });
    // Each camera its own chain, as each camera node has its own detect/track/match nodes.
    const op = recognizeFrames(setup.flow, setup.gallery.gallery, {
      threshold: setup.threshold,
      detectEvery,
      stillScenes: options.skipStill ? undefined : false,
    });
    return cam.source
      .processLatest((frame) => of(frame).pipe(op))
      .pipe(
        tap((out: FaceFrame) => {
          if (measuring) {
            cam.processed++;
            cam.latencies.push(Date.now() - out.frame.ts);
            // A gap in seq is what processLatest skipped: counted here so that it fits the window.
            if (cam.prevSeq >= 0) cam.dropped += out.frame.seq - cam.prevSeq - 1;
          }
          cam.prevSeq = out.frame.seq;
        }),
        // The demo's cooldown: one announcement per arrival.
        faceEvents({ cooldownMs: 30_000 }),
      )
      .subscribe({
        // Counted from the start: with the demo's cooldown a camera announces the person on its
        // first pass, which may fall in the warm-up, and not again within a short window.
        next: (e) => {
          if (e.name === DEMO_PERSON) cam.recognized++;
          else if (e.type === 'unknown') cam.unknown++;
        },
        error: (err: unknown) =>
          problems.push(`${cam.id}: ${err instanceof Error ? err.message : String(err)}`),
      });
  });

  await sleep(options.warmupS * 1000);
  measuring = true;
  const rss = rssWatch(250);
  const before = cpuMark(true);
  const detections0 = detections;
  const embeds0 = embeds;
  await sleep(options.seconds * 1000);
  const after = cpuMark(true);
  const detectionsMade = detections - detections0;
  const embedsMade = embeds - embeds0;
  measuring = false;
  const rssPeakMiB = rss.stop();
  for (const s of subscriptions) s.unsubscribe();
  // Let every decoder exit before the next row, so that none of them costs that row anything.
  for (let i = 0; i < 200 && childPids().length > 0; i++) await sleep(50);

  const used = usage(before, after);
  const perCamera = cameras.map((c) => ({
    id: c.id,
    deliveredFps: (c.processed + c.dropped) / used.wallS,
    processedFps: c.processed / used.wallS,
    dropShare: c.dropped / Math.max(1, c.processed + c.dropped),
    recognized: c.recognized,
  }));
  const latencies = cameras.flatMap((c) => c.latencies);
  const fps = perCamera.map((c) => c.processedFps);
  const fpsMin = Math.min(...fps);
  const processed = cameras.reduce((a, c) => a + c.processed, 0);
  const dropped = cameras.reduce((a, c) => a + c.dropped, 0);
  return {
    detectEvery,
    cameras: n,
    seconds: used.wallS,
    perCamera,
    deliveredFpsMean: perCamera.reduce((a, c) => a + c.deliveredFps, 0) / n,
    detectionsPerS: detectionsMade / used.wallS / n,
    embedsPerS: embedsMade / used.wallS / n,
    fpsMean: fps.reduce((a, b) => a + b, 0) / n,
    fpsMin,
    dropShare: dropped / Math.max(1, processed + dropped),
    latency: dist(latencies),
    latencyMax: latencies.length > 0 ? Math.max(...latencies) : NaN,
    nodeCpuPct: (100 * used.cpuS) / used.wallS,
    ffmpegCpuPct: (100 * used.childCpuS) / used.wallS,
    rssPeakMiB,
    recognizedOn: cameras.filter((c) => c.recognized > 0).length,
    unknownEvents: cameras.reduce((a, c) => a + c.unknown, 0),
    othersBusy: used.othersBusy,
    refMs,
    usable: fpsMin >= USABLE_FPS,
    full: perCamera.every((c) => c.processedFps >= FULL_SHARE * VIDEO_FPS && c.dropShare <= FULL_MAX_DROPS),
    problems,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

interface Sustained {
  detectEvery: number;
  /** Most cameras whose row met the bar, and whether every row with fewer cameras met it too. */
  usable: { cameras: number; monotonic: boolean };
  full: { cameras: number; monotonic: boolean };
}

function sustained(rows: Row[]): Sustained[] {
  const everies = [...new Set(rows.map((r) => r.detectEvery))];
  return everies.map((detectEvery) => {
    const mine = rows.filter((r) => r.detectEvery === detectEvery).sort((a, b) => a.cameras - b.cameras);
    const most = (ok: (r: Row) => boolean) => {
      const passing = mine.filter(ok);
      const cameras = passing.length > 0 ? passing[passing.length - 1].cameras : 0;
      return { cameras, monotonic: mine.filter((r) => r.cameras <= cameras).every(ok) };
    };
    return { detectEvery, usable: most((r) => r.usable), full: most((r) => r.full) };
  });
}

interface Result {
  machine: Record<string, string | number>;
  quiet: Quiet;
  loadAtEnd: number;
  refMs: number;
  rows: Row[];
  sustained: Sustained[];
  notes: string[];
}

function markdown(r: Result): string {
  const m = r.machine;
  const lines = [
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.platform}; Node ${m.node}, onnxruntime-node ${m.onnxruntimeNode}`,
    `Pack: ${m.pack}; clip: ${m.clip}`,
    `Date: ${m.date}; 1-min load before ${r.quiet.load1.toFixed(2)} (waited ${r.quiet.waitedS} s` +
      `${r.quiet.quiet ? '' : ', machine NOT quiet'}), after ${r.loadAtEnd.toFixed(2)}`,
    `Baseline (10×1000 128-d dot products, plain JS): ${fmt(r.refMs)} ms median over all blocks`,
    '',
    '| detect every | cameras | delivered fps/camera | processed fps/camera mean | min | detections/s/camera | faces embedded/s/camera | dropped | latency p50 ms | p95 ms | max ms | p95 × baseline | node CPU | ffmpeg CPU | RSS peak MiB | Sam announced on | others’ CPU |',
    '|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const x of r.rows) {
    lines.push(
      `| ${x.detectEvery} | ${x.cameras} | ${fmt(x.deliveredFpsMean)} | ${fmt(x.fpsMean)} | ${fmt(x.fpsMin)} | ` +
        `${fmt(x.detectionsPerS)} | ${fmt(x.embedsPerS)} | ` +
        `${(100 * x.dropShare).toFixed(1)} % | ${fmt(x.latency.p50)} | ${fmt(x.latency.p95)} | ${fmt(x.latencyMax)} | ` +
        `${fmt(x.latency.p95 / x.refMs)} | ${Math.round(x.nodeCpuPct)} % | ${Math.round(x.ffmpegCpuPct)} % | ` +
        `${fmt(x.rssPeakMiB)} | ${x.recognizedOn}/${x.cameras} | ${pct(x.othersBusy)} |`,
    );
  }
  lines.push(
    '',
    'CPU: 100 % = one core. Latency: from node receiving a decoded frame to its recognised FaceFrame.',
  );
  for (const s of r.sustained) {
    const say = (x: { cameras: number; monotonic: boolean }) =>
      x.cameras === 0
        ? 'not even 1 camera'
        : `up to ${x.cameras}${x.monotonic ? '' : ' (but not every smaller row)'}`;
    lines.push(
      `Detect every ${s.detectEvery}: ≥ ${USABLE_FPS} frames/s processed on every camera with ${say(s.usable)}; ` +
        `the full ${VIDEO_FPS} fps (≥ ${FULL_SHARE * 100} %, ≤ ${FULL_MAX_DROPS * 100} % dropped) with ${say(s.full)}.`,
    );
  }
  for (const n of r.notes) lines.push(n);
  return lines.join('\n');
}

/** Detector runs in this process (counted by a wrapper `main` puts around the flow's `detect`). */
let detections = 0;
/** Faces embedded in this process (counted by a wrapper around the flow's `embedFaces`). */
let embeds = 0;

/** The empty room of `--scene empty`, made once from the demo clip (see the header). */
async function emptyRoom(demoVideo: string, log: (s: string) => void): Promise<string> {
  const file = path.join(BENCH_OUT, 'empty-room-720p.mp4');
  try {
    await fs.access(file);
    return file;
  } catch {
    log(`making ${file}`);
  }
  const partial = `${file}.partial.mp4`;
  await promisify(execFile)(ffmpegPath(), [
    '-y',
    '-v',
    'error',
    '-i',
    demoVideo,
    '-filter_complex',
    `[0:v]trim=end_frame=1,boxblur=40:3,loop=loop=${20 * VIDEO_FPS - 1}:size=1:start=0,` +
      `setpts=N/${VIDEO_FPS}/TB,noise=alls=8:allf=t,format=yuv420p[v]`,
    '-map',
    '[v]',
    '-r',
    String(VIDEO_FPS),
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    // A camera's bitrate: its encoder smooths most of the sensor noise away, as here.
    '-b:v',
    '2M',
    '-maxrate',
    '2M',
    '-bufsize',
    '2M',
    partial,
  ]);
  await fs.rename(partial, file);
  return file;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const log = (s: string) => console.error(`[multiCamera] ${s}`);
  const quiet = await waitForQuiet(options.wait, log, { others: `${OTHER_RUNS}|dist/bench/` });
  log(`1-min load ${quiet.load1.toFixed(2)}${quiet.quiet ? '' : ' (NOT quiet)'}; waited ${quiet.waitedS} s`);
  await fs.mkdir(BENCH_OUT, { recursive: true });
  const setup = await openDemo(path.join(BENCH_OUT, 'demo'), log, options.threads);
  try {
    const video = options.scene === 'empty' ? await emptyRoom(setup.files.video, log) : setup.files.video;
    const detect = setup.flow.detect.bind(setup.flow);
    setup.flow.detect = (...args: Parameters<typeof detect>) => {
      detections++;
      return detect(...args);
    };
    const embedFaces = setup.flow.embedFaces.bind(setup.flow);
    setup.flow.embedFaces = (frame, faces) => {
      embeds += faces.length;
      return embedFaces(frame, faces);
    };
    const ref = makeReference();
    const refSamples: number[] = [];
    const rows: Row[] = [];
    // ONNX Runtime's first runs allocate and plan: one short single-camera row, not reported.
    log('warming up');
    await runRow(setup, video, ref, 1, 1, { ...options, seconds: 2, warmupS: 1 });
    for (const detectEvery of options.detectEvery) {
      for (const n of options.cameras) {
        log(`${n} camera(s), detect every ${detectEvery}: ${options.warmupS} + ${options.seconds} s`);
        const row = await runRow(setup, video, ref, n, detectEvery, options);
        refSamples.push(row.refMs);
        rows.push(row);
      }
    }
    const notes: string[] = [];
    const busy = rows.filter((r) => (r.othersBusy ?? 0) > BUSY_WARNING);
    if (busy.length > 0) {
      notes.push(
        `WARNING: other processes used more than ${BUSY_WARNING * 100} % of the cores during ${busy.length} ` +
          'row(s); their figures are worse than this machine can do.',
      );
    }
    for (const r of rows) for (const p of r.problems) notes.push(`Problem (${r.cameras} cameras): ${p}`);
    const m = machineInfo();
    const result: Result = {
      machine: {
        ...m,
        onnxruntimeNode: packageVersion('onnxruntime-node'),
        pack: `default (${setup.flow.detector.id} + ${setup.flow.embedder.id}), threshold ${setup.threshold}, ${options.threads === undefined ? "each model's default threads" : `${options.threads} thread(s) per model`}, ${options.detectorPicture ? "ffmpeg's detector picture" : 'the detector shrinks each frame itself'}`,
        clip:
          options.scene === 'empty'
            ? `an empty room (the demo clip's first frame blurred, with noise), 1280×720 @ ${VIDEO_FPS} fps, ` +
              `looped, read with -re; still frames ${options.skipStill ? 'skipped' : 'detected'}`
            : `the demo's, 1280×720 @ ${VIDEO_FPS} fps, ${setup.clipFrames} frames, looped, read with -re` +
              (options.skipStill ? '' : '; still frames detected'),
      },
      quiet,
      loadAtEnd: os.loadavg()[0],
      refMs: median(refSamples),
      rows,
      sustained: sustained(rows),
      notes,
    };
    if (options.json) console.log(JSON.stringify(result, null, 2));
    else console.log(markdown(result));
  } finally {
    await setup.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
