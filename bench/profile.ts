/**
 * Where the live chain's CPU goes, stage by stage (issue 19): `recognizeFrames` with detection on every frame,
 * the default pack, on the hamilton clip (640×360) and its 1280×720 copy, frames decoded into memory first and
 * pushed through as fast as the chain takes them.
 *
 *   node dist/bench/profile.js [--json] [--no-wait] [--threads N] [--no-detector-picture]
 *
 * Frames come as the camera node delivers them, with ffmpeg's picture for the detector (its cost is in the
 * decode row); `--no-detector-picture` leaves it out, so the letterbox shrinks each frame itself.
 *
 * A V8 profile (`node --cpu-prof`) sees only the JavaScript thread, while ONNX Runtime and libvips work on
 * threads of their own. So each stage is timed here with the process's CPU clock (all threads) around the
 * functions that do its work, which the chain calls one frame at a time, one stage after the other: the CPU
 * spent between a stage's start and its end is that stage's, on whatever thread it ran. Nested stages are shown
 * inside their parent ("of which"). What no stage accounts for is the glue (RxJS, promises, the chain's own
 * code) and garbage collection. Decode hand-off (ffmpeg → Node frames), events and annotate/JPEG are measured
 * in passes of their own over the same frames. Prints figures, asserts nothing; without ../shared/data it says
 * so and exits 0.
 */

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { from, lastValueFrom, toArray } from 'rxjs';

import * as align from '../src/align';
import { FaceFlow } from '../src/faceflow';
import { MemoryGallery } from '../src/gallery/memoryGallery';
import * as letterboxModule from '../src/image/letterbox';
import { decodeImage } from '../src/image/decode';
import { fileFrames } from '../src/io/cameraSource';
import * as nms from '../src/models/nms';
import { annotateFrame } from '../src/output/annotate';
import { faceEvents } from '../src/pipeline/events';
import * as identify from '../src/pipeline/identify';
import { recognizeFrames } from '../src/pipeline/live';
import { FaceTracking } from '../src/tracking/operators';
import { UNKNOWN, type FaceFrame } from '../src/types';
import { decodeAll, HAMILTON, HD, make720p, replay } from './clips';
import { cpuMark, machineInfo, SHARED_DATA, usage, waitForQuiet } from './common';

/** CPU milliseconds of this process, all threads. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU and calls per stage, measured around the functions that do the stage's work. */
class StageMeter {
  readonly cpu = new Map<string, number>();
  readonly calls = new Map<string, number>();

  add(stage: string, ms: number): void {
    this.cpu.set(stage, (this.cpu.get(stage) ?? 0) + ms);
    this.calls.set(stage, (this.calls.get(stage) ?? 0) + 1);
  }

  /** `fn` timed as `stage`, whether it returns a value or a promise; called with the caller's `this`. */
  wrap<A extends unknown[], R>(stage: string, fn: (this: unknown, ...args: A) => R): (...args: A) => R {
    const add = (ms: number) => this.add(stage, ms);
    return function (this: unknown, ...args: A): R {
      const t0 = cpuMs();
      const out = fn.apply(this, args);
      if (out instanceof Promise) {
        return out.finally(() => add(cpuMs() - t0)) as R;
      }
      add(cpuMs() - t0);
      return out;
    };
  }

  reset(): void {
    this.cpu.clear();
    this.calls.clear();
  }
}

type Patchable = Record<string, unknown>;

/**
 * Replaces `owner[key]` by its timed self for as long as the meter is used. Module functions are patched on
 * their module's exports, which the compiled code reads at every call.
 */
function patch(meter: StageMeter, owner: object, key: string, stage: string): void {
  const target = owner as Patchable;
  const original = target[key] as (...args: unknown[]) => unknown;
  if (typeof original !== 'function') throw new Error(`cannot time ${stage}: ${key} is not a function`);
  target[key] = meter.wrap(stage, original);
}

