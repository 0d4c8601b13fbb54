import { Subscription } from 'rxjs';

import type { Frame } from '../types';
import { CameraLog, type CameraLogLine } from './cameraLog';
import type { CameraEvent, CameraSource } from './cameraSource';

/** What a status line shows of a camera: one state at a time, the latest wins. */
export type CameraState =
  | { state: 'connecting' }
  | { state: 'up'; width: number; height: number }
  | { state: 'fps'; fps: number }
  | { state: 'down'; reason: string }
  /** `reason` is the last failure, kept in view between attempts (the log no longer repeats it). */
  | { state: 'reconnecting'; attempt: number; delayMs: number; reason: string }
  | { state: 'stalled'; silentMs: number }
  | { state: 'ended'; frames: number }
  | { state: 'failed'; message: string }
  | { state: 'stopped' };

/** Counts what a camera does (the Prometheus camera meter fits). */
export interface CameraObserver {
  starting(): void;
  frame(): void;
  event(event: CameraEvent): void;
  failed(reason: string): void;
  stopped(): void;
  close(): void;
}

export interface CameraRunnerHooks {
  frame(frame: Frame): void;
  /**
   * The events that tell something new, masked by the source (no password): the first failure of a
   * streak and its first retry, not every attempt of a camera that stays away for the same reason
   * (those go to the counts and the status line only).
   */
  event(event: CameraEvent): void;
  state(state: CameraState): void;
  /** A line for the log, only when a person needs one (start, changes, sparse reminders, recovery). */
  log(line: CameraLogLine): void;
  /** The stream failed for good (it is not retried). */
  failed(err: Error): void;
}

/** How often the frames-per-second state is given: a stream sends 15 frames a second. */
const FPS_WINDOW_MS = 1000;

/**
 * A camera started and stopped on demand, its events turned into states for a status line, log lines
 * and counts: what the Node-RED camera node and a script that shows a camera's health share. Stopping
 * unsubscribes, which stops ffmpeg: nothing outlives `stop()`.
 */
export class CameraRunner {
  private running: Subscription | undefined;
  private readonly log: CameraLog;
  private lastReason = '';
  /** The failure of the current streak of retries, once told; cleared when the camera is up. */
  private toldReason: string | undefined;
  private toldRetry = false;
  private windowStart = 0;
  private windowFrames = 0;

  constructor(
    readonly camera: CameraSource,
    private readonly hooks: CameraRunnerHooks,
    private readonly observer?: CameraObserver,
  ) {
    this.log = new CameraLog(camera.cameraId);
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  start(): void {
    if (this.running) return;
    const subscription = new Subscription();
    const finish = () => {
      subscription.unsubscribe();
      if (this.running === subscription) this.running = undefined;
    };
    this.running = subscription;
    this.observer?.starting();
    subscription.add(this.camera.events$.subscribe((event) => this.onEvent(event)));
    subscription.add(
      this.camera.frames$.subscribe({
        next: (frame) => {
          this.countFrame(frame.ts);
          this.observer?.frame();
          this.hooks.frame(frame);
        },
        error: (err: Error) => {
          finish();
          this.observer?.failed(err.message);
          this.hooks.state({ state: 'failed', message: err.message });
          this.hooks.failed(err);
        },
        complete: finish,
      }),
    );
  }

  /** Stops the camera when asked to (not a failure): the state says so. */
  stop(): void {
    const subscription = this.running;
    this.running = undefined;
    subscription?.unsubscribe();
    this.observer?.stopped();
    this.hooks.state({ state: 'stopped' });
  }

  /** Stops for good, quietly (the holder goes away). */
  close(): void {
    const subscription = this.running;
    this.running = undefined;
    subscription?.unsubscribe();
    this.observer?.close();
  }

  private countFrame(now: number): void {
    this.windowFrames++;
    if (this.windowStart === 0) {
      this.windowStart = now;
      this.windowFrames = 0;
      return;
    }
    const elapsed = now - this.windowStart;
    if (elapsed < FPS_WINDOW_MS) return;
    this.hooks.state({ state: 'fps', fps: (this.windowFrames * 1000) / elapsed });
    this.windowStart = now;
    this.windowFrames = 0;
  }

  private onEvent(event: CameraEvent): void {
    this.observer?.event(event);
    const line = this.log.note(event);
    if (line) this.hooks.log(line);
    const state = this.stateOf(event);
    if (state) this.hooks.state(state);
    if (this.isNews(event)) this.hooks.event(event);
  }

  private isNews(event: CameraEvent): boolean {
    switch (event.type) {
      case 'up':
        this.toldReason = undefined;
        this.toldRetry = false;
        return true;
      case 'connecting':
        return event.attempt === 0;
      case 'down':
        if (event.reason === this.toldReason) return false;
        this.toldReason = event.reason;
        this.toldRetry = false;
        return true;
      case 'reconnecting':
        if (this.toldRetry) return false;
        this.toldRetry = true;
        return true;
      case 'log':
        // ffmpeg's lines of each failed attempt say again what the streak's first attempt said.
        return this.toldReason === undefined;
      default:
        return true;
    }
  }

  private stateOf(event: CameraEvent): CameraState | undefined {
    switch (event.type) {
      case 'connecting':
        return event.attempt === 0 ? { state: 'connecting' } : undefined;
      case 'up':
        this.windowStart = 0;
        this.lastReason = '';
        return { state: 'up', width: event.width, height: event.height };
      case 'down':
        this.lastReason = event.reason;
        return { state: 'down', reason: event.reason };
      case 'reconnecting':
        return {
          state: 'reconnecting',
          attempt: event.attempt,
          delayMs: event.delayMs,
          reason: this.lastReason,
        };
      case 'stalled':
        return { state: 'stalled', silentMs: event.silentMs };
      case 'end':
        return { state: 'ended', frames: event.frames };
      default:
        return undefined;
    }
  }
}
