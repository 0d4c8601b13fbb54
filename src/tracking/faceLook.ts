/**
 * What a tracked face looks like, coarsely, and whether that changed between two detections: a check that
 * costs a few hundred pixel reads where an embedding costs milliseconds, so that a track can go longer between
 * embeddings without keeping a name on the wrong face.
 *
 * Trackers follow boxes, and a box can pass to another face: a scene cut, a camera switching presets, a photo
 * held up in place of a face. Until the next embedding the track keeps the name of the face it began with. Two
 * measures of the box's contents, each compared with the track's previous detection:
 *
 * - colour: the mean chroma (Cb, Cr) of the box's inner half, which is mostly skin and varies little with pose or
 *   motion. Measured on the bench clips (bench/faceLook.ts; bench/RESULTS.md, "Settled tracks embedded every 30
 *   frames"), consecutive detections of one face moved it by at most 1.9 levels (p99 1.2–1.7), and the times a box
 *   passed to another face by 7.5–28;
 * - layout: a 12×12 grid of mean brightness over the box, zero-mean and unit length, compared by correlation.
 *   One face: 0.39 at the least (a singer turning his head, detection every 2nd frame); another person's photo
 *   in the same place: below 0 (-0.30 to -0.05). Alone it does not catch a cut to a face of the same framing
 *   (hamilton's cut: 0.33), which the colour does.
 *
 * Two people framed exactly alike (LFW photos, the same box) are told apart 91 % of the time; a swap the look
 * misses keeps the old name until the track's next embedding.
 *
 * A change here does not rename anything: it only asks for an embedding now, and the embedding decides.
 */

import type { Box, Frame } from '../types';
import { pendingI420 } from '../util/i420';

/** Cells per side of the brightness grid. */
const GRID = 12;
/** Samples per side of each cell. */
const CELL_SAMPLES = 3;

export interface FaceLook {
  /** Brightness of GRID × GRID cells, zero mean, unit length (all zero for a flat box). */
  layout: Float32Array;
  /** No brightness layout to speak of: a wall, a covered lens, a blank test frame. */
  flat: boolean;
  cb: number;
  cr: number;
}

export interface LookChangeThresholds {
  /** Chroma distance, in 8-bit levels, above which the face changed (default 4.5). */
  chroma?: number;
  /** Layout correlation below which the face changed (default 0.2). */
  layout?: number;
}

export const DEFAULT_LOOK_THRESHOLDS: Required<LookChangeThresholds> = { chroma: 4.5, layout: 0.2 };

/**
 * The look of the face in `box` (source pixels; clipped to the frame). Reads the frame's I420 planes while
 * its RGB has not been made, so that checking a face never converts a whole frame; undefined for a box with
 * no pixels inside the frame.
 */
