/**
 * Scanning a folder tree of photos into a library: every face found, with its embedding, quality
 * and a thumbnail. Resumable by construction: each photo's result is appended as it is done and
 * made durable every few photos, and a file already in the library with the same size and
 * modification time is not read again; a changed one is hashed, and content already scanned under
 * another name (a copy, a rename) is not detected again.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { FaceFlow } from '../faceflow';
import { faceThumbnail } from '../gallery/thumbnail';
import { assessQuality, type QualityThresholds } from '../quality';
import type { Box, Face, Point } from '../types';
import type { LibraryDb, NewFace } from './libraryDb';
import { decodePhoto, DEFAULT_MAX_SIDE, isPhotoFile, PhotoReadError, type DecodedPhoto } from './photo';

export interface ScanProgress {
  done: number;
  total: number;
  file: string;
  outcome: FileOutcome;
}

export type FileOutcome = 'scanned' | 'copy' | 'unchanged' | 'unreadable';

export interface ScanOptions {
  /** Stops between two photos; what was done so far is kept. */
  signal?: AbortSignal;
  onProgress?: (p: ScanProgress) => void;
  /** Long side photos are decoded at (default 2048). */
  maxSide?: number;
  /** Limits for `quality.passed`, which clustering and matching go by (defaults: the quality gate's). */
  quality?: QualityThresholds;
  /** Make the results durable at least this often (default every 2 s). */
  flushMs?: number;
}

export interface ScanReport {
  /** Photos found under the folder. */
  found: number;
  /** Photos detected now. */
  scanned: number;
  /** New files whose content was already in the library (copies, renames): not detected again. */
  copies: number;
  unchanged: number;
  /** Files that could not be read, this time or (unchanged since) an earlier one. */
  unreadable: { path: string; error: string }[];
  /** How many of those are new or changed since the last scan (the rest were reported before). */
  newlyUnreadable: number;
  /** Files the library had under this folder that are no longer there. */
  gone: number;
  /** Faces found in the photos detected now. */
  faces: number;
  /** Links that lead out of the folder: not followed. */
  outside: string[];
  /** The scan was stopped (signal) before the end; a later scan goes on from there. */
  interrupted: boolean;
  durationMs: number;
}

/** Scans `dir` into `db`. Never throws for a bad photo: it is recorded as unreadable and reported. */
export async function scanFolder(
  flow: FaceFlow,
  db: LibraryDb,
  dir: string,
  options: ScanOptions = {},
): Promise<ScanReport> {
  const started = Date.now();
  if (flow.embedder.id !== db.meta.modelId) {
    throw new Error(
      `the library holds faces embedded by '${db.meta.modelId}', these models embed with '${flow.embedder.id}'`,
    );
  }
  const root = await fs.realpath(dir).catch(() => {
    throw new Error(`${dir}: no such folder`);
  });
  if (!(await fs.stat(root)).isDirectory()) throw new Error(`${dir}: not a folder`);
  const { files, outside } = await listPhotos(root, options.signal);
  const report: ScanReport = {
    found: files.length,
    scanned: 0,
    copies: 0,
    unchanged: 0,
    unreadable: [],
    newlyUnreadable: 0,
    gone: 0,
    faces: 0,
    outside,
    interrupted: false,
    durationMs: 0,
  };
  const flushMs = options.flushMs ?? 2000;
  let lastFlush = Date.now();
  const maxSide = options.maxSide ?? DEFAULT_MAX_SIDE;

  // Reading and decoding the next photo overlaps with the models working on this one.
  const prepare = (file: string) => preparePhoto(db, file, maxSide);
  let next: Promise<Prepared> | undefined = files.length > 0 ? prepare(files[0]) : undefined;
  for (let i = 0; i < files.length; i++) {
    if (options.signal?.aborted) {
      report.interrupted = true;
      break;
    }
    const prepared = await next!;
    next = i + 1 < files.length ? prepare(files[i + 1]) : undefined;
    const outcome = await record(flow, db, prepared, options.quality, report);
    options.onProgress?.({ done: i + 1, total: files.length, file: prepared.file, outcome });
    if (Date.now() - lastFlush >= flushMs) {
      await db.flush();
      lastFlush = Date.now();
    }
  }
  // Let a prefetch left running after an interruption settle, so no read outlives the scan.
  await next?.catch(() => undefined);

  if (!report.interrupted) {
    const seen = new Set(files);
    const inside = (p: string) => p.startsWith(root + path.sep);
    for (const p of [...db.files.keys(), ...db.unreadable.keys()]) {
      if (inside(p) && !seen.has(p)) {
        db.markGone(p);
        report.gone++;
      }
    }
  }
  await db.flush();
  report.durationMs = Date.now() - started;
  return report;
}

type Prepared =
  | { file: string; kind: 'unchanged' | 'gone' }
  | { file: string; kind: 'unreadable'; size: number; mtimeMs: number; error: string; again: boolean }
  | { file: string; kind: 'copy'; size: number; mtimeMs: number; hash: string }
  | { file: string; kind: 'new'; size: number; mtimeMs: number; hash: string; photo: DecodedPhoto };

