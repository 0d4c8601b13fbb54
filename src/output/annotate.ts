import { concatMap, type OperatorFunction } from 'rxjs';
import sharp from 'sharp';
import { i420ToRgb, pendingI420 } from '../util/i420';
import { UNKNOWN, type Face, type FaceFrame, type Frame } from '../types';

/**
 * Boxes and labels drawn straight into a copy of the frame's RGB buffer, then one JPEG encode.
 *
 * Why not an SVG overlay composited by sharp: measured on the 2-core target at 1280×720 with four
 * labelled faces (bench/output.ts), SVG rasterising plus compositing cost about 20 ms on top of the
 * encode, while drawing here costs well under a millisecond; the design budget for annotate and
 * JPEG together is 8 ms. Text still comes from a real font: each character is rendered once
 * through sharp's SVG renderer into a cached alpha mask, then blended in by hand.
 */

export type Rgb = readonly [number, number, number];

export const COLOURS = {
  /** Similarity well above the threshold. */
  green: [40, 200, 60],
  yellow: [250, 210, 30],
  /** Just above the threshold: a match, but one to doubt. */
  orange: [250, 130, 20],
  /** Unknown: below the threshold. */
  red: [230, 40, 40],
  /** Ambiguous: two enrolled people matched about equally well, so neither is named. */
  purple: [190, 90, 240],
  /** Detected, not (yet) identified. */
  blue: [40, 160, 240],
  /** Failed the quality gate (`face.rejected`). */
  grey: [150, 150, 150],
} as const satisfies Record<string, Rgb>;

export interface AnnotateOptions {
  /**
   * The match threshold the identities were given with; colours are relative to it. Without it
   * every named face is drawn green, since how sure the match was cannot be told.
   */
  threshold?: number;
  /**
   * How far above the threshold a similarity must be for green, and for yellow; below that a
   * named face is orange. Default: 0.1 and 0.05 at a threshold of 0.52 (FaceRes: genuine pairs of
   * the test photos mostly score 0.6–0.75, so green is the usual case for a right match and orange
   * flags the few within 0.05 of the threshold, where wrong matches also fall), in proportion to the
   * room above other thresholds (1 − threshold over 0.48): 0.0167 and 0.0083 at face-api's 0.92.
   */
  bands?: { green?: number; yellow?: number };
  /** JPEG quality, 1..100 (default 80). */
  quality?: number;
  /** Box line width in pixels (default: the frame's height / 360, at least 2). */
  lineWidth?: number;
  /** Label font size in pixels (default: the frame's height / 45, at least 12: 16 px at 720p). */
  fontSize?: number;
  /** Frames per second to print in the corner. */
  fps?: number;
  /** Print the camera id and the frame's time in the corner (default true). */
  showCamera?: boolean;
  /** More text for the corner. */
  text?: string;
}

/** Longest label drawn; longer names are cut with an ellipsis. */
const MAX_LABEL = 40;

/** The frame with its faces drawn on it, as a JPEG of the frame's size. */
export async function annotateFrame(item: FaceFrame, options: AnnotateOptions = {}): Promise<Buffer> {
  const { frame } = item;
  const canvas = canvases.take(frame.width * frame.height * 3);
  try {
    await drawInto(item, options, canvas);
    // Huffman optimisation off: measured 8.4 → 3.7 ms at 720p for JPEGs about 1% larger.
    return await sharp(canvas, { raw: { width: frame.width, height: frame.height, channels: 3 } })
      .jpeg({ quality: options.quality ?? 80, optimiseCoding: false })
      .toBuffer();
  } finally {
    canvases.give(canvas);
  }
}

/**
 * Frame-sized scratch buffers, reused: a fresh 2.7 MB buffer per 720p frame cost 1.6 ms in page
 * faults, a reused one 0.2 ms to fill. A few per size, as encodes of several streams overlap.
 */
class CanvasPool {
  private readonly free = new Map<number, Buffer[]>();

  take(bytes: number): Buffer {
    return this.free.get(bytes)?.pop() ?? Buffer.allocUnsafeSlow(bytes);
  }

  give(canvas: Buffer): void {
    const list = this.free.get(canvas.length) ?? [];
    if (list.length >= 4) return;
    list.push(canvas);
    this.free.set(canvas.length, list);
  }
}

const canvases = new CanvasPool();

/**
 * The drawing alone: a new RGB buffer of the frame's size (the frame itself is never written to,
 * since other subscribers may hold it).
 */
