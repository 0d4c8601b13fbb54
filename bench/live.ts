/**
 * The live recognition chain on real video (issue 5): `recognizeFrames` + `faceEvents` on the
 * hamilton clip (640×360, 29.97 fps) and on a 1280×720 15 fps copy of it, detection on every frame
 * and on every 2nd, with the default model pack.
 *
 *   node dist/bench/live.js [--json] [--no-wait] [--no-peer]
 *
 * Live: the file read at its native rate (ffmpeg -re) through `CameraSource.processLatest`, as a
 * camera would be: latency from a frame's emission by the decoder (`frame.ts`) to its recognised
 * FaceFrame, and how many frames were processed and dropped.
 * Throughput: the same frames decoded into memory first, then pushed through the chain as fast as
 * it takes them: frames/s, ms per frame, CPU per frame, RSS.
 * Peer: @vladmandic/human (wasm) on those same decoded frames in the same process, last, so its
 * wasm heap cannot inflate faceflow's RSS figures.
 *
 * As in bench/stages.ts, a plain-JS reference workload runs before every row, and per-frame
 * figures are also given as a ratio to it, so that runs on different machines compare. It waits
 * for a quiet machine first (1-minute load ≤ 1.2, no tests or other benches running) unless told
 * `--no-wait`. Prints figures, asserts nothing; without ../shared/data it says so and exits 0.
 */

import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { from, lastValueFrom, of, take, tap, toArray } from 'rxjs';
import { FaceFlow } from '../src/faceflow';
import { MemoryGallery } from '../src/gallery/memoryGallery';
import { decodeImage } from '../src/image/decode';
import { CameraSource, fileFrames } from '../src/io/cameraSource';
import { ffmpegPath } from '../src/io/ffmpeg';
import { faceEvents } from '../src/pipeline/events';
import { recognizeFrames } from '../src/pipeline/live';
import { UNKNOWN, type FaceEvent, type FaceFrame, type Frame } from '../src/types';
import {
  cpuMark as mark,
  dist,
  fmt,
  machineInfo,
  makeReference,
  packageVersion,
  pct,
  positiveInt,
  referenceBlock,
  referenceSink,
  rssWatch,
  SHARED_DATA,
  usage,
  waitForQuiet,
  type Dist,
  type Quiet,
} from './common';
import { decodeAll, HAMILTON, HD, heldBytes, make720p, replay } from './clips';
import { humanPeerMissing, openHumanPeer, type HumanPeer } from './humanPeer';

const USAGE = 'usage: node dist/bench/live.js [--json] [--no-wait] [--no-peer] [--pack NAME] [--threads N]';

const FILES = HAMILTON;
const PERSON = HAMILTON.person;
const HAMILTON_FPS = HAMILTON.fps;

/** Issue 5's goals. */
const GOAL = { fps: 15, p95Ms: 150, peerRatio: 10 };

const PEER_WARMUP_FRAMES = 5;
const WARMUP_FRAMES = 10;

