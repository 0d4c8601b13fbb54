import { Gauge } from 'prom-client';

import type { CameraEvent, DownCause } from '../io/cameraSource';
import { UNKNOWN as UNKNOWN_NAME } from '../types';
import {
  cameraDisconnects,
  detectSeconds,
  detectSkipped,
  embedSeconds,
  facesPerFrame,
  framesDropped,
  framesIn,
  recognitions,
  registers,
} from './registry';

/** Where a camera is, as the health report shows it. */
export type CameraState =
  'stopped' | 'connecting' | 'up' | 'down' | 'reconnecting' | 'stalled' | 'ended' | 'failed';

/**
 * The `camera` label of stage metrics for frames of no registered camera: still images, messages from
 * function nodes, stray topics. Stages see whatever `msg.topic` a flow sends (the fuzz test sends
 * thousands), and taking it as a label would grow the series without bound.
 */
export const OTHER_CAMERA = 'other';

/** fps is measured over windows this long: long enough to be steady at 1 fps, short enough to follow changes. */
const FPS_WINDOW_MS = 2000;

// A Record, so that a cause added to DownCause fails to compile here until it is listed.
const CAUSES: Record<DownCause, true> = {
  auth: true,
  'not-found': true,
  refused: true,
  unreachable: true,
  timeout: true,
  stalled: true,
  protocol: true,
  killed: true,
  ended: true,
  failed: true,
};
const DOWN_CAUSES = Object.keys(CAUSES) as DownCause[];

/** What the stages record for the frames of one camera, with the label values bound once. */
export const RECOGNITION_RESULTS = ['recognized', 'unknown', 'ambiguous'] as const;
export type RecognitionResult = (typeof RECOGNITION_RESULTS)[number];

/** The result label of an identity: a name, none, or two people too close to tell apart. */
export function recognitionResult(identity: { name: string; ambiguous?: boolean }): RecognitionResult {
  if (identity.name !== UNKNOWN_NAME) return 'recognized';
  return identity.ambiguous === true ? 'ambiguous' : 'unknown';
}

export interface StageInstruments {
  /** One frame's detection: its duration and the faces found. */
  detected(seconds: number, faces: number): void;
  /** One frame passed on without detection (a still, empty scene). */
  skipped(): void;
  /** One frame's embedding batch (only frames that had faces to embed). */
  embedded(seconds: number): void;
  /** One face matched against a gallery, by result (never by name). */
  matched(result: RecognitionResult): void;
}

interface CameraEntry {
  meters: Set<CameraMeter>;
  stages: StageInstruments;
}

// Keyed by camera id; several sources may share an id (two nodes reading one camera), and its series go
// only when the last of them closes.
const cameras = new Map<string, CameraEntry>();
let otherStages: StageInstruments | undefined;

function bind(camera: string): StageInstruments {
  const detect = detectSeconds.labels(camera);
  const skips = detectSkipped.labels(camera);
  const embed = embedSeconds.labels(camera);
  const faces = facesPerFrame.labels(camera);
  const results = {
    recognized: recognitions.labels(camera, 'recognized'),
    unknown: recognitions.labels(camera, 'unknown'),
    ambiguous: recognitions.labels(camera, 'ambiguous'),
  };
  // A prom-client child writes through to its parent, so a frame still in a stage when its camera's
  // series were removed (an unload, under load) would bring them back: such late frames count nowhere.
  const live = () => camera === OTHER_CAMERA || cameras.get(camera)?.stages === instruments;
  const instruments: StageInstruments = {
    detected(seconds, n) {
      if (!live()) return;
      detect.observe(seconds);
      faces.observe(n);
    },
    skipped() {
      if (live()) skips.inc();
    },
    embedded(seconds) {
      if (live()) embed.observe(seconds);
    },
    matched(result) {
      if (live()) results[result].inc();
    },
  };
  return instruments;
}

/**
 * The stage instruments for a frame's camera id: its own while a source with that id is registered,
 * else those labelled {@link OTHER_CAMERA}.
 */
export function stageMetrics(camera: unknown): StageInstruments {
  const entry = typeof camera === 'string' ? cameras.get(camera) : undefined;
  return entry ? entry.stages : (otherStages ??= bind(OTHER_CAMERA));
}

// Both gauges are read from the live meters at scrape time rather than set on every event: nothing to
// keep in step, and a camera whose meter is closed has no series left to go stale.
new Gauge({
  name: 'faceflow_camera_up',
  help: '1 while the camera delivers frames, 0 while it is connecting, down, stalled, ended or stopped.',
  labelNames: ['camera'] as const,
  registers,
  collect() {
    this.reset();
    for (const [camera, entry] of cameras) {
      this.set({ camera }, [...entry.meters].some((m) => m.state === 'up') ? 1 : 0);
    }
  },
});

new Gauge({
  name: 'faceflow_camera_last_frame_timestamp_seconds',
  help: 'When the camera last delivered a frame (Unix time); time() minus this is how long it has been silent.',
  labelNames: ['camera'] as const,
  registers,
  collect() {
    this.reset();
    for (const [camera, entry] of cameras) {
      const last = Math.max(...[...entry.meters].map((m) => m.lastFrameAt ?? -1));
      if (last >= 0) this.set({ camera }, last / 1000);
    }
  },
});