export async function drawAnnotations(item: FaceFrame, options: AnnotateOptions = {}): Promise<Buffer> {
  const canvas = Buffer.allocUnsafe(item.frame.width * item.frame.height * 3);
  await drawInto(item, options, canvas);
  return canvas;
}

/** Copies the frame into `canvas` and draws on it. */
async function drawInto(item: FaceFrame, options: AnnotateOptions, canvas: Buffer): Promise<void> {
  const { frame, faces } = item;
  const planes = pendingI420(frame);
  if (!planes && frame.rgb.length !== frame.width * frame.height * 3) {
    throw new Error(
      `annotateFrame: expected ${frame.width * frame.height * 3} bytes for ${frame.width}×${frame.height} RGB, got ${frame.rgb.length}`,
    );
  }
  const fontSize = Math.max(8, Math.round(options.fontSize ?? Math.max(12, frame.height / 45)));
  const lineWidth = Math.max(1, Math.round(options.lineWidth ?? Math.max(2, frame.height / 360)));
  const font = fontFor(fontSize);
  const header = headerText(frame, options);
  const labels = faces.map((f) => labelOf(f));
  await font.prepare([header, ...labels.map((l) => l.text)].join(''));

  // A camera frame still in YUV is converted straight into the canvas: the frame itself need not
  // keep an RGB copy it may never use again.
  if (planes) i420ToRgb(planes, frame.width, frame.height, canvas);
  else frame.rgb.copy(canvas);
  const image: Canvas = { rgb: canvas, width: frame.width, height: frame.height };
  faces.forEach((face, i) => {
    const colour = colourOf(face, options);
    const [x1, y1, x2, y2] = face.box.map(Math.round);
    strokeRect(image, x1, y1, x2, y2, lineWidth, colour);
    const text = labels[i].text;
    if (!text) return;
    const pad = Math.max(2, Math.round(fontSize / 6));
    const w = font.width(text) + 2 * pad;
    const h = font.lineHeight + pad;
    // Above the box when it fits, else just inside its top edge.
    const top = y1 - lineWidth - h >= 0 ? y1 - lineWidth - h + 1 : Math.max(0, y1);
    const left = Math.min(Math.max(0, x1 - Math.floor(lineWidth / 2)), Math.max(0, frame.width - w));
    fillRect(image, left, top, left + w, top + h, colour, 1);
    font.draw(image, text, left + pad, top + Math.floor(pad / 2), textColourOn(colour));
  });
  if (header) {
    const pad = Math.max(2, Math.round(fontSize / 4));
    fillRect(image, 0, 0, font.width(header) + 2 * pad, font.lineHeight + pad, [0, 0, 0], 0.55);
    font.draw(image, header, pad, Math.floor(pad / 2), [255, 255, 255]);
  }
}

export interface AnnotateOperatorOptions extends AnnotateOptions {
  /** Measure and print the stream's frame rate (from the frames' `ts`), unless `fps` is given. */
  showFps?: boolean;
}

/** Adds `jpeg`, the annotated frame, to every item; order kept, one frame at a time. */
export function annotate(
  options: AnnotateOperatorOptions = {},
): OperatorFunction<FaceFrame, FaceFrame & { jpeg: Buffer }> {
  const { showFps, ...drawOptions } = options;
  const rate = new RateMeter();
  return concatMap(async (item) => {
    const fps = drawOptions.fps ?? (showFps ? rate.tick(item.frame.ts) : undefined);
    return { ...item, jpeg: await annotateFrame(item, { ...drawOptions, fps }) };
  });
}

/** Frame rate from timestamps, smoothed over about the last ten frames. */
class RateMeter {
  private last: number | undefined;
  private interval: number | undefined;

