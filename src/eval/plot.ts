/**
 * Evaluation charts as PNG files without a plotting library: each chart is built as an
 * SVG string here and rasterised by sharp (librsvg). The SVG builders are pure and
 * exported so they can be inspected without touching the file system.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import sharp from 'sharp';
import type { RocPoint } from './metrics';

/** An operating point to highlight on a ROC chart. */
export interface RocMark {
  far: number;
  tar: number;
  label: string;
}

export interface RocPlotOptions {
  /** Chart title; defaults to "ROC curve". */
  title?: string;
  /** Shown in the legend next to the curve when given. */
  auc?: number;
  /** A point drawn on the curve with guide lines to both axes and its label in the legend. */
  markThreshold?: RocMark;
  /** Logarithmic FAR axis from `minFar` to 1. Points left of `minFar` are clipped. */
  logFar?: boolean;
  /** Left end of the logarithmic FAR axis; defaults to 1e-4. */
  minFar?: number;
  width?: number;
  height?: number;
}

export interface Scores {
  genuine: readonly number[];
  impostor: readonly number[];
}

export interface HistogramPlotOptions {
  /** Chart title; defaults to "Similarity distributions". */
  title?: string;
  /** Number of equal-width bins spanning the data; defaults to 50. */
  bins?: number;
  /** Draws a vertical line at this similarity. */
  threshold?: number;
  /** Defaults to "Cosine similarity". */
  xLabel?: string;
  width?: number;
  height?: number;
}

/** Default ROC chart size in pixels. */
export const ROC_SIZE = { width: 720, height: 680 } as const;
/** Default histogram chart size in pixels. */
export const HISTOGRAM_SIZE = { width: 860, height: 540 } as const;

const FONT = "'DejaVu Sans', Arial, Helvetica, sans-serif";
const COLORS = {
  roc: '#1f6fb4',
  chance: '#8a8a8a',
  mark: '#d62728',
  genuine: '#1f77b4',
  impostor: '#ff7f0e',
  threshold: '#c0392b',
  grid: '#e2e2e2',
  minorGrid: '#f1f1f1',
  frame: '#444444',
  text: '#222222',
};

/** Renders a ROC chart (FAR on x, TAR on y) and writes it as a PNG file. */
export async function writeRocPng(
  path: string,
  points: readonly RocPoint[],
  options: RocPlotOptions = {},
): Promise<void> {
  await writeSvgAsPng(path, rocSvg(points, options));
}

/** Renders overlaid genuine/impostor similarity histograms and writes them as a PNG file. */
export async function writeHistogramPng(
  path: string,
  scores: Scores,
  options: HistogramPlotOptions = {},
): Promise<void> {
  await writeSvgAsPng(path, histogramSvg(scores, options));
}

/** Escapes text for use in SVG/XML content or a double-quoted attribute. */
export function escapeXml(text: string): string {
  return (
    text
      // Control characters are not allowed in XML 1.0 at all, escaped or not.
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&#39;')
  );
}

