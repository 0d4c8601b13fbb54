/**
 * One running ffmpeg decoding to raw I420 on stdout (and, when asked, the detector's picture of each
 * frame on fd 3): frames cut from stdout, log lines parsed from stderr (masked before anyone sees
 * them), and a stop that always ends in a reaped process.
 *
 * Why `child_process.spawn` and not fluent-ffmpeg: fluent-ffmpeg 2.1.3 (2024) is its last release;
 * its author archived the project in May 2025 and marked the package deprecated on npm ("Package
 * no longer supported"; fluent-ffmpeg/node-fluent-ffmpeg#1324). It is also only a command-line
 * builder: what this needs — exact-size frame cutting from stdout, stderr parsing for the output
 * size, SIGTERM-then-SIGKILL with reaping, masking of URLs in every line — is all below the
 * builder, and the command line is twenty fixed arguments (ffmpegArgs.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { i420Size, type DetectorPicture } from '../util/i420';
import { DETECTOR_PICTURE_FD } from './ffmpegArgs';
import { FrameCutter } from './frameCutter';
import { FramePairer } from './framePairer';
import type { SecretMasker } from './maskUrl';

export type FfmpegLogLevel = 'panic' | 'fatal' | 'error' | 'warning' | 'info' | 'verbose' | 'debug' | 'trace';

export interface FfmpegLogLine {
  level: FfmpegLogLevel;
  /** Masked; the component prefix is kept ("rtsp: method DESCRIBE failed: 401 Unauthorized"). */
  message: string;
}

export interface FfmpegExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when stop() ended it (teardown, stall): not a failure of the input. */
  stopped: boolean;
  /** The process could not be started at all (already masked). */
  spawnError?: string;
  /** What ffmpeg's last error lines said, if anything (masked). */
  lastError?: string;
  /** Bytes of a frame cut short by the end of the stream. */
  partialBytes: number;
}

export interface FfmpegProcessOptions {
  masker: SecretMasker;
  /** Known output size (when the command scales to a fixed size); otherwise read from stderr. */
  width?: number;
  height?: number;
  /** How long SIGTERM may take before SIGKILL. */
  graceMs?: number;
  /** The command writes a detector picture of each frame to fd 3 (ffmpegArgs with `detectorInput`). */
  detectorPicture?: boolean;
}

export interface FfmpegHandlers {
  /** One frame's I420 planes (see src/util/i420.ts), and its detector picture when there is one. */
  onFrame(planes: Buffer, width: number, height: number, picture?: DetectorPicture): void;
  onLog(line: FfmpegLogLine): void;
  /** Called exactly once, after the process has exited and its pipes are drained. */
  onExit(exit: FfmpegExit): void;
}

const LEVELS = 'panic|fatal|error|warning|info|verbose|debug|trace';
// "[rtsp @ 0x55d0c0] [error] method DESCRIBE failed" — context prefixes come before the level.
const LOG_LINE = new RegExp(`^((?:\\[[^\\]]*\\] )*?)\\[(${LEVELS})\\] ?(.*)$`);
// "Output #0, rawvideo, to 'pipe:3':", then that output's stream line; "0x18424752" in the codec tag
// must not be taken for a size.
const OUTPUT_HEADER = /^Output #(\d+), rawvideo, to 'pipe:(\d+)'/;
const OUTPUT_SIZE = /Stream #(\d+):\d+.*?: Video: rawvideo\b.*?, (\d{1,5})x(\d{1,5})[\s,]/;
const MAX_LINE = 8192;
/** Raw output kept while the frame size is still unknown, before giving up on the stream. */
const MAX_UNSIZED_BYTES = 64 * 1024 * 1024;
/** Pipe reads of detector pictures kept while their size is unknown (a few pictures' worth). */
const MAX_UNSIZED_PICTURE_CHUNKS = 64;

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** ffmpeg processes started here and not yet exited (for diagnostics and tests). */
export function runningFfmpegCount(): number {
  return live.size;
}

export class FfmpegProcess {
  private readonly child: ChildProcess;
  private cutter: FrameCutter | null = null;
  private unsized: Buffer[] = [];
  private unsizedBytes = 0;
  /** Output number → the pipe it writes to, from the "Output #n" lines. */
  private readonly outputPipes = new Map<number, number>();
  private pictureCutter: FrameCutter | null = null;
  private unsizedPictures: Buffer[] = [];
  private readonly pairer: FramePairer | null;
  private lastError: string | undefined;
  private previousError: string | undefined;
  private spawnError: string | undefined;
  private stopRequested = false;
  private finished = false;
  private readonly exited: Promise<void>;
  private termTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private stderrTail = '';

