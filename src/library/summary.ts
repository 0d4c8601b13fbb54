/**
 * The short JSON answers about a library that the CLI prints and the Node-RED node sends: one
 * shape for both, so that a script written against one reads the other.
 */
import type { LibraryDb } from './libraryDb';
import type { ScanReport } from './scan';

export interface LibrarySummary {
  photos: number;
  faces: number;
  /** Faces that passed the quality check: the ones grouped and matched. */
  goodFaces: number;
  people: number;
  assigned: number;
  unreadable: number;
}

export function librarySummary(db: LibraryDb): LibrarySummary {
  const faces = db.liveFaces();
  return {
    photos: db.files.size,
    faces: faces.length,
    goodFaces: faces.filter((f) => f.quality.passed).length,
    people: db.people().size,
    assigned: faces.filter((f) => db.assignments.has(f.id)).length,
    unreadable: db.unreadable.size,
  };
}

/** `status`: the figures, the model, how many groups the last clustering stored, and the unreadable files. */
export function statusSummary(db: LibraryDb) {
  return {
    ...librarySummary(db),
    model: db.meta.modelId,
    groups: db.clusters?.clusters.length ?? 0,
    unreadableFiles: [...db.unreadable.values()].map((u) => ({ path: u.path, error: u.error })),
  };
}

export interface ScanSummary {
  found: number;
  scanned: number;
  copies: number;
  unchanged: number;
  unreadable: number;
  gone: number;
  faces: number;
  interrupted: boolean;
  seconds: number;
  photosPerMinute: number;
  library: LibrarySummary;
}

export function scanSummary(report: ScanReport, db: LibraryDb): ScanSummary {
  const perMinute = report.scanned > 0 ? (report.scanned / report.durationMs) * 60_000 : 0;
  return {
    found: report.found,
    scanned: report.scanned,
    copies: report.copies,
    unchanged: report.unchanged,
    unreadable: report.unreadable.length,
    gone: report.gone,
    faces: report.faces,
    interrupted: report.interrupted,
    seconds: Math.round(report.durationMs / 100) / 10,
    photosPerMinute: Math.round(perMinute * 10) / 10,
    library: librarySummary(db),
  };
}

export interface PersonSummary {
  person: string;
  faces: number;
  /** Faces a person named, and faces matched to them since. */
  named: number;
  matched: number;
  /** Files showing them (a copy of a photo counts). */
  photos: number;
}

export function peopleSummary(db: LibraryDb): PersonSummary[] {
  const paths = db.pathsByHash();
  return [...db.people().entries()].map(([person, ids]) => {
    const photos = new Set(ids.flatMap((id) => paths.get(db.face(id)!.hash) ?? []));
    const named = ids.filter((id) => db.assignments.get(id)?.how === 'named').length;
    return { person, faces: ids.length, named, matched: ids.length - named, photos: photos.size };
  });
}