/** Builds the SVG document of a ROC chart. */
export function rocSvg(points: readonly RocPoint[], options: RocPlotOptions = {}): string {
  points.forEach((p, i) => {
    if (!Number.isFinite(p.far) || !Number.isFinite(p.tar)) {
      throw new Error(
        `rocSvg: points[${i}] has a non-finite far or tar (${String(p.far)}, ${String(p.tar)})`,
      );
    }
  });
  const mark = options.markThreshold;
  if (mark !== undefined && (!Number.isFinite(mark.far) || !Number.isFinite(mark.tar))) {
    throw new Error('rocSvg: markThreshold needs finite far and tar');
  }
  const width = checkSize(options.width ?? ROC_SIZE.width, 'width');
  const height = checkSize(options.height ?? ROC_SIZE.height, 'height');
  const logFar = options.logFar === true;
  const minFar = options.minFar ?? 1e-4;
  if (logFar && !(minFar > 0 && minFar < 1)) {
    throw new Error(`rocSvg: minFar must be within (0, 1), got ${String(minFar)}`);
  }

  const curveLabel =
    options.auc !== undefined && Number.isFinite(options.auc)
      ? `ROC (AUC = ${options.auc.toFixed(4)})`
      : 'ROC';
  const legend: LegendItem[] = [
    { kind: 'line', color: COLORS.roc, label: curveLabel },
    { kind: 'dashed', color: COLORS.chance, label: 'chance (TAR = FAR)' },
  ];
  if (mark !== undefined) legend.push({ kind: 'marker', color: COLORS.mark, label: mark.label });

  const title = options.title ?? (logFar ? 'ROC curve (log FAR)' : 'ROC curve');
  const frame = layout(width, height, title, legend);
  const x = logFar
    ? logAxis(minFar, 1, frame.left, frame.right)
    : linearAxis(0, 1, 0.1, frame.left, frame.right);
  const y = linearAxis(0, 1, 0.1, frame.bottom, frame.top);

  const body: string[] = [];
  // Chance line: straight in linear space, a curve on a log FAR axis.
  const chance: Array<[number, number]> = [];
  if (logFar) {
    const steps = 120;
    for (let i = 0; i <= steps; i++) {
      const far = Math.pow(10, Math.log10(minFar) * (1 - i / steps));
      chance.push([x.toPx(far), y.toPx(far)]);
    }
  } else {
    chance.push([x.toPx(0), y.toPx(0)], [x.toPx(1), y.toPx(1)]);
  }
  body.push(polyline(chance, COLORS.chance, 1.5, '6 4'));

  const sorted = [...points].sort((a, b) => a.far - b.far || a.tar - b.tar);
  const visible = logFar ? clipLeft(sorted, minFar) : sorted;
  const curve = thin(visible.map((p): [number, number] => [x.toPx(p.far), y.toPx(p.tar)]));
  if (curve.length > 0) body.push(polyline(curve, COLORS.roc, 2.5));

  // The marker goes on top, unclipped, so a point on the frame edge stays whole.
  const overlay: string[] = [];
  if (mark !== undefined) {
    const mx = x.toPx(logFar ? Math.max(mark.far, minFar) : mark.far);
    const my = y.toPx(mark.tar);
    body.push(
      `<path d="M${num(mx)},${num(frame.bottom)}V${num(my)}H${num(frame.left)}" fill="none" ` +
        `stroke="${COLORS.mark}" stroke-width="1.2" stroke-dasharray="3 3" opacity="0.8"/>`,
    );
    overlay.push(
      `<circle cx="${num(mx)}" cy="${num(my)}" r="5.5" fill="${COLORS.mark}" stroke="#ffffff" stroke-width="1.5"/>`,
    );
  }

  return document(width, height, frame, title, legend, x, y, {
    x: 'False accept rate (FAR)',
    y: 'True accept rate (TAR)',
    body,
    overlay,
  });
}