  tick(ts: number): number | undefined {
    if (this.last !== undefined && ts > this.last) {
      const dt = ts - this.last;
      this.interval = this.interval === undefined ? dt : this.interval * 0.9 + dt * 0.1;
    }
    this.last = ts;
    return this.interval ? 1000 / this.interval : undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// What to draw

/**
 * The label of a face: its name and similarity (or why the gate rejected it, or `A or B?` when it is
 * ambiguous), and its track.
 */
export function labelOf(face: Face & { rejected?: readonly string[] }): { text: string } {
  const parts: string[] = [];
  if (face.rejected && face.rejected.length > 0) parts.push(face.rejected.join(' '));
  else if (face.identity) {
    const id = face.identity;
    if (id.name !== UNKNOWN) parts.push(`${cleanName(id.name)} ${id.similarity.toFixed(2)}`);
    else if (id.ambiguous)
      parts.push(
        `${id.topK
          .slice(0, 2)
          .map((c) => cleanName(c.name))
          .join(' or ')}?`,
      );
    else parts.push(UNKNOWN);
  }
  if (face.trackId !== undefined) parts.push(`#${face.trackId}`);
  return { text: parts.join(' ') };
}

/** One line of printable text, cut to `MAX_LABEL` characters (not UTF-16 units). */
function cleanName(name: string): string {
  // Control characters (a newline in a name, an escape sequence) would draw as nothing or garbage.
  const chars = Array.from(name.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, ' '));
  return chars.length > MAX_LABEL ? chars.slice(0, MAX_LABEL - 1).join('') + '…' : chars.join('');
}

export function colourOf(face: Face & { rejected?: readonly string[] }, options: AnnotateOptions = {}): Rgb {
  if (face.rejected && face.rejected.length > 0) return COLOURS.grey;
  const identity = face.identity;
  if (!identity) return COLOURS.blue;
  if (identity.name === UNKNOWN) return identity.ambiguous ? COLOURS.purple : COLOURS.red;
  if (options.threshold === undefined) return COLOURS.green;
  const above = identity.similarity - options.threshold;
  // Embedders differ in scale: the bands shrink with the room left above the threshold.
  const room = Math.max(0, 1 - options.threshold) / 0.48;
  if (above >= (options.bands?.green ?? 0.1 * room)) return COLOURS.green;
  if (above >= (options.bands?.yellow ?? 0.05 * room)) return COLOURS.yellow;
  return COLOURS.orange;
}

function headerText(frame: Frame, options: AnnotateOptions): string {
  const parts: string[] = [];
  if (options.showCamera !== false) {
    if (frame.cameraId) parts.push(cleanName(frame.cameraId));
    if (frame.ts > 0) parts.push(new Date(frame.ts).toTimeString().slice(0, 8));
  }
  if (options.fps !== undefined && Number.isFinite(options.fps)) parts.push(`${options.fps.toFixed(1)} fps`);
  if (options.text) parts.push(cleanName(options.text));
  return parts.join('  ');
}

/**
 * Black or white, whichever contrasts more with the background by WCAG 2's relative luminance
 * (black wins above about 0.18): black for every label colour here, the red a near tie (4.7 : 4.5).
 */
function textColourOn(colour: Rgb): Rgb {
  const [r, g, b] = colour.map((v) => {
    const c = v / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) ? [0, 0, 0] : [255, 255, 255];
}

// ---------------------------------------------------------------------------------------------
// Pixels

interface Canvas {
  rgb: Buffer;
  width: number;
  height: number;
}

/** Fills [x0, x1) × [y0, y1), clipped; `alpha` < 1 blends over what is there. */
function fillRect(
  c: Canvas,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  colour: Rgb,
  alpha: number,
): void {
  const xa = Math.max(0, Math.round(x0));
  const xb = Math.min(c.width, Math.round(x1));
  const ya = Math.max(0, Math.round(y0));
  const yb = Math.min(c.height, Math.round(y1));
  if (xa >= xb || ya >= yb) return;
  const [r, g, b] = colour;
  for (let y = ya; y < yb; y++) {
    let p = (y * c.width + xa) * 3;
    if (alpha >= 1) {
      for (let x = xa; x < xb; x++, p += 3) {
        c.rgb[p] = r;
        c.rgb[p + 1] = g;
        c.rgb[p + 2] = b;
      }
    } else {
      const k = 1 - alpha;
      for (let x = xa; x < xb; x++, p += 3) {
        c.rgb[p] = c.rgb[p] * k + r * alpha;
        c.rgb[p + 1] = c.rgb[p + 1] * k + g * alpha;
        c.rgb[p + 2] = c.rgb[p + 2] * k + b * alpha;
      }
    }
  }
}

/** A box outline `width` pixels thick, centred on the box's edges. */
function strokeRect(
  c: Canvas,
  x1: number,
  y1: number,
  x2: number,
  y2: number,
  width: number,
  colour: Rgb,
): void {
  const a = Math.floor(width / 2);
  const b = width - a;
  fillRect(c, x1 - a, y1 - a, x2 + b, y1 + b, colour, 1);
  fillRect(c, x1 - a, y2 - a, x2 + b, y2 + b, colour, 1);
  fillRect(c, x1 - a, y1 - a, x1 + b, y2 + b, colour, 1);
  fillRect(c, x2 - a, y1 - a, x2 + b, y2 + b, colour, 1);
}

// ---------------------------------------------------------------------------------------------
// Text

interface Glyph {
  /** Alpha mask, `cells * cellWidth` × `lineHeight`. */
  alpha: Uint8Array;
  /** 1, or 2 for a glyph wider than a cell (CJK, many emoji). */
  cells: number;
}

/** A monospaced font at one size: characters rendered on first use, then drawn from the cache. */
class GlyphFont {
  readonly cellWidth: number;
  readonly lineHeight: number;
  private readonly baseline: number;
  private readonly glyphs = new Map<string, Glyph>();

  constructor(readonly size: number) {
    // DejaVu Sans Mono's advance is 0.602 em; ascent and descent fit in 1.2 em.
    this.cellWidth = Math.ceil(size * 0.61);
    this.lineHeight = Math.ceil(size * 1.2);
    this.baseline = Math.round(size * 0.93);
  }

  width(text: string): number {
    let w = 0;
    for (const ch of text) w += (this.glyphs.get(ch)?.cells ?? 1) * this.cellWidth;
    return w;
  }

  /** Renders the characters of `text` not rendered yet, all in one SVG. */
  async prepare(text: string): Promise<void> {
    const missing = [...new Set(Array.from(text))].filter((ch) => !this.glyphs.has(ch));
    if (missing.length === 0) return;
    // Each character gets two cells, so that a wide one is not cut; its ink tells its width.
    const slot = 2 * this.cellWidth;
    const width = slot * missing.length;
    const texts = missing
      .map((ch, i) => `<text x="${i * slot}" y="${this.baseline}">${escapeXml(ch)}</text>`)
      .join('');
    const svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${this.lineHeight}">` +
      `<g font-family="DejaVu Sans Mono, Noto Sans Mono, Liberation Mono, monospace" font-size="${this.size}" fill="#fff" xml:space="preserve">` +
      `${texts}</g></svg>`;
    const { data, info } = await sharp(Buffer.from(svg))
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    missing.forEach((ch, i) => {
      const full = new Uint8Array(slot * this.lineHeight);
      let inkRight = -1;
      for (let y = 0; y < this.lineHeight; y++) {
        for (let x = 0; x < slot; x++) {
          const a = data[(y * info.width + i * slot + x) * info.channels + info.channels - 1];
          full[y * slot + x] = a;
          if (a > 40 && x > inkRight) inkRight = x;
        }
      }
      const cells = inkRight >= this.cellWidth + 1 ? 2 : 1;
      const w = cells * this.cellWidth;
      const alpha = new Uint8Array(w * this.lineHeight);
      for (let y = 0; y < this.lineHeight; y++) alpha.set(full.subarray(y * slot, y * slot + w), y * w);
      this.glyphs.set(ch, { alpha, cells });
    });
  }

  /** Blends `text` in at (x, y), its top-left corner; characters not prepared are skipped. */
  draw(c: Canvas, text: string, x: number, y: number, colour: Rgb): void {
    const [r, g, b] = colour;
    let pen = x;
    for (const ch of text) {
      const glyph = this.glyphs.get(ch);
      if (!glyph) {
        pen += this.cellWidth;
        continue;
      }
      const w = glyph.cells * this.cellWidth;
      for (let gy = 0; gy < this.lineHeight; gy++) {
        const cy = y + gy;
        if (cy < 0 || cy >= c.height) continue;
        for (let gx = 0; gx < w; gx++) {
          const cx = pen + gx;
          const a = glyph.alpha[gy * w + gx];
          if (a === 0 || cx < 0 || cx >= c.width) continue;
          const p = (cy * c.width + cx) * 3;
          const k = a / 255;
          c.rgb[p] += (r - c.rgb[p]) * k;
          c.rgb[p + 1] += (g - c.rgb[p + 1]) * k;
          c.rgb[p + 2] += (b - c.rgb[p + 2]) * k;
        }
      }
      pen += w;
    }
  }
}

const fonts = new Map<number, GlyphFont>();

/** Fonts are shared by size; a few sizes at most in one process (one per frame height). */
function fontFor(size: number): GlyphFont {
  let font = fonts.get(size);
  if (!font) {
    font = new GlyphFont(size);
    fonts.set(size, font);
  }
  return font;
}

/** The five XML specials; everything else is safe as text content in UTF-8. */
export function escapeXml(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (ch) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' }[ch]};`,
  );
}
