/**
 * Cameras and video files as RxJS streams of `Frame`s, with the camera's health as events.
 *
 *   const cam = new CameraSource({ kind: 'rtsp', url }, { cameraId: 'door', width: 1280, height: 720 });
 *   cam.events$.subscribe((e) => console.log(e.type, e));  // connecting, up, down, reconnecting, …
 *   cam.frames$.subscribe((frame) => …);                   // the first subscriber starts ffmpeg
 *
 * or, as plain functions: `rtspFrames(url, { onEvent })`, `fileFrames(path)`, `deviceFrames(dev)`.
 *
 * `frames$` is shared: one ffmpeg however many subscribers, started by the first and stopped
 * (SIGTERM, then SIGKILL after `stopGraceMs`) when the last one leaves or on error. A live source
 * (RTSP, device) never completes: when ffmpeg exits or goes silent for `stallTimeoutMs` it is
 * restarted with exponential back-off and jitter, and `seq` keeps counting (a wrong password
 * waits as the fifth attempt would: 16 s by default, not 1 s). The watchdog also bounds a
 * connection that never completes, and a camera's host name is resolved here within the same
 * bound (see resolveRtspHost): no failure waits on the kernel's or ffmpeg's own timeouts. A file
 * completes at its end (unless `loop`); any failure of a file is an error. Passwords in URLs appear nowhere:
 * not in events, errors or log lines (see maskUrl.ts). They are on ffmpeg's command line,
 * though, which other local users can read in /proc: give cameras their own account.
 *
 * Events (all carry `type`, `cameraId`, `source` (masked) and `ts`):
 *   connecting   {attempt}                  ffmpeg started; attempt 0 is the first connection
 *   up           {attempt, width, height}   first frame of this connection
 *   down         {reason, cause, detail?, frames, code, signal}  ffmpeg ended (frames: delivered
 *                                          by that run; cause: why, as a word — see DownCause)
 *   reconnecting {attempt, delayMs}         next connection in delayMs
 *   stalled      {silentMs}                 no frame for stallTimeoutMs; ffmpeg is being killed
 *   dropped      {count, total}             frames skipped by processLatest (reported ≤ 1/s)
 *   log          {level, message}           an ffmpeg line at logLevel or worse
 *   end          {frames}                   a file reached its end
 */
import { lookup } from 'node:dns/promises';
import { constants, promises as fs } from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { finalize, Observable, share, Subject, type ObservableInput, type Subscriber } from 'rxjs';
import { frameFromI420 } from '../util/i420';
import type { Frame } from '../types';
import { CameraError, ffmpegPath, ffmpegVersion, hasFpsMode, type FfmpegChoice } from './ffmpeg';
import { detectorBox, ffmpegArgs, type CameraInput, type OutputOptions } from './ffmpegArgs';
import { FfmpegProcess, type FfmpegExit, type FfmpegLogLevel } from './ffmpegProcess';
import { latestFrame } from './latestFrame';
import { maskUrl, SecretMasker } from './maskUrl';

export interface ReconnectOptions {
  /** First delay; doubled per failed attempt. Default 1000. */
  baseMs?: number;
  /** Longest delay. Default 30000. */
  maxMs?: number;
  /** Each delay is shortened by a random fraction up to this, so cameras that fail together
   * do not retry in step. Default 0.2. */
  jitter?: number;
  /** A connection that delivered frames for this long resets the back-off. Default 30000. */
  stableMs?: number;
  /** Give up (error) when this many reconnection attempts in a row have failed. Default: never. */
  maxAttempts?: number;
}

export interface CameraOptions extends FfmpegChoice, OutputOptions {
  /** `Frame.cameraId` and the events' `cameraId`; by default derived from the input (no secrets). */
  cameraId?: string;
  /** Kill and reconnect when no frame came for this long; 0 turns the watchdog off. Default 10000. */
  stallTimeoutMs?: number;
  /** Restart after failures. Default: on for RTSP and devices, off for files. */
  reconnect?: boolean | ReconnectOptions;
  /** Grace between SIGTERM and SIGKILL. Default 2000. */
  stopGraceMs?: number;
  /** ffmpeg lines at this level or worse become `log` events. Default 'warning'. */
  logLevel?: 'error' | 'warning' | 'info';
  /** Drops are reported at most this often. Default 1000. */
  dropReportMs?: number;
  /** Receives every event (the same as subscribing to `events$`). */
  onEvent?: (event: CameraEvent) => void;
}

