/** What a camera did since the last report: the `{fps, lagMs, faces}` of `<prefix>/<camera>/status`. */
export interface CameraHealth {
  camera: string;
  /** Frames that reached this point per second, over the report's window. */
  fps: number;
  /** Mean delay from a frame being taken (`frame.ts`) to it reaching this point; null without frames. */
  lagMs: number | null;
  /** Faces in the latest frame. */
  faces: number;
}

interface Window {
  frames: number;
  lagSum: number;
  faces: number;
  lastFrameAt: number;
}

/** A camera silent for this long is dropped from the reports, so that renamed cameras do not linger. */
const FORGET_AFTER_MS = 60 * 60_000;

/**
 * Counts the frames of each camera as they pass, for periodic health reports. A camera that stops
 * delivering is still reported, with fps 0, until it has been silent for an hour: a dead camera
 * must show as one, not vanish.
 */
export class CameraHealthMeter {
  private readonly windows = new Map<string, Window>();
  private windowStart: number;

  constructor(now = Date.now()) {
    this.windowStart = now;
  }

  observe(camera: string, frameTs: number, faces: number, now = Date.now()): void {
    let w = this.windows.get(camera);
    if (!w) {
      w = { frames: 0, lagSum: 0, faces: 0, lastFrameAt: now };
      this.windows.set(camera, w);
    }
    w.frames++;
    // A frame stamped in the future (a camera's clock ahead of ours) counts as no delay.
    w.lagSum += Number.isFinite(frameTs) ? Math.max(0, now - frameTs) : 0;
    w.faces = faces;
    w.lastFrameAt = now;
  }

  /** The report for the window since the last call, and a new window. */
  report(now = Date.now()): CameraHealth[] {
    const seconds = Math.max(1e-3, (now - this.windowStart) / 1000);
    this.windowStart = now;
    const out: CameraHealth[] = [];
    for (const [camera, w] of this.windows) {
      if (now - w.lastFrameAt > FORGET_AFTER_MS) {
        this.windows.delete(camera);
        continue;
      }
      out.push({
        camera,
        fps: Math.round((w.frames / seconds) * 10) / 10,
        lagMs: w.frames === 0 ? null : Math.round(w.lagSum / w.frames),
        faces: w.frames === 0 ? 0 : w.faces,
      });
      w.frames = 0;
      w.lagSum = 0;
    }
    return out;
  }
}