/** The chain's stages, nested as they run: a child's CPU is part of its parent's. */
const STAGES: { stage: string; parent?: string; what: string }[] = [
  { stage: 'detect', what: 'the detector, all of it' },
  { stage: 'letterbox', parent: 'detect', what: 'resize (libvips) and the float tensor fill' },
  { stage: 'detector inference', parent: 'detect', what: 'ONNX Runtime run, BlazeFace' },
  { stage: 'nms', parent: 'detect', what: 'non-maximum suppression' },
  { stage: 'track', what: 'ByteTrack, track bookkeeping, which faces to embed' },
  { stage: 'align', what: 'crop and warp of the faces to embed (JS)' },
  { stage: 'embed', what: 'the embedder, all of it' },
  { stage: 'embedder inference', parent: 'embed', what: 'ONNX Runtime run, face-api recognition' },
  { stage: 'match', what: 'gallery search and identity' },
  { stage: 'strangers', what: 'telling strangers apart' },
  { stage: 'vote', what: 'track identity votes' },
];

interface Row {
  clip: string;
  frames: number;
  detections: number;
  embeddings: number;
  wallMsPerFrame: number;
  cpuMsPerFrame: number;
  /** CPU ms per frame of each stage. */
  stages: Record<string, number>;
  /** CPU ms per frame no stage accounts for: RxJS, promises, the chain's glue, GC. */
  glue: number;
  /** Separate passes over the same frames. */
  decodeNodeMsPerFrame: number;
  decodeFfmpegMsPerFrame: number;
  eventsMsPerFrame: number;
  annotateJpegMsPerFrame: number;
  /** Faces embedded per frame: what the track-level policy (embed new tracks, then now and then) leaves. */
  embeddingsPerFrame: number;
  /** Tracked faces per frame: what embedding every face of every frame would embed. */
  trackedPerFrame: number;
  /** Tracks that were named, and the median ms (frame timestamps) from a track's first frame to its name. */
  namedTracks: number;
  identityLatencyMs: number | null;
}

/** For each track that got a name: ms from its first frame to the first frame that carries the name. */
function identityLatencies(out: FaceFrame[]): number[] {
  const firstSeen = new Map<number, number>();
  const named = new Map<number, number>();
  for (const { frame, faces } of out) {
    for (const f of faces) {
      if (f.trackId === undefined) continue;
      if (!firstSeen.has(f.trackId)) firstSeen.set(f.trackId, frame.ts);
      if (!named.has(f.trackId) && f.identity && f.identity.name !== UNKNOWN) named.set(f.trackId, frame.ts);
    }
  }
  return [...named].map(([id, ts]) => ts - (firstSeen.get(id) as number));
}