interface EventBase {
  cameraId: string;
  /** The input, masked: path, device or URL with its password replaced by `***`. */
  source: string;
  ts: number;
}
export interface ConnectingEvent extends EventBase {
  type: 'connecting';
  attempt: number;
}
export interface UpEvent extends EventBase {
  type: 'up';
  attempt: number;
  width: number;
  height: number;
}
/**
 * Why a connection ended, as a word a flow can switch on:
 *   auth         the camera refused the credentials (401/403); retried at a long delay
 *   not-found    no stream at that path (404)
 *   refused      nothing listens at that address and port
 *   unreachable  no route to the host, or its name does not resolve
 *   timeout      nothing came within stallTimeoutMs of connecting (blackholed address, hung camera)
 *   stalled      frames came, then none for stallTimeoutMs
 *   protocol     the answer was not usable RTSP, or held no video stream
 *   killed       ffmpeg died of a signal nobody here sent (OOM killer, an operator's kill -9)
 *   ended        the stream or file ended
 *   failed       anything else, such as "camera error (503 Service Unavailable)"; `detail` or
 *                `reason` has ffmpeg's words
 */
export type DownCause =
  | 'auth'
  | 'not-found'
  | 'refused'
  | 'unreachable'
  | 'timeout'
  | 'stalled'
  | 'protocol'
  | 'killed'
  | 'ended'
  | 'failed';

export interface DownEvent extends EventBase {
  type: 'down';
  /** Short and readable, led by the cause in words ("authentication failed (401 Unauthorized)"). */
  reason: string;
  cause: DownCause;
  /** ffmpeg's own last error lines when the reason abbreviates them (masked). */
  detail?: string;
  frames: number;
  code: number | null;
  signal: string | null;
}
export interface ReconnectingEvent extends EventBase {
  type: 'reconnecting';
  attempt: number;
  delayMs: number;
}
export interface StalledEvent extends EventBase {
  type: 'stalled';
  silentMs: number;
}
export interface DroppedEvent extends EventBase {
  type: 'dropped';
  count: number;
  total: number;
}
export interface LogEvent extends EventBase {
  type: 'log';
  level: FfmpegLogLevel;
  message: string;
}
export interface EndEvent extends EventBase {
  type: 'end';
  frames: number;
}
export type CameraEvent =
  | ConnectingEvent
  | UpEvent
  | DownEvent
  | ReconnectingEvent
  | StalledEvent
  | DroppedEvent
  | LogEvent
  | EndEvent;

/** Distributes `Omit` over the union, so each event keeps its own fields. */
type EventBody<E> = E extends CameraEvent ? Omit<E, keyof EventBase> : never;

const LEVEL_RANK: Record<FfmpegLogLevel, number> = {
  panic: 0,
  fatal: 1,
  error: 2,
  warning: 3,
  info: 4,
  verbose: 5,
  debug: 6,
  trace: 7,
};

export class CameraSource {
  readonly cameraId: string;
  /** The input as it may be shown: path, device, or URL with the password masked. */
  readonly label: string;
  readonly events$: Observable<CameraEvent>;
  readonly frames$: Observable<Frame>;

  private readonly events = new Subject<CameraEvent>();
  // #private, not TS-private: util.inspect (console.log, Node-RED's debug) shows TS-private
  // fields, and these hold the URL with its password.
  readonly #input: CameraInput;
  readonly #options: CameraOptions;
  readonly #masker: SecretMasker;
  private readonly live: boolean;
  private readonly reconnect: Required<ReconnectOptions> | null;
  private dropsUnreported = 0;
  private dropsTotal = 0;
  private dropTimer: NodeJS.Timeout | undefined;

