/**
 * Skips the detector on frames of a camera where nothing has moved and nobody was seen. Most frames of a
 * home or office camera show an empty, still room; running the face detector on each of them is most
 * of what a camera costs (bench/RESULTS.md), and it finds nothing there. A still frame is one whose
 * brightness, sampled on a coarse grid, is the same as in the frame last detected on: a person walking
 * into view changes hundreds of samples, sensor noise and compression a handful.
 *
 * The detector still runs on every frame while the last detection found a face (so tracks are fed as
 * before), at least once every `maxIdleMs` (a face that appears without moving much is found within
 * that), and whenever the frame's size changes.
 */
import { pendingI420 } from '../util/i420';
import type { Frame } from '../types';

export interface StillSceneOptions {
  /** A sample has changed when its brightness moved by more than this, 0–255 (default 20). */
  pixelThreshold?: number;
  /**
   * Share of the samples that must change for the frame to count as moving (default 0.002: 0.2 %, 29
   * of the 14,400 samples of a 720p frame; a person far away across a 720p frame changes 1 % or more).
   */
  minChangedShare?: number;
  /** Longest time, ms by the frames' timestamps, between two detections of a still scene (default 1000). */
  maxIdleMs?: number;
  /** Samples across the frame's width (default 160: every 8th pixel of a 720p frame). */
  samplesAcross?: number;
}

/** Cameras remembered at most (the one detected on longest ago is forgotten first): 14 KB each. */
export const MAX_CAMERAS = 256;

interface CameraState {
  width: number;
  height: number;
  /** Brightness of the samples in the frame last detected on. */
  reference: Uint8Array;
  detectedTs: number;
  faces: number;
}

/** Decides, per camera, which frames need the detector; tell it what each detection found. */
export class StillSceneGate {
  readonly pixelThreshold: number;
  readonly minChangedShare: number;
  readonly maxIdleMs: number;
  readonly samplesAcross: number;
  private readonly cameras = new Map<string, CameraState>();
  /** The samples of the frame being checked (reused from frame to frame). */
  private scratch: Uint8Array | undefined;

  constructor(options: StillSceneOptions = {}) {
    this.pixelThreshold = options.pixelThreshold ?? 20;
    this.minChangedShare = options.minChangedShare ?? 0.002;
    this.maxIdleMs = options.maxIdleMs ?? 1000;
    this.samplesAcross = options.samplesAcross ?? 160;
    if (!(this.pixelThreshold >= 0 && this.pixelThreshold < 255))
      throw new RangeError(`stillScene: pixelThreshold must be 0–254, got ${this.pixelThreshold}`);
    if (!(this.minChangedShare >= 0 && this.minChangedShare <= 1))
      throw new RangeError(`stillScene: minChangedShare must be 0–1, got ${this.minChangedShare}`);
    if (!(this.maxIdleMs >= 0 && Number.isFinite(this.maxIdleMs)))
      throw new RangeError(`stillScene: maxIdleMs must be a number ≥ 0, got ${this.maxIdleMs}`);
    if (!(Number.isInteger(this.samplesAcross) && this.samplesAcross >= 8))
      throw new RangeError(`stillScene: samplesAcross must be a whole number ≥ 8, got ${this.samplesAcross}`);
  }

  /** Whether to run the detector on this frame. */
  needsDetection(frame: Frame): boolean {
    const state = this.cameras.get(frame.cameraId);
    if (
      !state ||
      state.faces > 0 ||
      state.width !== frame.width ||
      state.height !== frame.height ||
      !(Math.abs(frame.ts - state.detectedTs) < this.maxIdleMs)
    ) {
      return true;
    }
    this.scratch = sampleBrightness(frame, this.step(frame.width), this.scratch);
    const changed = countChanged(this.scratch, state.reference, this.pixelThreshold);
    return changed > this.minChangedShare * state.reference.length;
  }

  /** What the detector found on this frame: the frame becomes the camera's reference. */
  detected(frame: Frame, faces: number): void {
    const step = this.step(frame.width);
    const state = this.cameras.get(frame.cameraId);
    const reference =
      state && state.width === frame.width && state.height === frame.height ? state.reference : undefined;
    // Re-inserted so that the map's order is least recently detected first, for the bound below.
    this.cameras.delete(frame.cameraId);
    this.cameras.set(frame.cameraId, {
      width: frame.width,
      height: frame.height,
      reference: sampleBrightness(frame, step, reference),
      detectedTs: frame.ts,
      faces,
    });
    // Frames with ever new camera ids (a flow that sets a new topic per message) must not grow this for ever.
    if (this.cameras.size > MAX_CAMERAS) this.cameras.delete(this.cameras.keys().next().value as string);
  }

  private step(width: number): number {
    return Math.max(1, Math.floor(width / this.samplesAcross));
  }
}

/** Brightness of every `step`-th pixel of every `step`-th row, into `out` when it is the right size. */
export function sampleBrightness(frame: Frame, step: number, out?: Uint8Array): Uint8Array {
  const cols = Math.ceil(frame.width / step);
  const rows = Math.ceil(frame.height / step);
  const samples = out && out.length === cols * rows ? out : new Uint8Array(cols * rows);
  const planes = pendingI420(frame);
  let k = 0;
  if (planes) {
    // The luma plane comes first: its bytes are the brightness.
    for (let y = 0; y < frame.height; y += step) {
      const row = y * frame.width;
      for (let x = 0; x < frame.width; x += step) samples[k++] = planes[row + x];
    }
  } else {
    const rgb = frame.rgb;
    for (let y = 0; y < frame.height; y += step) {
      const row = y * frame.width;
      for (let x = 0; x < frame.width; x += step) {
        const i = (row + x) * 3;
        samples[k++] = (rgb[i] + 2 * rgb[i + 1] + rgb[i + 2]) >> 2;
      }
    }
  }
  return samples;
}

/** How many samples differ by more than `threshold`. */
function countChanged(now: Uint8Array, reference: Uint8Array, threshold: number): number {
  let changed = 0;
  for (let k = 0; k < now.length; k++) {
    const d = now[k] - reference[k];
    if (d > threshold || d < -threshold) changed++;
  }
  return changed;
}