  constructor(
    binary: string,
    args: string[],
    private readonly options: FfmpegProcessOptions,
    private readonly handlers: FfmpegHandlers,
  ) {
    this.pairer = options.detectorPicture
      ? new FramePairer(
          ({ planes, width, height }, picture) => this.handlers.onFrame(planes, width, height, picture),
          (why) => this.handlers.onLog({ level: 'warning', message: why }),
        )
      : null;
    if (options.width && options.height) this.setSize(options.width, options.height);
    const stdio = ['ignore', 'pipe', 'pipe'] as Array<'ignore' | 'pipe'>;
    if (this.pairer) stdio[DETECTOR_PICTURE_FD] = 'pipe';
    this.child = spawn(binary, args, { stdio, windowsHide: true });
    live.add(this.child);
    installExitHook();

    this.exited = new Promise<void>((resolve) => {
      // 'close' rather than 'exit': it comes after stdout is drained, so the last frames of a
      // file are delivered before completion is decided.
      this.child.once('close', (code, signal) => {
        this.finish(code, signal);
        resolve();
      });
      this.child.on('error', (err) => {
        // Without a pid the binary never started, and no 'close' is guaranteed to follow.
        if (this.child.pid !== undefined) return;
        this.spawnError = options.masker.mask(err.message.split('\n')[0]);
        this.finish(null, null);
        resolve();
      });
    });

    const stdout = this.child.stdout!;
    const stderr = this.child.stderr!;
    stdout.on('data', (chunk: Buffer) => this.onStdout(chunk));
    stderr.setEncoding('utf8');
    stderr.on('data', (text: string) => this.onStderr(text));
    // A destroyed pipe can report EPIPE/ECONNRESET; the exit path handles the process itself.
    stdout.on('error', () => undefined);
    stderr.on('error', () => undefined);
    const pictures = this.pictureStream;
    if (pictures) {
      pictures.on('data', (chunk: Buffer) => this.onPictureData(chunk));
      pictures.on('error', () => undefined);
    }
  }