/** Builds the SVG document of overlaid, density-normalised genuine/impostor histograms. */
export function histogramSvg(scores: Scores, options: HistogramPlotOptions = {}): string {
  const genuine = checkValues(scores.genuine, 'genuine');
  const impostor = checkValues(scores.impostor, 'impostor');
  const bins = options.bins ?? 50;
  if (!Number.isInteger(bins) || bins < 1) {
    throw new Error(`histogramSvg: bins must be a positive integer, got ${String(bins)}`);
  }
  const threshold = options.threshold;
  if (threshold !== undefined && !Number.isFinite(threshold)) {
    throw new Error(`histogramSvg: threshold must be finite, got ${String(threshold)}`);
  }
  const width = checkSize(options.width ?? HISTOGRAM_SIZE.width, 'width');
  const height = checkSize(options.height ?? HISTOGRAM_SIZE.height, 'height');

  // Bins span the data; the axis also covers the threshold and is widened to round ticks.
  // (A loop, not Math.min(...values): spreading a large array overflows the call stack.)
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of genuine) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  for (const v of impostor) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  const empty = genuine.length + impostor.length === 0;
  if (empty) [lo, hi] = [0, 1];
  if (hi - lo < 1e-9) {
    lo -= 0.5;
    hi += 0.5;
  }
  const binWidth = (hi - lo) / bins;
  const series = [
    { name: 'genuine', values: genuine, color: COLORS.genuine },
    { name: 'impostor', values: impostor, color: COLORS.impostor },
  ].map((s) => ({ ...s, density: densities(s.values, lo, binWidth, bins) }));
  const peak = Math.max(0, ...series.flatMap((s) => s.density));

  const legend: LegendItem[] = series.map((s) => ({
    kind: 'box' as const,
    color: s.color,
    label: `${s.name} (n = ${s.values.length})`,
  }));
  if (threshold !== undefined) {
    legend.push({ kind: 'dashed', color: COLORS.threshold, label: `threshold = ${formatNumber(threshold)}` });
  }

  const title = options.title ?? 'Similarity distributions';
  const frame = layout(width, height, title, legend);
  const xLo = threshold !== undefined ? Math.min(lo, threshold) : lo;
  const xHi = threshold !== undefined ? Math.max(hi, threshold) : hi;
  const xStep = niceStep(xHi - xLo, 8);
  const x = linearAxis(
    Math.floor(xLo / xStep + 1e-9) * xStep,
    Math.ceil(xHi / xStep - 1e-9) * xStep,
    xStep,
    frame.left,
    frame.right,
  );
  const yTop = peak > 0 ? peak * 1.08 : 1;
  const yStep = niceStep(yTop, 6);
  const y = linearAxis(0, Math.ceil(yTop / yStep - 1e-9) * yStep, yStep, frame.bottom, frame.top);

  const body: string[] = [];
  for (const s of series) {
    if (s.values.length === 0) continue;
    const bars: string[] = [];
    let outline = `M${num(x.toPx(lo))},${num(y.toPx(0))}`;
    s.density.forEach((d, i) => {
      const x0 = x.toPx(lo + i * binWidth);
      const x1 = x.toPx(lo + (i + 1) * binWidth);
      const top = y.toPx(d);
      outline += `V${num(top)}H${num(x1)}`;
      if (d > 0) {
        bars.push(
          `<rect x="${num(x0)}" y="${num(top)}" width="${num(x1 - x0)}" height="${num(y.toPx(0) - top)}"/>`,
        );
      }
    });
    outline += `V${num(y.toPx(0))}`;
    body.push(
      `<g fill="${s.color}" fill-opacity="0.42" stroke="none">${bars.join('')}</g>`,
      `<path d="${outline}" fill="none" stroke="${s.color}" stroke-width="1.6" stroke-linejoin="round"/>`,
    );
  }
  if (threshold !== undefined) {
    const tx = num(x.toPx(threshold));
    body.push(
      `<line x1="${tx}" y1="${num(frame.top)}" x2="${tx}" y2="${num(frame.bottom)}" ` +
        `stroke="${COLORS.threshold}" stroke-width="2" stroke-dasharray="7 4"/>`,
    );
  }
  if (empty) {
    body.push(
      text(
        (frame.left + frame.right) / 2,
        (frame.top + frame.bottom) / 2,
        'no data',
        16,
        'middle',
        COLORS.chance,
      ),
    );
  }

  return document(width, height, frame, title, legend, x, y, {
    x: options.xLabel ?? 'Cosine similarity',
    y: 'Density',
    body,
  });
}

// ---------------------------------------------------------------------------------------------
// Layout and axes

interface Frame {
  left: number;
  right: number;
  top: number;
  bottom: number;
  titleSize: number;
  legendRows: LegendItem[][];
  legendTop: number;
}

interface LegendItem {
  kind: 'line' | 'dashed' | 'box' | 'marker';
  color: string;
  label: string;
}

interface Tick {
  value: number;
  label: string;
}

interface Axis {
  toPx(value: number): number;
  major: Tick[];
  minor: number[];
}