async function profileClip(
  flow: FaceFlow,
  gallery: MemoryGallery,
  meter: StageMeter,
  clip: { name: string; file: string; cameraId: string; fps: number },
  detectorInput: { width: number; height: number } | undefined,
): Promise<Row> {
  // Decode hand-off: ffmpeg's own CPU (a child, counted once it has exited) and this process's, frames dropped.
  const d0 = cpuMark();
  const decoded = await lastValueFrom(
    fileFrames(clip.file, { cameraId: clip.cameraId, detectorInput }).pipe(toArray()),
  );
  const decode = usage(d0, cpuMark());
  const frames = await decodeAll(clip.file, clip.cameraId, clip.fps, detectorInput);

  // Warm up on a few frames (sessions, JIT), on a camera id of its own so that tracks do not carry over.
  const warm = replay(frames.slice(0, 10), { cameraId: `${clip.cameraId}-warmup` });
  await lastValueFrom(
    from(warm).pipe(recognizeFrames(flow, gallery, { threshold: flow.threshold }), toArray()),
  );

  meter.reset();
  const t0 = cpuMark();
  const out: FaceFrame[] = await lastValueFrom(
    from(replay(frames)).pipe(recognizeFrames(flow, gallery, { threshold: flow.threshold }), toArray()),
  );
  const chain = usage(t0, cpuMark());
  const n = frames.length;
  const stages: Record<string, number> = {};
  for (const { stage } of STAGES) stages[stage] = (meter.cpu.get(stage) ?? 0) / n;
  const topLevel = STAGES.filter((s) => !s.parent).reduce((sum, s) => sum + stages[s.stage], 0);

  const latencies = identityLatencies(out).sort((a, b) => a - b);
  const e0 = cpuMark();
  await lastValueFrom(from(out).pipe(faceEvents(), toArray()));
  const events = usage(e0, cpuMark());

  // The live view: boxes and names drawn, JPEG encoded (libvips), for every frame.
  const a0 = cpuMark();
  for (const item of out) await annotateFrame(item);
  const annotate = usage(a0, cpuMark());

  return {
    clip: clip.name,
    frames: n,
    detections: meter.calls.get('detect') ?? 0,
    embeddings: meter.calls.get('align') ?? 0,
    wallMsPerFrame: (chain.wallS * 1000) / n,
    cpuMsPerFrame: (chain.cpuS * 1000) / n,
    stages,
    glue: (chain.cpuS * 1000) / n - topLevel,
    decodeNodeMsPerFrame: (decode.cpuS * 1000) / decoded.length,
    decodeFfmpegMsPerFrame: (decode.childCpuS * 1000) / decoded.length,
    eventsMsPerFrame: (events.cpuS * 1000) / n,
    annotateJpegMsPerFrame: (annotate.cpuS * 1000) / n,
    embeddingsPerFrame: (meter.calls.get('align') ?? 0) / n,
    trackedPerFrame:
      out.reduce((sum, item) => sum + item.faces.filter((f) => f.trackId !== undefined).length, 0) / n,
    namedTracks: latencies.length,
    identityLatencyMs: latencies.length > 0 ? latencies[Math.floor(latencies.length / 2)] : null,
  };
}

function instrument(flow: FaceFlow, gallery: MemoryGallery, meter: StageMeter): void {
  const detector = flow.detector as unknown as { session: object };
  const embedder = flow.embedder as unknown as { session: object };
  patch(meter, flow.detector, 'detect', 'detect');
  patch(meter, detector.session, 'run', 'detector inference');
  patch(meter, letterboxModule, 'letterbox', 'letterbox');
  patch(meter, nms, 'nonMaxSuppression', 'nms');
  patch(meter, FaceTracking.prototype, 'trackFrame', 'track');
  patch(meter, FaceTracking.prototype, 'needsEmbedding', 'track');
  patch(meter, FaceTracking.prototype, 'vote', 'vote');
  patch(meter, align, 'alignFace', 'align');
  patch(meter, flow.embedder, 'embed', 'embed');
  patch(meter, embedder.session, 'run', 'embedder inference');
  patch(meter, gallery, 'match', 'match');
  patch(meter, identify, 'tellStranger', 'strangers');
}

const f2 = (x: number) => x.toFixed(2);