  private get pictureStream(): (NodeJS.ReadableStream & { destroy(): void }) | undefined {
    return this.pairer ? (this.child.stdio[DETECTOR_PICTURE_FD] as never) : undefined;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Ends the process: stdout is closed first (a writer blocked on a full pipe gets EPIPE instead
   * of waiting for a reader that is gone), then SIGTERM, then SIGKILL after the grace period.
   * Resolves once the process has exited and been reaped.
   */
  stop(): Promise<void> {
    if (!this.finished && !this.stopRequested) {
      this.stopRequested = true;
      this.cutter?.stop();
      this.pictureCutter?.stop();
      this.pairer?.clear();
      this.child.stdout?.destroy();
      this.pictureStream?.destroy();
      if (this.running) {
        const grace = this.options.graceMs ?? 2000;
        this.child.kill('SIGTERM');
        // ffmpeg's interrupt callback aborts a blocking network read only from the second
        // signal on (the first merely asks the main loop to finish), and a hung camera is
        // exactly a blocking read. Exiting by signal rather than SIGKILL lets it send TEARDOWN,
        // which frees the session on cameras that allow only a few.
        this.termTimer = setTimeout(
          () => this.running && this.child.kill('SIGTERM'),
          Math.min(250, grace / 3),
        );
        this.killTimer = setTimeout(() => this.running && this.child.kill('SIGKILL'), grace);
      }
    }
    return this.exited;
  }

  private get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private setSize(width: number, height: number): void {
    const pairer = this.pairer;
    this.cutter = new FrameCutter(i420Size(width, height), (planes) =>
      pairer ? pairer.frame({ planes, width, height }) : this.handlers.onFrame(planes, width, height),
    );
  }

  private setPictureSize(width: number, height: number): void {
    const pairer = this.pairer!;
    this.pictureCutter = new FrameCutter(width * height * 3, (rgb) => pairer.picture({ rgb, width, height }));
    const waiting = this.unsizedPictures;
    this.unsizedPictures = [];
    for (const chunk of waiting) this.pictureCutter.push(chunk);
  }

  private onPictureData(chunk: Buffer): void {
    if (this.stopRequested || this.pairer!.givenUp) return;
    if (this.pictureCutter) this.pictureCutter.push(chunk);
    else if (this.unsizedPictures.length < MAX_UNSIZED_PICTURE_CHUNKS) this.unsizedPictures.push(chunk);
    // Dropping bytes would shift every later picture: no pictures at all rather than wrong ones.
    else this.pairer!.giveUp('no size for the detector pictures from ffmpeg');
  }

  private onStdout(chunk: Buffer): void {
    if (this.stopRequested) return;
    if (this.cutter) {
      this.cutter.push(chunk);
      return;
    }
    // stdout and stderr are separate pipes: frame bytes can arrive before the line that says
    // how big a frame is, so they wait here until it is read.
    this.unsized.push(chunk);
    this.unsizedBytes += chunk.length;
    if (this.unsizedBytes > MAX_UNSIZED_BYTES) {
      this.lastError = 'could not read the frame size from ffmpeg';
      void this.stop();
    }
  }

  private onStderr(text: string): void {
    const lines = (this.stderrTail + text).split(/\r?\n|\r/);
    this.stderrTail = lines.pop() ?? '';
    if (this.stderrTail.length > MAX_LINE) {
      lines.push(this.stderrTail);
      this.stderrTail = '';
    }
    for (const line of lines) if (line.trim() !== '') this.onLine(line.slice(0, MAX_LINE));
  }

  private onLine(raw: string): void {
    const line = parseLogLine(this.options.masker.mask(raw));
    if (!this.cutter || (this.pairer && !this.pictureCutter)) this.readSize(line.message);
    if (line.level === 'error' || line.level === 'fatal' || line.level === 'panic') {
      this.previousError = this.lastError;
      this.lastError = line.message;
    }
    this.handlers.onLog(line);
  }

  private readSize(message: string): void {
    const header = OUTPUT_HEADER.exec(message);
    if (header) this.outputPipes.set(Number(header[1]), Number(header[2]));
    // Only after an output header: the input's own stream line can be rawvideo too.
    const m = this.outputPipes.size > 0 ? OUTPUT_SIZE.exec(message) : null;
    if (!m) return;
    const pipe = this.outputPipes.get(Number(m[1]));
    const width = Number(m[2]);
    const height = Number(m[3]);
    if (pipe === DETECTOR_PICTURE_FD && this.pairer && !this.pictureCutter)
      this.setPictureSize(width, height);
    if (pipe !== 1 || this.cutter) return;
    this.setSize(width, height);
    const waiting = this.unsized;
    this.unsized = [];
    this.unsizedBytes = 0;
    for (const chunk of waiting) this.cutter!.push(chunk);
  }

  private finish(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.termTimer);
    clearTimeout(this.killTimer);
    live.delete(this.child);
    if (this.stderrTail.trim() !== '') this.onLine(this.stderrTail);
    this.stderrTail = '';
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    this.pictureStream?.destroy();
    // The last frames of a stream that ended may still wait for pictures that will not come.
    if (!this.stopRequested) this.pairer?.flush();
    const partialBytes = (this.cutter?.pendingBytes ?? 0) + this.unsizedBytes;
    this.cutter?.stop();
    this.pictureCutter?.stop();
    this.unsized = [];
    this.unsizedPictures = [];
    this.handlers.onExit({
      code,
      signal,
      stopped: this.stopRequested,
      spawnError: this.spawnError,
      // ffmpeg's last error is often generic ("Invalid data found when processing input"); the
      // one before it usually says why ("moov atom not found").
      lastError:
        this.previousError && this.lastError && !this.lastError.includes(this.previousError)
          ? `${this.previousError} (${this.lastError})`
          : this.lastError,
      partialBytes,
    });
  }
}

/** Splits ffmpeg's `[ctx @ 0x…] [level] message` into a level and a readable message. */
export function parseLogLine(line: string): FfmpegLogLine {
  const m = LOG_LINE.exec(line);
  if (!m) return { level: 'info', message: line.trim() };
  const contexts = m[1]
    .split('] ')
    .map((c) =>
      c
        .replace(/^\[/, '')
        .replace(/ @ 0x[0-9a-f]+$/i, '')
        .trim(),
    )
    .filter((c) => c !== '');
  const message = m[3].trim();
  return {
    level: m[2] as FfmpegLogLevel,
    message: contexts.length ? `${contexts.join(': ')}: ${message}` : message,
  };
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A host that exits while cameras run must not leave decoders behind, orphaned to init.
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}