  constructor(input: CameraInput, options: CameraOptions = {}) {
    this.#input = input;
    this.#options = options;
    // Fail on a bad option now rather than at the first subscription.
    ffmpegArgs(input, options, { fpsMode: false, platform: 'linux' });
    this.live = input.kind !== 'file';
    this.#masker = new SecretMasker(input.kind === 'rtsp' ? input.url : undefined);
    this.label = describeInput(input);
    this.cameraId = options.cameraId ?? defaultCameraId(input);
    this.reconnect = reconnectSettings(options.reconnect ?? this.live);
    this.events$ = this.events.asObservable();
    if (options.onEvent) this.events$.subscribe(options.onEvent);
    this.frames$ = new Observable<Frame>((subscriber) => this.run(subscriber)).pipe(share());
  }

  /**
   * `frames$` through `work` one frame at a time, always on the newest frame; the frames
   * skipped meanwhile are counted and reported as `dropped` events (see `latestFrame`).
   */
  processLatest<R>(work: (frame: Frame, index: number) => ObservableInput<R>): Observable<R> {
    return this.frames$.pipe(
      latestFrame(work, { onDrop: () => this.noteDrop() }),
      finalize(() => this.reportDrops()),
    );
  }

  /** ffmpeg names a file as `file:/abs/path: …`; errors already start with the path as given. */
  private tidy(text: string): string {
    if (this.#input.kind !== 'file') return text;
    const named = `file:${path.resolve(this.#input.path)}`;
    return text.split(`${named}: `).join('').split(named).join(this.#input.path);
  }

  private emit(body: EventBody<CameraEvent>): void {
    this.events.next({ ...body, cameraId: this.cameraId, source: this.label, ts: Date.now() } as CameraEvent);
  }

  private noteDrop(): void {
    this.dropsUnreported++;
    this.dropsTotal++;
    this.dropTimer ??= setTimeout(() => this.reportDrops(), this.#options.dropReportMs ?? 1000);
  }

  private reportDrops(): void {
    clearTimeout(this.dropTimer);
    this.dropTimer = undefined;
    if (this.dropsUnreported === 0) return;
    const count = this.dropsUnreported;
    this.dropsUnreported = 0;
    this.emit({ type: 'dropped', count, total: this.dropsTotal });
  }

  /** One subscription's life: connect, watch, reconnect, until unsubscribed or failed. */
  private run(subscriber: Subscriber<Frame>): () => void {
    const stallMs = this.#options.stallTimeoutMs ?? 10_000;
    const showLevel = LEVEL_RANK[this.#options.logLevel ?? 'warning'];
    let closed = false;
    let proc: FfmpegProcess | undefined;
    let retryTimer: NodeJS.Timeout | undefined;
    let stallTimer: NodeJS.Timeout | undefined;
    let failures = 0;
    let seq = 0;

    const fail = (message: string): void => {
      if (closed) return;
      closed = true;
      subscriber.error(new CameraError(message));
    };

    /** After a failed or lost connection: reconnect after the back-off, or give up. */
    const afterFailure = (reason: string, cause: DownCause, upAt: number): void => {
      if (!this.reconnect) {
        fail(`${this.label}: ${reason}`);
        return;
      }
      const settings = this.reconnect;
      if (upAt > 0 && Date.now() - upAt >= settings.stableMs) failures = 0;
      failures++;
      if (failures > settings.maxAttempts) {
        fail(`${this.label}: gave up after ${settings.maxAttempts} attempts (${reason})`);
        return;
      }
      // A wrong password does not heal by retrying, and many cameras lock the account
      // after a few failures in a row: wait as if several attempts had failed already.
      const delayMs = backoffDelay(
        cause === 'auth' ? Math.max(failures, AUTH_BACKOFF_ATTEMPT) : failures,
        settings,
      );
      this.emit({ type: 'reconnecting', attempt: failures, delayMs });
      retryTimer = setTimeout(() => void connect(), delayMs);
    };

    const connect = async (): Promise<void> => {
      this.emit({ type: 'connecting', attempt: failures });
      let binary: string;
      let fpsMode: boolean;
      try {
        if (this.#input.kind === 'file') await checkReadableFile(this.#input.path);
        binary = ffmpegPath(this.#options);
        fpsMode = hasFpsMode(await ffmpegVersion(binary));
      } catch (err) {
        // Configuration problems (no ffmpeg, no file) do not heal by retrying.
        fail(this.#masker.mask(err instanceof CameraError ? err.message : `${this.label}: ${String(err)}`));
        return;
      }
      if (closed) return;

      let input = this.#input;
      if (input.kind === 'rtsp') {
        try {
          input = { ...input, url: await resolveRtspHost(input.url, stallMs > 0 ? stallMs : 10_000) };
        } catch (err) {
          if (closed) return;
          // A name that does not resolve now may resolve later (DNS or mDNS down, camera off).
          const reason = this.#masker.mask((err as Error).message);
          this.emit({ type: 'down', reason, cause: 'unreachable', frames: 0, code: null, signal: null });
          afterFailure(reason, 'unreachable', 0);
          return;
        }
        if (closed) return;
      }
      let args: string[];
      try {
        args = ffmpegArgs(input, this.#options, { fpsMode });
      } catch (err) {
        fail(this.#masker.mask(err instanceof CameraError ? err.message : `${this.label}: ${String(err)}`));
        return;
      }

      let frames = 0;
      let upAt = 0;
      let lastFrameAt = Date.now();
      let stalled = false;

      const watch = (delay: number): void => {
        stallTimer = setTimeout(() => {
          const silentMs = Date.now() - lastFrameAt;
          if (silentMs < stallMs) {
            watch(stallMs - silentMs);
            return;
          }
          stalled = true;
          this.emit({ type: 'stalled', silentMs });
          void current.stop();
        }, delay);
      };

      const current = new FfmpegProcess(
        binary,
        args,
        {
          masker: this.#masker,
          width: this.#options.width,
          height: this.#options.height,
          graceMs: this.#options.stopGraceMs,
          detectorPicture: detectorBox(this.#options) !== undefined,
        },
        {
          onFrame: (planes, width, height, picture) => {
            if (closed) return;
            lastFrameAt = Date.now();
            if (frames++ === 0) {
              upAt = lastFrameAt;
              this.emit({ type: 'up', attempt: failures, width, height });
            }
            subscriber.next(
              frameFromI420(
                { cameraId: this.cameraId, seq: seq++, ts: lastFrameAt, width, height },
                planes,
                picture,
              ),
            );
          },
          onLog: (line) => {
            if (!closed && LEVEL_RANK[line.level] <= showLevel) {
              this.emit({ type: 'log', level: line.level, message: this.tidy(line.message) });
            }
          },
          onExit: (exit) => {
            clearTimeout(stallTimer);
            if (proc === current) proc = undefined;
            if (closed) return;
            if (!this.live && !stalled && exit.code === 0 && exit.partialBytes === 0) {
              this.emit({ type: 'end', frames });
              closed = true;
              subscriber.complete();
              return;
            }
            const { reason, cause, detail } = stalled
              ? describeStall(stallMs, frames)
              : describeExit(exit, this.#input.kind, frames, (text) => this.tidy(text));
            this.emit({
              type: 'down',
              reason,
              cause,
              ...(detail === undefined ? {} : { detail }),
              frames,
              code: exit.code,
              signal: exit.signal,
            });
            if (exit.spawnError) {
              fail(`${this.label}: ${reason}`);
              return;
            }
            afterFailure(reason, cause, upAt);
          },
        },
      );
      proc = current;
      if (stallMs > 0) watch(stallMs);
    };

    void connect();

    return () => {
      closed = true;
      clearTimeout(retryTimer);
      clearTimeout(stallTimer);
      void proc?.stop();
      proc = undefined;
    };
  }
}

/** Decoded frames of a video file; completes at its end unless `loop`. */
export function fileFrames(
  file: string,
  options: CameraOptions & { loop?: boolean; realtime?: boolean } = {},
): Observable<Frame> {
  return new CameraSource(
    { kind: 'file', path: file, loop: options.loop, realtime: options.realtime },
    options,
  ).frames$;
}

/** Frames of an RTSP camera, reconnecting for ever (see CameraSource). TCP unless told `udp`. */
export function rtspFrames(
  url: string,
  options: CameraOptions & { transport?: 'tcp' | 'udp' } = {},
): Observable<Frame> {
  return new CameraSource({ kind: 'rtsp', url, transport: options.transport }, options).frames$;
}

/** Frames of a V4L2 camera (Linux), e.g. `/dev/video0`. */
export function deviceFrames(
  device: string,
  options: CameraOptions & { inputFormat?: string; captureSize?: string; framerate?: number } = {},
): Observable<Frame> {
  const { inputFormat, captureSize, framerate } = options;
  return new CameraSource({ kind: 'device', device, inputFormat, captureSize, framerate }, options).frames$;
}

/** Delay before reconnection attempt `attempt` (1-based): doubling, capped, minus jitter. */
export function backoffDelay(attempt: number, settings: Required<ReconnectOptions>): number {
  const full = Math.min(settings.maxMs, settings.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(full * (1 - settings.jitter * Math.random()));
}

function reconnectSettings(option: boolean | ReconnectOptions): Required<ReconnectOptions> | null {
  if (option === false) return null;
  const given = option === true ? {} : option;
  const settings = {
    baseMs: given.baseMs ?? 1000,
    maxMs: given.maxMs ?? 30_000,
    jitter: given.jitter ?? 0.2,
    stableMs: given.stableMs ?? 30_000,
    maxAttempts: given.maxAttempts ?? Infinity,
  };
  if (!(settings.baseMs > 0 && settings.maxMs >= settings.baseMs)) {
    throw new CameraError('reconnect needs 0 < baseMs <= maxMs');
  }
  if (!(settings.jitter >= 0 && settings.jitter < 1))
    throw new CameraError('reconnect jitter must be in [0, 1)');
  return settings;
}

/**
 * The RTSP URL with its host name replaced by the address it resolves to, looked up here rather
 * than by ffmpeg. The bundled ffmpeg is a static build, and a static glibc that resolves a name
 * loads the system's NSS modules, built for another glibc: on Debian 12 it dies of SIGSEGV for
 * any name, "localhost" included. Looking up in Node also bounds the wait (`timeoutMs`) and
 * says plainly that a name does not resolve. An address literal is passed through untouched.
 */
export async function resolveRtspHost(url: string, timeoutMs: number): Promise<string> {
  const m = RTSP_HOST.exec(url);
  if (!m || m[2] === '' || m[2].startsWith('[') || isIP(m[2]) !== 0) return url;
  const host = m[2];
  let timer: NodeJS.Timeout | undefined;
  try {
    const addresses = await Promise.race([
      lookup(host, { all: true }),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(
          () => reject(new Error(`unreachable (cannot resolve ${host}: no answer in ${timeoutMs} ms)`)),
          timeoutMs,
        );
      }),
    ]);
    // ffmpeg would try each address in turn; one must be chosen here. Cameras are nearly always
    // reached over IPv4 on a LAN, where a listed IPv6 address is often link-local or unrouted.
    const chosen = addresses.find((a) => a.family === 4) ?? addresses[0];
    if (!chosen) throw new Error(`unreachable (cannot resolve ${host}: no address)`);
    const { address, family } = chosen;
    return m[1] + (family === 6 ? `[${address}]` : address) + m[3];
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined) throw err;
    throw new Error(`unreachable (cannot resolve ${host}: ${code})`);
  } finally {
    clearTimeout(timer);
  }
}

// scheme and userinfo (to the last '@' before the path, as ffmpeg reads it), host, the rest.
const RTSP_HOST = /^(rtsps?:\/\/(?:[^/?#]*@)?)(\[[^\]]*\]|[^:/?#]*)(.*)$/is;

/** An authentication failure waits as long as the 5th attempt would (16 × baseMs, capped). */
export const AUTH_BACKOFF_ATTEMPT = 5;

interface Described {
  reason: string;
  cause: DownCause;
  detail?: string;
}

function describeStall(stallMs: number, frames: number): Described {
  const silence = `no frame for ${(stallMs / 1000).toFixed(1)} s`;
  // No frame at all means the camera never answered (or never started sending): to a user that
  // is "cannot reach it", not a stream that broke down.
  return frames === 0
    ? { reason: `timed out: ${silence} since connecting`, cause: 'timeout' }
    : { reason: `stalled: ${silence}`, cause: 'stalled' };
}

// ffmpeg's RTSP client reports a refused DESCRIBE/SETUP as "method X failed: 401 Unauthorized".
const STATUS = /\b([45]\d\d) ([A-Za-z][A-Za-z ]*[A-Za-z])/;
const UNREACHABLE =
  /No route to host|Network is unreachable|Host is unreachable|Name or service not known|Temporary failure in name resolution|nodename nor servname|Connection timed out/i;

function describeExit(
  exit: FfmpegExit,
  kind: CameraInput['kind'],
  frames: number,
  tidy: (text: string) => string,
): Described {
  if (exit.spawnError) return { reason: `cannot start ffmpeg: ${exit.spawnError}`, cause: 'failed' };
  // A signal nobody here sent is the news; errors printed earlier are older than it.
  if (exit.signal && !exit.stopped) {
    return { reason: `ffmpeg was killed by ${exit.signal}`, cause: 'killed', detail: exit.lastError };
  }
  if (exit.lastError) {
    const detail = tidy(exit.lastError);
    return kind === 'rtsp' ? classifyRtspError(detail) : { reason: detail, cause: 'failed' };
  }
  if (exit.code === 0) {
    if (exit.partialBytes > 0) {
      return { reason: `stream ended inside a frame (${exit.partialBytes} bytes left over)`, cause: 'ended' };
    }
    return {
      reason: kind === 'file' ? 'end of file' : `stream ended after ${frames} frames`,
      cause: 'ended',
    };
  }
  if (exit.signal) return { reason: `ffmpeg was killed by ${exit.signal}`, cause: 'killed' };
  return { reason: `ffmpeg exited with code ${exit.code}`, cause: 'failed' };
}

/** ffmpeg's words for an RTSP failure, sorted into a cause and led by it. */
function classifyRtspError(detail: string): Described {
  const status = STATUS.exec(detail);
  if (status && (status[1] === '401' || status[1] === '403')) {
    return { reason: `authentication failed (${status[1]} ${status[2]})`, cause: 'auth', detail };
  }
  if (status && status[1] === '404') {
    return { reason: `stream not found (404 ${status[2]})`, cause: 'not-found', detail };
  }
  if (status) {
    // Cameras answer 503 when their few streaming sessions are all taken, and while booting.
    return { reason: `camera error (${status[1]} ${status[2]})`, cause: 'failed', detail };
  }
  if (/Connection refused/i.test(detail)) return { reason: 'connection refused', cause: 'refused', detail };
  const unreachable = UNREACHABLE.exec(detail);
  if (unreachable) return { reason: `unreachable (${unreachable[0]})`, cause: 'unreachable', detail };
  if (/Invalid data found when processing input/i.test(detail)) {
    return { reason: 'not a valid RTSP answer (Invalid data found)', cause: 'protocol', detail };
  }
  if (/matches no streams|does not contain any stream/i.test(detail)) {
    return { reason: 'no video stream in the answer', cause: 'protocol', detail };
  }
  return { reason: detail, cause: 'failed' };
}

async function checkReadableFile(file: string): Promise<void> {
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile()) throw new CameraError(`${file}: not a file`);
    await fs.access(file, constants.R_OK);
  } catch (err) {
    if (err instanceof CameraError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CameraError(`${file}: no such file`);
    if (code === 'EACCES') throw new CameraError(`${file}: permission denied`);
    throw new CameraError(`${file}: cannot read (${(err as Error).message})`);
  }
}

function describeInput(input: CameraInput): string {
  switch (input.kind) {
    case 'file':
      return input.path;
    case 'rtsp':
      return maskUrl(input.url);
    case 'device':
      return input.device;
  }
}

function defaultCameraId(input: CameraInput): string {
  switch (input.kind) {
    case 'file':
      return path.basename(input.path, path.extname(input.path));
    case 'rtsp': {
      // host[:port]/path: stable, readable, and without the userinfo.
      const m = /^rtsps?:\/\/(?:[^/?#]*@)?([^?#]*)/i.exec(input.url);
      return (m?.[1] ?? 'rtsp').replace(/\/+$/, '');
    }
    case 'device':
      return path.basename(input.device);
  }
}