function markdown(rows: Row[]): string {
  const lines: string[] = [];
  lines.push(`| stage | ${rows.map((r) => r.clip).join(' | ')} |`);
  lines.push(`|---|${rows.map(() => '--:').join('|')}|`);
  const row = (label: string, pick: (r: Row) => number, share = true) =>
    lines.push(
      `| ${label} | ${rows
        .map((r) => `${f2(pick(r))}${share ? ` (${Math.round((100 * pick(r)) / r.cpuMsPerFrame)} %)` : ''}`)
        .join(' | ')} |`,
    );
  row('**chain, CPU ms/frame (all threads)**', (r) => r.cpuMsPerFrame, false);
  row('chain, wall ms/frame', (r) => r.wallMsPerFrame, false);
  for (const s of STAGES)
    row(`${s.parent ? '  of which ' : ''}${s.stage}: ${s.what}`, (r) => r.stages[s.stage]);
  row('glue: RxJS, promises, GC, the chain itself', (r) => r.glue);
  lines.push(`| _separate passes_ | ${rows.map(() => '').join(' | ')} |`);
  row('decode hand-off, Node side (frames from ffmpeg)', (r) => r.decodeNodeMsPerFrame, false);
  row('decode, ffmpeg process', (r) => r.decodeFfmpegMsPerFrame, false);
  row('events (faceEvents)', (r) => r.eventsMsPerFrame, false);
  row('annotate + JPEG (live view)', (r) => r.annotateJpegMsPerFrame, false);
  lines.push(
    `| frames; detections; faces embedded | ${rows.map((r) => `${r.frames}; ${r.detections}; ${r.embeddings}`).join(' | ')} |`,
  );
  lines.push(
    `| faces embedded per frame (tracked faces per frame) | ${rows
      .map((r) => `${r.embeddingsPerFrame.toFixed(2)} (${r.trackedPerFrame.toFixed(2)})`)
      .join(' | ')} |`,
  );
  lines.push(
    `| tracks named; median ms from a track's first confirmed frame to its name | ${rows
      .map((r) => `${r.namedTracks}; ${r.identityLatencyMs === null ? '–' : Math.round(r.identityLatencyMs)}`)
      .join(' | ')} |`,
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  if (!existsSync(HAMILTON.clip) || !existsSync(HAMILTON.portrait)) {
    console.log(`bench skipped: needs the hamilton clip and the lin-manuel-miranda photo of ${SHARED_DATA}`);
    return;
  }
  const quiet = await waitForQuiet(!process.argv.includes('--no-wait'), (s) => console.error(s));
  const dir = await mkdtemp(path.join(tmpdir(), 'faceflow-profile-'));
  const at = process.argv.indexOf('--threads');
  const threads = at > 0 ? Number(process.argv[at + 1]) : undefined;
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    console.error(
      'usage: node dist/bench/profile.js [--json] [--no-wait] [--threads N] [--no-detector-picture]',
    );
    process.exit(2);
  }
  const flow = await FaceFlow.open(threads === undefined ? {} : { threads });
  try {
    const gallery = new MemoryGallery(flow.embedder.id);
    const portrait = await flow.singleFace(await decodeImage(HAMILTON.portrait), HAMILTON.person);
    gallery.add(HAMILTON.person, portrait.embedding as Float32Array);
    const meter = new StageMeter();
    instrument(flow, gallery, meter);
    const hd = await make720p(dir);
    const detectorInput = process.argv.includes('--no-detector-picture') ? undefined : flow.detector.inputBox;
    const rows = [
      await profileClip(
        flow,
        gallery,
        meter,
        {
          name: 'hamilton 640×360',
          file: HAMILTON.clip,
          cameraId: 'hamilton',
          fps: HAMILTON.fps,
        },
        detectorInput,
      ),
      await profileClip(
        flow,
        gallery,
        meter,
        {
          name: `hamilton ${HD.width}×${HD.height}`,
          file: hd,
          cameraId: 'hamilton-720p',
          fps: HD.fps,
        },
        detectorInput,
      ),
    ];
    if (json) {
      const detectorPicture = detectorInput !== undefined;
      console.log(JSON.stringify({ machine: machineInfo(), quiet, threads, detectorPicture, rows }, null, 2));
    } else {
      console.log(
        `CPU per frame by stage, detection on every frame, default pack (${flow.detector.id} + ${flow.embedder.id}), ` +
          `${threads === undefined ? "ONNX Runtime's default threads" : `${threads} thread(s) per model`}, ` +
          `${detectorInput ? "ffmpeg's detector picture" : 'no detector picture'}, ` +
          `${new Date().toISOString()}, 1-min load ${quiet.load1.toFixed(2)}${quiet.quiet ? '' : ' (NOT quiet)'}`,
      );
      console.log(markdown(rows));
    }
  } finally {
    await flow.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