interface Options {
  json: boolean;
  wait: boolean;
  peer: boolean;
  /** The model pack (default: the default pack). */
  pack?: string;
  /** ONNX Runtime threads per model (default: each model's own default, as the nodes and the CLI open them). */
  threads?: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { json: false, wait: true, peer: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') options.json = true;
    else if (arg === '--pack' && argv[i + 1]) options.pack = argv[++i];
    else if (arg === '--no-wait') options.wait = false;
    else if (arg === '--no-peer') options.peer = false;
    else if (arg === '--threads') options.threads = positiveInt(arg, argv[++i], USAGE);
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument '${arg}'\n${USAGE}`);
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// Data

// ---------------------------------------------------------------------------------------------
// Rows

interface Clip {
  name: string;
  file: string;
  cameraId: string;
  fps: number;
  size: string;
}

interface Work {
  detections: number;
  embeddings: number;
}

/** Counts the chain's model calls; the counters are read around each row. */
function instrument(flow: FaceFlow): Work {
  const work: Work = { detections: 0, embeddings: 0 };
  const detect = flow.detect.bind(flow);
  const embedFaces = flow.embedFaces.bind(flow);
  flow.detect = (frame, options) => {
    work.detections++;
    return detect(frame, options);
  };
  flow.embedFaces = (frame, faces) => {
    work.embeddings += faces.length;
    return embedFaces(frame, faces);
  };
  return work;
}

interface EventCount {
  recognized: number;
  recognizedAs: string[];
  unknown: number;
}

function countEvents(): { count: EventCount; tap: (e: FaceEvent) => void } {
  const count: EventCount = { recognized: 0, recognizedAs: [], unknown: 0 };
  return {
    count,
    tap: (e) => {
      if (e.type === 'unknown' || e.name === UNKNOWN) count.unknown++;
      else {
        count.recognized++;
        if (!count.recognizedAs.includes(e.name)) count.recognizedAs.push(e.name);
      }
    },
  };
}

interface ThroughputRow {
  kind: 'faceflow' | 'human';
  clip: string;
  size: string;
  frames: number;
  /** faceflow: detect every Nth frame; human: 'no cache' or 'cache 0.7'. */
  mode: string;
  fps: number;
  ms: Dist;
  cpuMsPerFrame: number;
  coresUsed: number;
  rssPeakMiB: number;
  facesPerFrame: number;
  detectionsPerFrame?: number;
  embeddingsPerFrame: number;
  events?: EventCount;
  othersBusy?: number;
  refMs: number;
}

interface LiveRow {
  clip: string;
  size: string;
  sourceFps: number;
  detectEvery: number;
  decoded: number;
  processed: number;
  dropped: number;
  processedFps: number;
  latency: Dist;
  latencyMax: number;
  /** This process plus its ffmpeg decoder, in cores. */
  coresUsed: number;
  ffmpegCores: number;
  rssPeakMiB: number;
  facesPerFrame: number;
  events: EventCount;
  othersBusy?: number;
  refMs: number;
}

interface Context {
  flow: FaceFlow;
  gallery: MemoryGallery;
  threshold: number;
  work: Work;
  ref: () => void;
  refSamples: number[];
}

/** A reference block before a row: its median is the row's own baseline. */
function baseline(ctx: Context): number {
  const ms = referenceBlock(ctx.ref);
  ctx.refSamples.push(...ms);
  return dist(ms).p50;
}

async function liveRow(ctx: Context, clip: Clip, detectEvery: number): Promise<LiveRow> {
  const refMs = baseline(ctx);
  const source = new CameraSource(
    { kind: 'file', path: clip.file, realtime: true },
    { cameraId: clip.cameraId, detectorInput: ctx.flow.detector.inputBox },
  );
  let decoded = 0;
  let dropped = 0;
  source.events$.subscribe((e) => {
    if (e.type === 'end') decoded = e.frames;
    else if (e.type === 'dropped') dropped = e.total;
  });
  // One operator, reused for every frame, so the tracker and per-camera state carry across.
  const op = recognizeFrames(ctx.flow, ctx.gallery, { threshold: ctx.threshold, detectEvery });
  const latencies: number[] = [];
  let faces = 0;
  const events = countEvents();
  const rss = rssWatch();
  const before = mark();
  let first = 0;
  let last = 0;
  await lastValueFrom(
    source
      .processLatest((frame) => of(frame).pipe(op))
      .pipe(
        tap((out: FaceFrame) => {
          const now = Date.now();
          latencies.push(now - out.frame.ts);
          first ||= now;
          last = now;
          faces += out.faces.length;
          rss.note();
        }),
        faceEvents(),
        tap(events.tap),
      ),
    { defaultValue: undefined },
  );
  const used = usage(before, mark());
  const processed = latencies.length;
  const lat = dist(latencies);
  return {
    clip: clip.name,
    size: clip.size,
    sourceFps: clip.fps,
    detectEvery,
    decoded,
    processed,
    dropped,
    processedFps: processed > 1 ? ((processed - 1) * 1000) / (last - first) : NaN,
    latency: lat,
    latencyMax: Math.max(...latencies),
    coresUsed: (used.cpuS + used.childCpuS) / used.wallS,
    ffmpegCores: used.childCpuS / used.wallS,
    rssPeakMiB: rss.stop(),
    facesPerFrame: faces / Math.max(1, processed),
    events: events.count,
    othersBusy: used.othersBusy,
    refMs,
  };
}

async function throughputRow(
  ctx: Context,
  clip: Clip,
  frames: Frame[],
  detectEvery: number,
): Promise<ThroughputRow> {
  const refMs = baseline(ctx);
  const op = recognizeFrames(ctx.flow, ctx.gallery, { threshold: ctx.threshold, detectEvery });
  const perFrame: number[] = [];
  let faces = 0;
  const events = countEvents();
  const work0 = { ...ctx.work };
  const rss = rssWatch();
  const before = mark();
  let previous = before.wall;
  await lastValueFrom(
    from(frames).pipe(
      op,
      // concatMap runs one frame at a time, so the gap between two outputs is one frame's work.
      tap((out: FaceFrame) => {
        const now = performance.now();
        perFrame.push(now - previous);
        previous = now;
        faces += out.faces.length;
        rss.note();
      }),
      faceEvents(),
      tap(events.tap),
    ),
    { defaultValue: undefined },
  );
  const used = usage(before, mark());
  const n = frames.length;
  return {
    kind: 'faceflow',
    clip: clip.name,
    size: clip.size,
    frames: n,
    mode: `every ${detectEvery === 1 ? '' : `${detectEvery}nd `}frame`,
    fps: n / used.wallS,
    ms: dist(perFrame),
    cpuMsPerFrame: (used.cpuS * 1000) / n,
    coresUsed: used.cpuS / used.wallS,
    rssPeakMiB: rss.stop(),
    facesPerFrame: faces / n,
    detectionsPerFrame: (ctx.work.detections - work0.detections) / n,
    embeddingsPerFrame: (ctx.work.embeddings - work0.embeddings) / n,
    events: events.count,
    othersBusy: used.othersBusy,
    refMs,
  };
}

async function peerRow(
  ctx: Context,
  peer: HumanPeer,
  clip: Clip,
  frames: Frame[],
  cache: boolean,
): Promise<ThroughputRow> {
  // First calls of a tfjs model compile its kernels: keep them out of the figures.
  for (const f of frames.slice(0, PEER_WARMUP_FRAMES)) await peer.analyse(f, false);
  const refMs = baseline(ctx);
  const perFrame: number[] = [];
  let faces = 0;
  let descriptors = 0;
  const rss = rssWatch();
  const before = mark();
  for (const f of frames) {
    const t0 = performance.now();
    const r = await peer.analyse(f, cache);
    perFrame.push(performance.now() - t0);
    faces += r.faces;
    descriptors += r.descriptors;
    rss.note();
  }
  const used = usage(before, mark());
  const n = frames.length;
  return {
    kind: 'human',
    clip: clip.name,
    size: clip.size,
    frames: n,
    mode: cache ? "human's frame cache on (0.7)" : 'every frame, cache off',
    fps: n / used.wallS,
    ms: dist(perFrame),
    cpuMsPerFrame: (used.cpuS * 1000) / n,
    coresUsed: used.cpuS / used.wallS,
    rssPeakMiB: rss.stop(),
    facesPerFrame: faces / n,
    embeddingsPerFrame: descriptors / n,
    othersBusy: used.othersBusy,
    refMs,
  };
}

// ---------------------------------------------------------------------------------------------
// Run

interface Result {
  machine: Record<string, string | number>;
  quiet: Quiet;
  loadAtEnd: number;
  refMs: number;
  live: LiveRow[];
  throughput: ThroughputRow[];
  peer: { version?: string; execution?: string; missing?: string };
  notes: string[];
}

async function run(options: Options, log: (s: string) => void): Promise<Result> {
  // The default gate: no test and no gallery bench running, 1-minute load ≤ 1.2, up to 20 minutes.
  const quiet = await waitForQuiet(options.wait, log);
  log(`1-min load ${quiet.load1.toFixed(2)}${quiet.quiet ? '' : ' (NOT quiet)'}; waited ${quiet.waitedS} s`);
  const notes: string[] = [];
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-live-'));
  try {
    log('making the 720p 15 fps file');
    const hd = await make720p(tmp);
    const clips: Clip[] = [
      { name: 'hamilton', file: FILES.clip, cameraId: 'hamilton', fps: HAMILTON_FPS, size: '640×360' },
      { name: 'hamilton 720p', file: hd, cameraId: 'hamilton-720p', fps: HD.fps, size: '1280×720' },
    ];

    log(`opening the ${options.pack ?? 'default'} pack and enrolling`);
    const flow = await FaceFlow.open({ threads: options.threads, pack: options.pack });
    const work = instrument(flow);
    const gallery = new MemoryGallery(flow.embedder.id);
    const portrait = await flow.singleFace(await decodeImage(FILES.portrait), PERSON);
    gallery.add(PERSON, portrait.embedding as Float32Array);
    const ctx: Context = {
      flow,
      gallery,
      threshold: flow.threshold,
      work,
      ref: makeReference(),
      refSamples: [],
    };

    // ONNX Runtime's first runs allocate and plan: keep them out of every row.
    for (const clip of clips) {
      const head = await lastValueFrom(
        fileFrames(clip.file, { cameraId: `${clip.cameraId}-warmup` }).pipe(take(WARMUP_FRAMES), toArray()),
      );
      await lastValueFrom(
        from(head).pipe(recognizeFrames(flow, gallery, { threshold: ctx.threshold }), toArray()),
      );
    }

    // Live rows first, while no decoded clip sits in memory, so their RSS is a live process's.
    const live: LiveRow[] = [];
    for (const clip of clips) {
      for (const every of [1, 2]) {
        log(`live: ${clip.name}, detect every ${every}`);
        live.push(await liveRow(ctx, clip, every));
      }
    }

    const decoded = new Map<string, Frame[]>();
    for (const clip of clips) {
      log(`decoding ${clip.name} into memory`);
      decoded.set(clip.name, await decodeAll(clip.file, clip.cameraId, clip.fps));
    }
    const heldMiB = heldBytes([...decoded.values()].flat()) / 2 ** 20;
    notes.push(
      `The decoded frames (${Math.round(heldMiB)} MiB of I420 planes, RGB added once the peer reads it) stay in ` +
        "memory for the throughput and peer rows and are part of those rows' RSS; the live rows ran before " +
        'they were decoded. Each throughput row gets the frames as a camera delivers them (I420).',
    );
    const throughput: ThroughputRow[] = [];
    for (const clip of clips) {
      for (const every of [1, 2]) {
        log(`throughput: ${clip.name}, detect every ${every}`);
        throughput.push(await throughputRow(ctx, clip, replay(decoded.get(clip.name) as Frame[]), every));
      }
    }
    await flow.dispose();

    const peerInfo: Result['peer'] = {};
    if (!options.peer) peerInfo.missing = 'not run (--no-peer)';
    else peerInfo.missing = humanPeerMissing();
    if (peerInfo.missing === undefined) {
      try {
        log('opening @vladmandic/human (wasm)');
        const peer = await openHumanPeer();
        peerInfo.version = peer.version;
        peerInfo.execution = peer.execution;
        for (const clip of clips) {
          // The peer is handed RGB, as it takes it; converting it is not counted in its figures.
          for (const f of decoded.get(clip.name) as Frame[]) void f.rgb;
          for (const cache of [false, true]) {
            log(`peer: ${clip.name}, cache ${cache ? 'on' : 'off'}`);
            throughput.push(await peerRow(ctx, peer, clip, decoded.get(clip.name) as Frame[], cache));
          }
        }
      } catch (err) {
        peerInfo.missing = `human failed: ${(err as Error).stack ?? String(err)}`;
      }
    }

    const busy = [...live, ...throughput].filter((r) => (r.othersBusy ?? 0) > 0.1);
    if (busy.length > 0) {
      notes.push(
        `WARNING: other processes used more than 10 % of the cores during ${busy.length} row(s); ` +
          'their figures are inflated.',
      );
    }
    if (!Number.isFinite(referenceSink())) notes.push('reference sink is not finite');
    const m = machineInfo();
    return {
      machine: {
        cpu: m.cpu,
        cores: m.cores,
        platform: m.platform,
        node: m.node,
        onnxruntimeNode: packageVersion('onnxruntime-node'),
        tfjsBackendWasm: packageVersion('@tensorflow/tfjs-backend-wasm'),
        ffmpeg: ffmpegPath(),
        pack:
          `${options.pack ?? 'default'} (${flow.detector.id} + ${flow.embedder.id}), threshold ${ctx.threshold}, ` +
          (options.threads === undefined
            ? "each model's default threads"
            : `${options.threads} thread(s) per model`),
        date: m.date,
      },
      quiet,
      loadAtEnd: os.loadavg()[0],
      refMs: dist(ctx.refSamples).p50,
      live,
      throughput,
      peer: peerInfo,
      notes,
    };
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Output

function eventsText(e: EventCount | undefined): string {
  if (!e) return '';
  const names = e.recognizedAs.length > 0 ? ` (${e.recognizedAs.join(', ')})` : '';
  return `${e.recognized} recognised${names}, ${e.unknown} unknown`;
}

interface Goals {
  live720: { met: boolean; text: string };
  peer: { met: boolean | undefined; text: string };
}

function goals(r: Result): Goals {
  const live = r.live.find((x) => x.size === '1280×720' && x.detectEvery === 1);
  const tp = r.throughput.find(
    (x) => x.kind === 'faceflow' && x.size === '1280×720' && x.mode === 'every frame',
  );
  const live720 = live
    ? {
        met: live.dropped === 0 && live.latency.p95 <= GOAL.p95Ms && (tp?.fps ?? 0) >= GOAL.fps,
        text:
          `720p 15 fps, detection every frame: ${live.processed}/${live.decoded} frames processed, ` +
          `${live.dropped} dropped, latency p95 ${fmt(live.latency.p95)} ms (goal ≤ ${GOAL.p95Ms}); ` +
          `throughput ${fmt(tp?.fps ?? NaN)} frames/s (goal ≥ ${GOAL.fps})`,
      }
    : { met: false, text: '720p row missing' };
  const ratios = r.throughput
    .filter((x) => x.kind === 'faceflow' && x.mode === 'every frame')
    .map((ff) => {
      const h = r.throughput.find(
        (x) => x.kind === 'human' && x.clip === ff.clip && x.mode === 'every frame, cache off',
      );
      return h ? { clip: ff.clip, ratio: ff.fps / h.fps } : undefined;
    })
    .filter((x) => x !== undefined);
  const peer =
    ratios.length === 0
      ? { met: undefined, text: `peer not measured: ${r.peer.missing ?? 'no rows'}` }
      : {
          met: ratios.every((x) => x.ratio >= GOAL.peerRatio),
          text:
            'faceflow (detection every frame) ÷ human (every frame, cache off), frames/s: ' +
            ratios.map((x) => `${x.clip} ×${x.ratio.toFixed(1)}`).join(', ') +
            ` (goal ≥ ×${GOAL.peerRatio})`,
        };
  return { live720, peer };
}

function markdown(r: Result): string {
  const m = r.machine;
  const lines = [
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.platform}; Node ${m.node}, onnxruntime-node ${m.onnxruntimeNode}`,
    `Pack: ${m.pack}; ffmpeg: ${m.ffmpeg}`,
    `Date: ${m.date}; 1-min load before ${r.quiet.load1.toFixed(2)} (waited ${r.quiet.waitedS} s` +
      `${r.quiet.quiet ? '' : ', machine NOT quiet'}), after ${r.loadAtEnd.toFixed(2)}`,
    `Baseline (10×1000 128-d dot products, plain JS): ${fmt(r.refMs)} ms median over all blocks`,
    '',
    '### Live (file read at its native rate, CameraSource.processLatest)',
    '',
    '| clip | source | detect every | decoded | processed | dropped | processed fps | latency p50 ms | p95 ms | max ms | p95 × baseline | cores (node + ffmpeg) | RSS peak MiB | faces/frame | events | others’ CPU |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|',
  ];
  for (const x of r.live) {
    lines.push(
      `| ${x.clip} | ${x.size} @ ${fmt(x.sourceFps)} fps | ${x.detectEvery} | ${x.decoded} | ${x.processed} | ` +
        `${x.dropped} | ${fmt(x.processedFps)} | ${fmt(x.latency.p50)} | ${fmt(x.latency.p95)} | ` +
        `${fmt(x.latencyMax)} | ${fmt(x.latency.p95 / x.refMs)} | ${fmt(x.coresUsed)} (${fmt(x.ffmpegCores)}) | ` +
        `${fmt(x.rssPeakMiB)} | ${fmt(x.facesPerFrame)} | ${eventsText(x.events)} | ${pct(x.othersBusy)} |`,
    );
  }
  lines.push(
    '',
    '### Throughput (frames decoded into memory first, then pushed as fast as taken)',
    '',
    '| chain | clip | frames | mode | frames/s | ms/frame p50 | p95 | p50 × baseline | CPU ms/frame | cores | RSS peak MiB | faces/frame | detections/frame | embeddings/frame | events | others’ CPU |',
    '|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|',
  );
  for (const x of r.throughput) {
    const chain =
      x.kind === 'faceflow' ? 'faceflow' : `human ${r.peer.version ?? ''} (${r.peer.execution ?? ''})`;
    lines.push(
      `| ${chain} | ${x.clip} ${x.size} | ${x.frames} | ${x.mode} | ${fmt(x.fps)} | ${fmt(x.ms.p50)} | ` +
        `${fmt(x.ms.p95)} | ${fmt(x.ms.p50 / x.refMs)} | ${fmt(x.cpuMsPerFrame)} | ${fmt(x.coresUsed)} | ` +
        `${fmt(x.rssPeakMiB)} | ${fmt(x.facesPerFrame)} | ` +
        `${x.detectionsPerFrame !== undefined ? fmt(x.detectionsPerFrame) : x.mode.includes('cache on') ? '≤ 1 (cached)' : '1'} | ` +
        `${fmt(x.embeddingsPerFrame)} | ${eventsText(x.events)} | ${pct(x.othersBusy)} |`,
    );
  }
  const g = goals(r);
  const verdict = (met: boolean | undefined) =>
    met === undefined ? 'not measured' : met ? 'MET' : 'NOT MET';
  lines.push(
    '',
    `Goal, live 720p at 15 fps with p95 ≤ ${GOAL.p95Ms} ms: ${verdict(g.live720.met)}. ${g.live720.text}.`,
    `Goal, ≥ ${GOAL.peerRatio}× human's throughput: ${verdict(g.peer.met)}. ${g.peer.text}.`,
  );
  if (r.peer.missing) lines.push(`Peer: ${r.peer.missing}`);
  for (const n of r.notes) lines.push(n);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const missing = [FILES.clip, FILES.portrait].filter((f) => !existsSync(f));
  if (!existsSync(SHARED_DATA) || missing.length > 0) {
    console.log(
      `bench skipped: needs the hamilton clip and the lin-manuel-miranda photo of ${SHARED_DATA}` +
        ` (${existsSync(SHARED_DATA) ? `missing ${missing.join(', ')}` : 'which is not there'})`,
    );
    return;
  }
  const log = (s: string) => console.error(`[live] ${s}`);
  const result = await run(options, log);
  if (options.json) console.log(JSON.stringify({ ...result, goals: goals(result) }, null, 2));
  else console.log(markdown(result));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