const MARGIN = { left: 78, right: 28, bottom: 62, titleTop: 14 };
const LEGEND = { font: 13, rowHeight: 22, swatch: 26, gap: 8, spacing: 26 };

/** Rough width of text in DejaVu Sans-like fonts; errs on the wide side. */
function textWidth(s: string, size: number): number {
  return s.length * size * 0.6;
}

function legendItemWidth(item: LegendItem): number {
  return LEGEND.swatch + LEGEND.gap + textWidth(item.label, LEGEND.font);
}

/** Places the title, wraps the legend into rows under it, and returns the plot rectangle. */
function layout(width: number, height: number, title: string, legend: LegendItem[]): Frame {
  const left = MARGIN.left;
  const right = width - MARGIN.right;
  const available = right - left;
  // Shrink a long title before it would run off the image.
  let titleSize = 20;
  while (titleSize > 12 && textWidth(title, titleSize) > width - 20) titleSize--;

  const rows: LegendItem[][] = [];
  let rowWidth = 0;
  for (const item of legend) {
    const w = legendItemWidth(item);
    const row = rows[rows.length - 1];
    if (row !== undefined && rowWidth + LEGEND.spacing + w <= available) {
      row.push(item);
      rowWidth += LEGEND.spacing + w;
    } else {
      rows.push([item]);
      rowWidth = w;
    }
  }
  const legendTop = MARGIN.titleTop + titleSize + 14;
  const top = legendTop + rows.length * LEGEND.rowHeight + 12;
  const bottom = height - MARGIN.bottom;
  if (bottom - top < 40 || available < 40) {
    throw new Error(`chart of ${width}x${height} pixels is too small for its title and legend`);
  }
  return { left, right, top, bottom, titleSize, legendRows: rows, legendTop };
}

function linearAxis(min: number, max: number, step: number, p0: number, p1: number): Axis {
  const toPx = (v: number): number => p0 + ((v - min) / (max - min)) * (p1 - p0);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const major: Tick[] = [];
  const first = Math.ceil(min / step - 1e-9);
  const last = Math.floor(max / step + 1e-9);
  for (let k = first; k <= last; k++) {
    const value = k * step;
    const label = (Math.abs(value) < step / 2 ? 0 : value).toFixed(decimals);
    major.push({ value, label });
  }
  return { toPx, major, minor: [] };
}

function logAxis(min: number, max: number, p0: number, p1: number): Axis {
  const lmin = Math.log10(min);
  const lmax = Math.log10(max);
  const toPx = (v: number): number => p0 + ((Math.log10(v) - lmin) / (lmax - lmin)) * (p1 - p0);
  const major: Tick[] = [];
  const minor: number[] = [];
  for (let e = Math.floor(lmin); e <= Math.ceil(lmax); e++) {
    const decade = Math.pow(10, e);
    if (decade >= min * (1 - 1e-9) && decade <= max * (1 + 1e-9)) {
      major.push({
        value: decade,
        label: e >= -4 ? String(Number(decade.toFixed(Math.max(0, -e)))) : `1e${e}`,
      });
    }
    for (let m = 2; m <= 9; m++) {
      const v = m * decade;
      if (v > min && v < max) minor.push(v);
    }
  }
  return { toPx, major, minor };
}

/** A round step (1, 2 or 5 times a power of ten) giving about `count` intervals over `span`. */
function niceStep(span: number, count: number): number {
  const raw = span / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const n = raw / power;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * power;
}

// ---------------------------------------------------------------------------------------------
// SVG pieces

