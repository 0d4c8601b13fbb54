/**
 * Who appears in which photo, for spreadsheets (CSV, one row per face) and programs (JSON, one
 * entry per photo).
 */
import type { LibraryDb } from './libraryDb';

export interface ExportedFace {
  id: number;
  box: [number, number, number, number];
  score: number;
  /** Empty when nobody has said or matched who it is. */
  person: string;
  how: 'named' | 'matched' | '';
  similarity?: number;
  /** Cluster number of the last clustering, when the face is in one and still unnamed. */
  cluster?: number;
  qualityPassed: boolean;
}

export interface ExportedPhoto {
  path: string;
  sha256: string;
  width: number;
  height: number;
  /** Everyone named or matched in the photo, sorted. */
  people: string[];
  faces: ExportedFace[];
}

export interface LibraryExport {
  format: 'faceflow-library-export';
  version: 1;
  exportedAt: string;
  modelId: string;
  photos: ExportedPhoto[];
  unreadable: { path: string; error: string }[];
}

export function exportLibrary(db: LibraryDb): LibraryExport {
  const clusterOf = new Map<number, number>();
  db.clusters?.clusters.forEach((ids, n) => ids.forEach((id) => clusterOf.set(id, n)));
  const photos: ExportedPhoto[] = [];
  for (const [hash, paths] of [...db.pathsByHash().entries()].sort(([, a], [, b]) =>
    a[0].localeCompare(b[0]),
  )) {
    const content = db.contents.get(hash);
    if (!content) continue;
    const faces = content.faces.map((f): ExportedFace => {
      const a = db.assignments.get(f.id);
      const out: ExportedFace = {
        id: f.id,
        box: f.box,
        score: f.score,
        person: a?.person ?? '',
        how: a?.how ?? '',
        qualityPassed: f.quality.passed,
      };
      if (typeof a?.similarity === 'number') out.similarity = a.similarity;
      const cluster = clusterOf.get(f.id);
      if (!a && cluster !== undefined) out.cluster = cluster;
      return out;
    });
    const people = [...new Set(faces.map((f) => f.person).filter((p) => p !== ''))].sort();
    for (const p of paths) {
      photos.push({ path: p, sha256: hash, width: content.width, height: content.height, people, faces });
    }
  }
  photos.sort((a, b) => a.path.localeCompare(b.path));
  return {
    format: 'faceflow-library-export',
    version: 1,
    exportedAt: new Date().toISOString(),
    modelId: db.meta.modelId,
    photos,
    unreadable: [...db.unreadable.values()]
      .map((u) => ({ path: u.path, error: u.error }))
      .sort((a, b) => a.path.localeCompare(b.path)),
  };
}

export const CSV_COLUMNS = [
  'path',
  'person',
  'how',
  'similarity',
  'cluster',
  'face_id',
  'x1',
  'y1',
  'x2',
  'y2',
  'score',
  'quality_passed',
] as const;

/** RFC 4180 CSV, one row per face; a photo without faces gets one row with the face columns empty. */
export function exportCsv(doc: LibraryExport): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const photo of doc.photos) {
    if (photo.faces.length === 0) {
      lines.push([csvField(photo.path), ...Array(CSV_COLUMNS.length - 1).fill('')].join(','));
      continue;
    }
    for (const f of photo.faces) {
      lines.push(
        [
          csvField(photo.path),
          csvField(f.person),
          f.how,
          f.similarity ?? '',
          f.cluster ?? '',
          f.id,
          ...f.box,
          f.score,
          f.qualityPassed ? 1 : 0,
        ].join(','),
      );
    }
  }
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * Quotes a field when it needs it; a leading = + - @ is prefixed with ' so that a spreadsheet
 * shows a file or person name instead of running it as a formula.
 */
export function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