export function faceLook(frame: Frame, box: Box): FaceLook | undefined {
  const x0 = Math.max(0, Math.floor(box[0]));
  const y0 = Math.max(0, Math.floor(box[1]));
  const x1 = Math.min(frame.width, Math.ceil(box[2]));
  const y1 = Math.min(frame.height, Math.ceil(box[3]));
  // Also false for NaN: no pixels of the frame inside the box.
  if (!(x1 > x0 && y1 > y0)) return undefined;
  const pixels = pixelReader(frame);
  const layout = new Float32Array(GRID * GRID);
  const w = x1 - x0;
  const h = y1 - y0;
  const step = CELL_SAMPLES * GRID;
  let mean = 0;
  for (let gy = 0; gy < GRID; gy++) {
    for (let gx = 0; gx < GRID; gx++) {
      let sum = 0;
      for (let sy = 0; sy < CELL_SAMPLES; sy++) {
        const y = y0 + Math.floor(((gy * CELL_SAMPLES + sy + 0.5) * h) / step);
        for (let sx = 0; sx < CELL_SAMPLES; sx++) {
          sum += pixels.luma(x0 + Math.floor(((gx * CELL_SAMPLES + sx + 0.5) * w) / step), y);
        }
      }
      const cell = sum / (CELL_SAMPLES * CELL_SAMPLES);
      layout[gy * GRID + gx] = cell;
      mean += cell;
    }
  }
  mean /= layout.length;
  let norm = 0;
  for (let i = 0; i < layout.length; i++) {
    layout[i] -= mean;
    norm += layout[i] * layout[i];
  }
  // A flat box (a wall, a covered lens) has no layout; below a thousandth of a level of spread, what is left
  // after the mean is rounding, which normalising would blow up into a random pattern.
  const flat = !(norm > 1e-6 * layout.length);
  if (!flat) {
    const scale = 1 / Math.sqrt(norm);
    for (let i = 0; i < layout.length; i++) layout[i] *= scale;
  } else {
    layout.fill(0);
  }
  // The inner half of the box: the face itself, not the background or hair around it.
  const cx0 = x0 + Math.floor(w / 4);
  const cx1 = Math.max(cx0 + 1, x0 + Math.ceil((3 * w) / 4));
  const cy0 = y0 + Math.floor(h / 4);
  const cy1 = Math.max(cy0 + 1, y0 + Math.ceil((3 * h) / 4));
  // At most 16 × 16 samples: a big face needs no more to find its mean colour.
  const sx = Math.max(1, Math.floor((cx1 - cx0) / 16));
  const sy = Math.max(1, Math.floor((cy1 - cy0) / 16));
  let cb = 0;
  let cr = 0;
  let n = 0;
  for (let y = cy0; y < cy1; y += sy) {
    for (let x = cx0; x < cx1; x += sx) {
      cb += pixels.cb(x, y);
      cr += pixels.cr(x, y);
      n++;
    }
  }
  return { layout, flat, cb: cb / n, cr: cr / n };
}

/**
 * How far apart two looks are: chroma distance in levels, layout correlation (−1..1; two flat boxes are alike, 1,
 * and a flat box is nothing like a face, 0).
 */
export function lookDistance(a: FaceLook, b: FaceLook): { chroma: number; layout: number } {
  let layout = a.flat && b.flat ? 1 : 0;
  for (let i = 0; i < a.layout.length; i++) layout += a.layout[i] * b.layout[i];
  return { chroma: Math.hypot(a.cb - b.cb, a.cr - b.cr), layout };
}

/** Whether `b` is likely another face than `a`. */
export function lookChanged(a: FaceLook, b: FaceLook, thresholds: LookChangeThresholds = {}): boolean {
  const d = lookDistance(a, b);
  return (
    d.chroma > (thresholds.chroma ?? DEFAULT_LOOK_THRESHOLDS.chroma) ||
    d.layout < (thresholds.layout ?? DEFAULT_LOOK_THRESHOLDS.layout)
  );
}

interface PixelReader {
  luma(x: number, y: number): number;
  cb(x: number, y: number): number;
  cr(x: number, y: number): number;
}

function pixelReader(frame: Frame): PixelReader {
  const planes = pendingI420(frame);
  const width = frame.width;
  if (planes) {
    const cw = Math.ceil(width / 2);
    const cbAt = width * frame.height;
    const crAt = cbAt + cw * Math.ceil(frame.height / 2);
    return {
      luma: (x, y) => planes[y * width + x],
      cb: (x, y) => planes[cbAt + (y >> 1) * cw + (x >> 1)],
      cr: (x, y) => planes[crAt + (y >> 1) * cw + (x >> 1)],
    };
  }
  const rgb = frame.rgb;
  return {
    // BT.601 luma and chroma, limited range, as ffmpeg's planes have them: both kinds of frame give one look.
    luma: (x, y) => {
      const i = (y * width + x) * 3;
      return 16 + (65.481 * rgb[i] + 128.553 * rgb[i + 1] + 24.966 * rgb[i + 2]) / 255;
    },
    cb: (x, y) => {
      const i = (y * width + x) * 3;
      return 128 + (-37.797 * rgb[i] - 74.203 * rgb[i + 1] + 112 * rgb[i + 2]) / 255;
    },
    cr: (x, y) => {
      const i = (y * width + x) * 3;
      return 128 + (112 * rgb[i] - 93.786 * rgb[i + 1] - 18.214 * rgb[i + 2]) / 255;
    },
  };
}