function document(
  width: number,
  height: number,
  frame: Frame,
  title: string,
  legend: LegendItem[],
  x: Axis,
  y: Axis,
  content: { x: string; y: string; body: string[]; overlay?: string[] },
): string {
  const { left, right, top, bottom } = frame;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" font-family="${escapeXml(FONT)}">`,
    `<defs><clipPath id="plot-area"><rect x="${num(left)}" y="${num(top)}" ` +
      `width="${num(right - left)}" height="${num(bottom - top)}"/></clipPath></defs>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
  ];

  // Grid.
  const grid: string[] = [];
  for (const v of x.minor) grid.push(vline(x.toPx(v), top, bottom, COLORS.minorGrid));
  for (const v of y.minor) grid.push(hline(y.toPx(v), left, right, COLORS.minorGrid));
  for (const t of x.major) grid.push(vline(x.toPx(t.value), top, bottom, COLORS.grid));
  for (const t of y.major) grid.push(hline(y.toPx(t.value), left, right, COLORS.grid));
  out.push(`<g stroke-width="1">${grid.join('')}</g>`);

  // Data, clipped to the plot rectangle.
  out.push(`<g clip-path="url(#plot-area)">${content.body.join('')}</g>`);

  // Frame, ticks and tick labels.
  out.push(
    `<rect x="${num(left)}" y="${num(top)}" width="${num(right - left)}" height="${num(bottom - top)}" ` +
      `fill="none" stroke="${COLORS.frame}" stroke-width="1.2"/>`,
  );
  const ticks: string[] = [];
  for (const t of x.major) {
    const px = x.toPx(t.value);
    ticks.push(vline(px, bottom, bottom + 5, COLORS.frame));
    ticks.push(text(px, bottom + 20, t.label, 12, 'middle'));
  }
  for (const t of y.major) {
    const py = y.toPx(t.value);
    ticks.push(hline(py, left - 5, left, COLORS.frame));
    ticks.push(text(left - 9, py + 4, t.label, 12, 'end'));
  }
  out.push(ticks.join(''));
  out.push(...(content.overlay ?? []));

  // Axis labels and title.
  out.push(text((left + right) / 2, bottom + 48, content.x, 14, 'middle'));
  const yMid = (top + bottom) / 2;
  out.push(
    `<text x="0" y="0" transform="translate(${num(left - 56)},${num(yMid)}) rotate(-90)" font-size="14" ` +
      `text-anchor="middle" fill="${COLORS.text}">${escapeXml(content.y)}</text>`,
  );
  out.push(
    `<text x="${num(width / 2)}" y="${num(MARGIN.titleTop + frame.titleSize)}" font-size="${frame.titleSize}" ` +
      `font-weight="bold" text-anchor="middle" fill="${COLORS.text}">${escapeXml(title)}</text>`,
  );

  out.push(legendSvg(frame, legend.length));
  out.push('</svg>');
  return out.join('\n');
}

/** Legend rows centred over the plot, between the title and the plot rectangle. */
function legendSvg(frame: Frame, count: number): string {
  if (count === 0) return '';
  const parts: string[] = [];
  frame.legendRows.forEach((row, r) => {
    const rowWidth =
      row.reduce((w, item) => w + legendItemWidth(item), 0) + LEGEND.spacing * (row.length - 1);
    let cx = (frame.left + frame.right) / 2 - rowWidth / 2;
    const cy = frame.legendTop + r * LEGEND.rowHeight + LEGEND.rowHeight / 2;
    for (const item of row) {
      parts.push(swatch(item, cx, cy));
      parts.push(text(cx + LEGEND.swatch + LEGEND.gap, cy + 4.5, item.label, LEGEND.font, 'start'));
      cx += legendItemWidth(item) + LEGEND.spacing;
    }
  });
  return `<g>${parts.join('')}</g>`;
}

function swatch(item: LegendItem, x: number, cy: number): string {
  const w = LEGEND.swatch;
  switch (item.kind) {
    case 'line':
      return `<line x1="${num(x)}" y1="${num(cy)}" x2="${num(x + w)}" y2="${num(cy)}" stroke="${item.color}" stroke-width="2.5"/>`;
    case 'dashed':
      return (
        `<line x1="${num(x)}" y1="${num(cy)}" x2="${num(x + w)}" y2="${num(cy)}" stroke="${item.color}" ` +
        `stroke-width="2" stroke-dasharray="6 4"/>`
      );
    case 'box':
      return (
        `<rect x="${num(x + 3)}" y="${num(cy - 7)}" width="${w - 6}" height="14" fill="${item.color}" ` +
        `fill-opacity="0.42" stroke="${item.color}" stroke-width="1.6"/>`
      );
    case 'marker':
      return `<circle cx="${num(x + w / 2)}" cy="${num(cy)}" r="5.5" fill="${item.color}" stroke="#ffffff" stroke-width="1.5"/>`;
  }
}

function text(
  x: number,
  y: number,
  content: string,
  size: number,
  anchor: string,
  fill = COLORS.text,
): string {
  return (
    `<text x="${num(x)}" y="${num(y)}" font-size="${size}" text-anchor="${anchor}" fill="${fill}">` +
    `${escapeXml(content)}</text>`
  );
}

function vline(x: number, y0: number, y1: number, color: string): string {
  return `<line x1="${num(x)}" y1="${num(y0)}" x2="${num(x)}" y2="${num(y1)}" stroke="${color}"/>`;
}

function hline(y: number, x0: number, x1: number, color: string): string {
  return `<line x1="${num(x0)}" y1="${num(y)}" x2="${num(x1)}" y2="${num(y)}" stroke="${color}"/>`;
}

function polyline(pts: Array<[number, number]>, color: string, width: number, dash?: string): string {
  const coords = pts.map(([px, py]) => `${num(px)},${num(py)}`).join(' ');
  const dashAttr = dash !== undefined ? ` stroke-dasharray="${dash}"` : '';
  return (
    `<polyline points="${coords}" fill="none" stroke="${color}" stroke-width="${width}"${dashAttr} ` +
    `stroke-linejoin="round" stroke-linecap="round"/>`
  );
}

// ---------------------------------------------------------------------------------------------
// Data helpers

/**
 * Drops ROC points left of `minFar` (sorted by FAR), replacing the last dropped one with a
 * point interpolated at exactly `minFar` so the curve starts at the left edge.
 */
function clipLeft(points: readonly RocPoint[], minFar: number): Array<{ far: number; tar: number }> {
  const out: Array<{ far: number; tar: number }> = [];
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    if (p.far < minFar) continue;
    if (out.length === 0 && i > 0 && p.far > minFar) {
      const q = points[i - 1];
      const t = (minFar - q.far) / (p.far - q.far);
      out.push({ far: minFar, tar: q.tar + t * (p.tar - q.tar) });
    }
    out.push(p);
  }
  return out;
}

/** Drops pixel points closer than half a pixel to the previously kept one (keeps the last). */
function thin(pts: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  pts.forEach((p, i) => {
    const prev = out[out.length - 1];
    const isLast = i === pts.length - 1;
    if (prev === undefined || isLast || Math.abs(p[0] - prev[0]) >= 0.5 || Math.abs(p[1] - prev[1]) >= 0.5) {
      out.push(p);
    }
  });
  return out;
}

/** Histogram heights normalised so each series integrates to 1; a value equal to the top edge goes in the last bin. */
function densities(values: readonly number[], lo: number, binWidth: number, bins: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) {
    const i = Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / binWidth)));
    counts[i]++;
  }
  const scale = values.length > 0 ? 1 / (values.length * binWidth) : 0;
  return counts.map((c) => c * scale);
}

function checkValues(values: readonly number[], name: string): readonly number[] {
  if (!Array.isArray(values)) throw new Error(`histogramSvg: ${name} must be an array`);
  values.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new Error(`histogramSvg: ${name}[${i}] is not a finite number (${String(v)})`);
    }
  });
  return values;
}

function checkSize(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 200 || value > 8000) {
    throw new Error(`chart ${name} must be an integer from 200 to 8000 pixels, got ${String(value)}`);
  }
  return value;
}

function formatNumber(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e5 ? String(Number(v.toFixed(4))) : v.toExponential(2);
}

function num(v: number): string {
  return String(Math.round(v * 100) / 100);
}

async function writeSvgAsPng(path: string, svg: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await sharp(Buffer.from(svg, 'utf8')).png().toFile(path);
}