/** Everything about a file that needs no model: stat, hash, decode. Never rejects. */
async function preparePhoto(db: LibraryDb, file: string, maxSide: number): Promise<Prepared> {
  let size: number;
  let mtimeMs: number;
  try {
    const stat = await fs.stat(file);
    size = stat.size;
    mtimeMs = stat.mtimeMs;
  } catch {
    return { file, kind: 'gone' }; // deleted while the scan ran; the next scan records it
  }
  const known = db.files.get(file);
  if (known && known.size === size && known.mtimeMs === mtimeMs) return { file, kind: 'unchanged' };
  const bad = db.unreadable.get(file);
  if (bad && bad.size === size && bad.mtimeMs === mtimeMs) {
    return { file, kind: 'unreadable', size, mtimeMs, error: bad.error, again: true };
  }
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const error = code === 'EACCES' ? 'permission denied' : `cannot read (${(err as Error).message})`;
    return { file, kind: 'unreadable', size, mtimeMs, error, again: false };
  }
  const hash = createHash('sha256').update(bytes).digest('hex');
  if (db.contents.has(hash)) return { file, kind: 'copy', size, mtimeMs, hash };
  try {
    return { file, kind: 'new', size, mtimeMs, hash, photo: await decodePhoto(bytes, maxSide) };
  } catch (err) {
    const error = err instanceof PhotoReadError ? err.message : `cannot decode (${(err as Error).message})`;
    return { file, kind: 'unreadable', size, mtimeMs, error, again: false };
  }
}

async function record(
  flow: FaceFlow,
  db: LibraryDb,
  p: Prepared,
  quality: QualityThresholds | undefined,
  report: ScanReport,
): Promise<FileOutcome> {
  switch (p.kind) {
    case 'unchanged':
    case 'gone':
      report.unchanged++;
      return 'unchanged';
    case 'unreadable':
      if (!p.again) {
        db.setUnreadable({ path: p.file, size: p.size, mtimeMs: p.mtimeMs, error: p.error });
        report.newlyUnreadable++;
      }
      report.unreadable.push({ path: p.file, error: p.error });
      return 'unreadable';
    case 'copy':
      db.setFile({ path: p.file, hash: p.hash, size: p.size, mtimeMs: p.mtimeMs });
      report.copies++;
      return 'copy';
    case 'new': {
      // A content can also have turned up in the library while this one was being decoded.
      if (!db.contents.has(p.hash)) {
        const faces = await facesOf(flow, p.photo, quality);
        db.addContent(p.hash, p.photo.width, p.photo.height, faces);
        report.faces += faces.length;
      }
      db.setFile({ path: p.file, hash: p.hash, size: p.size, mtimeMs: p.mtimeMs });
      report.scanned++;
      return 'scanned';
    }
  }
}

/** Detects, embeds, scores and thumbnails every face of a photo; boxes in the photo's own pixels. */
async function facesOf(
  flow: FaceFlow,
  photo: DecodedPhoto,
  thresholds: QualityThresholds | undefined,
): Promise<NewFace[]> {
  const faces = await flow.analyze(photo.frame);
  const back = 1 / photo.scale;
  const out: NewFace[] = [];
  for (const face of faces as (Face & { embedding: Float32Array })[]) {
    // Quality is judged on the pixels the models saw.
    const q = assessQuality(photo.frame, face, thresholds);
    out.push({
      box: face.box.map((v) => round(v * back)) as Box,
      score: round(face.score, 1e4),
      landmarks: face.landmarks.map(([x, y]) => [round(x * back), round(y * back)] as Point),
      quality: { scores: roundScores(q.scores), passed: q.passed, reasons: q.reasons },
      embedding: face.embedding,
      thumbnail: await faceThumbnail(photo.frame, face.landmarks),
    });
  }
  return out;
}

function round(v: number, scale = 10): number {
  return Math.round(v * scale) / scale;
}

function roundScores<T extends object>(scores: T): T {
  return Object.fromEntries(
    Object.entries(scores).map(([k, v]) => [k, typeof v === 'number' ? round(v, 1000) : v]),
  ) as T;
}

/**
 * Photos below `root`, sorted by path: hidden entries skipped, links followed while they stay
 * inside `root` (one leading out is reported, not followed), each folder walked once.
 */
export async function listPhotos(
  root: string,
  signal?: AbortSignal,
): Promise<{ files: string[]; outside: string[] }> {
  const files: string[] = [];
  const outside: string[] = [];
  const visited = new Set<string>();
  const walk = async (dir: string, shown: string): Promise<void> => {
    if (visited.has(dir) || signal?.aborted) return;
    visited.add(dir);
    let names: string[];
    try {
      names = (await fs.readdir(dir)).filter((n) => !n.startsWith('.')).sort();
    } catch {
      return; // an unreadable folder: nothing to list (its photos cannot be read either)
    }
    for (const name of names) {
      const entry = path.join(shown, name);
      let real: string;
      try {
        real = await fs.realpath(entry);
      } catch {
        continue; // a dangling link
      }
      const rel = path.relative(root, real);
      if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
        outside.push(entry);
        continue;
      }
      const stat = await fs.stat(real).catch(() => undefined);
      if (stat?.isDirectory()) await walk(real, entry);
      else if (stat?.isFile() && isPhotoFile(name)) files.push(entry);
    }
  };
  await walk(root, root);
  files.sort();
  return { files: [...new Set(files)], outside };
}