/** One camera as the health endpoint reports it. Nothing here holds a password. */
export interface CameraStatus {
  camera: string;
  /** The input as it may be shown: a path, a device, or a URL with its password replaced by `***`. */
  source: string;
  state: CameraState;
  up: boolean;
  /** Frames per second over the last couple of seconds; 0 when none came lately. */
  fps: number;
  /** Milliseconds since the last frame; null before the first. */
  lastFrameAgeMs: number | null;
  frames: number;
  dropped: number;
  /** The last reason the camera went down, stalled or failed (masked by CameraSource). */
  lastProblem?: string;
}

/**
 * The metrics and health of one camera source, fed by whoever runs it: `event()` with each of the
 * camera's events, `frame()` with each frame. Per frame that is a counter increment and a few number
 * updates. `close()` removes the camera's series (its own and those of the stages) once no other
 * source with the same id is left, so a deploy that drops a camera leaves no stale series.
 */
export class CameraMeter {
  state: CameraState = 'stopped';
  frames = 0;
  dropped = 0;
  lastFrameAt: number | undefined;
  lastProblem: string | undefined;

  private readonly entry: CameraEntry;
  private readonly framesChild: { inc(n?: number): void };
  private readonly droppedChild: { inc(n?: number): void };
  private windowStart = 0;
  private windowFrames = 0;
  private windowFps = 0;
  private closed = false;

  constructor(
    readonly camera: string,
    readonly source: string,
  ) {
    let entry = cameras.get(camera);
    if (!entry) {
      entry = { meters: new Set(), stages: bind(camera) };
      cameras.set(camera, entry);
    }
    entry.meters.add(this);
    this.entry = entry;
    this.framesChild = framesIn.labels(camera);
    this.droppedChild = framesDropped.labels(camera);
    // Present from the start at 0, so that rate() sees the first frames and a camera that never
    // delivers shows as 0 rather than as missing.
    this.framesChild.inc(0);
    this.droppedChild.inc(0);
  }

  /** The source is being started; its events take over from here. */
  starting(): void {
    if (!this.closed) this.state = 'connecting';
  }

  /** Stopped on purpose (a `stop` command): not up, but not a problem either. */
  stopped(): void {
    if (!this.closed) this.state = 'stopped';
  }

  /** The source failed for good (a file that cannot be read, reconnection given up). */
  failed(reason: string): void {
    if (this.closed) return;
    this.state = 'failed';
    this.lastProblem = reason;
  }

  frame(now = Date.now()): void {
    if (this.closed) return;
    this.frames++;
    this.framesChild.inc();
    this.lastFrameAt = now;
    // A frame is proof that the camera is up, whatever event may have been missed.
    this.state = 'up';
    const elapsed = now - this.windowStart;
    if (elapsed >= FPS_WINDOW_MS) {
      if (this.windowStart > 0) this.windowFps = (this.windowFrames * 1000) / elapsed;
      this.windowStart = now;
      this.windowFrames = 0;
    }
    this.windowFrames++;
  }

  event(event: CameraEvent): void {
    if (this.closed) return;
    switch (event.type) {
      case 'connecting':
        this.state = 'connecting';
        break;
      case 'up':
        this.state = 'up';
        break;
      case 'down':
        this.state = 'down';
        this.lastProblem = event.reason;
        cameraDisconnects.labels(this.camera, CAUSES[event.cause] ? event.cause : 'failed').inc();
        break;
      case 'reconnecting':
        this.state = 'reconnecting';
        break;
      case 'stalled':
        this.state = 'stalled';
        this.lastProblem = `no frame for ${Math.round(event.silentMs / 1000)} s`;
        break;
      case 'dropped':
        this.dropped += event.count;
        this.droppedChild.inc(event.count);
        break;
      case 'end':
        this.state = 'ended';
        break;
      default:
        break;
    }
  }

  /** Frames per second over the last complete window; 0 once frames stop coming. */
  fps(now = Date.now()): number {
    if (this.lastFrameAt === undefined || now - this.lastFrameAt > 2 * FPS_WINDOW_MS) return 0;
    if (this.windowFps > 0) return this.windowFps;
    // Before the first window is complete: the frames of this one so far.
    const elapsed = this.lastFrameAt - this.windowStart;
    return elapsed > 0 ? ((this.windowFrames - 1) * 1000) / elapsed : 0;
  }

  status(now = Date.now()): CameraStatus {
    return {
      camera: this.camera,
      source: this.source,
      state: this.state,
      up: this.state === 'up',
      fps: Math.round(this.fps(now) * 10) / 10,
      lastFrameAgeMs: this.lastFrameAt === undefined ? null : Math.max(0, now - this.lastFrameAt),
      frames: this.frames,
      dropped: this.dropped,
      ...(this.lastProblem === undefined ? {} : { lastProblem: this.lastProblem }),
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.state = 'stopped';
    this.entry.meters.delete(this);
    if (this.entry.meters.size > 0 || cameras.get(this.camera) !== this.entry) return;
    cameras.delete(this.camera);
    removeCameraSeries(this.camera);
  }
}

function removeCameraSeries(camera: string): void {
  framesIn.remove(camera);
  framesDropped.remove(camera);
  for (const cause of DOWN_CAUSES) cameraDisconnects.remove(camera, cause);
  detectSeconds.remove(camera);
  detectSkipped.remove(camera);
  embedSeconds.remove(camera);
  facesPerFrame.remove(camera);
  for (const result of RECOGNITION_RESULTS) recognitions.remove(camera, result);
}

/** Every registered camera source, for the health report. */
export function cameraStatuses(now = Date.now()): CameraStatus[] {
  const out: CameraStatus[] = [];
  for (const entry of cameras.values()) for (const meter of entry.meters) out.push(meter.status(now));
  return out;
}
