import { promises as fs } from 'node:fs';

import type { FaceFlow } from '../faceflow';
import type { GalleryHandle } from '../gallery/commands';
import { contactSheet } from '../gallery/thumbnail';
import { exportCsv, exportLibrary } from './export';
import { checkPersonName, LibraryDb, LibraryError } from './libraryDb';
import { clusterFaces, clusterSamples, nameCluster, nameFaces, peopleAnswer } from './people';
import { repairLibrary } from './repair';
import { scanFolder, type ScanReport } from './scan';
import { librarySummary, peopleSummary, scanSummary, statusSummary, type ScanSummary } from './summary';
import { watchLoop } from './watch';

export const LIBRARY_COMMANDS = [
  'scan',
  'status',
  'match',
  'cluster',
  'recluster',
  'name',
  'people',
  'export',
  'thumbnail',
  'sheet',
  'compact',
  'repair',
] as const;
export type LibraryCommand = (typeof LIBRARY_COMMANDS)[number];

export function isLibraryCommand(topic: unknown): topic is LibraryCommand {
  return typeof topic === 'string' && (LIBRARY_COMMANDS as readonly string[]).includes(topic);
}

/** Quiet time after the last filesystem event before scanning, so that a photo being copied is read whole. */
const SETTLE_MS = 2000;

export interface LibraryServiceOptions {
  /** The library file (created by the first scan). */
  dbFile: string;
  /** The photos folder; scans and watching need it, the other commands do not. */
  folder?: string;
  /** Encrypts the library file. */
  key?: string;
  /** The models, opened when first needed. */
  models: () => Promise<FaceFlow>;
  /** People enrolled elsewhere, matched too; naming a group enrols it there. */
  gallery?: GalleryHandle;
  /** Match and group faces that failed the quality check too (default false). */
  includeLowQuality?: boolean;
  /** Watching: scan at least this often (ms). */
  intervalMs: number;
  /** What the service tells its holder; every hook is optional. */
  on?: {
    /** A long scan's progress, for a status line. */
    progress?: (text: string) => void;
    /** A scan the watch loop ran found changes (scans asked for by a command answer the command instead). */
    scanned?: (answer: ScanSummary) => void;
    /** A watch-loop scan failed: once per distinct message, not every interval. */
    scanFailed?: (message: string, firstTime: boolean) => void;
    /** A scan or command finished; the library's figures may have changed. */
    changed?: () => void;
    warn?: (text: string) => void;
  };
}

interface Opened {
  flow: FaceFlow;
  db: LibraryDb;
}

/** A scan queued or under way; `scan` commands that arrive meanwhile wait for it instead of starting another. */
interface PendingScan {
  promise: Promise<{ answer: ScanSummary; changed: boolean }>;
  /** How many `scan` commands wait for it: they answer it, so the scan is not sent out a second time. */
  commands: number;
}

type Payload = Record<string, unknown>;

/**
 * One photo library kept up to date and answering its commands (scan, status, match, cluster,
 * recluster, name, people, export, thumbnail, sheet, compact, repair): what the Node-RED library node
 * and scripts share. Everything that writes the library, scans and commands alike, runs one at a time
 * through one queue; reads run at once unless a compaction is under way.
 */
export class LibraryService {
  private opened: Opened | undefined;
  private closing = false;
  private compacting = false;
  private scanningNow = false;
  private pending: PendingScan | undefined;
  // Every write of the library (scans and commands) is chained here; a failed one must not block the next.
  private queue: Promise<unknown> = Promise.resolve();
  private readonly controller = new AbortController();
  private readonly warnedOutside = new Set<string>();
  private lastLoopError: string | undefined;
  private looping: Promise<void> = Promise.resolve();

  constructor(private readonly options: LibraryServiceOptions) {}

  /** A scan is running now. */
  get scanning(): boolean {
    return this.scanningNow;
  }

  /** The library's figures, once it is open (undefined before the first command or scan). */
  summary(): ReturnType<typeof librarySummary> | undefined {
    return this.opened && !this.scanningNow ? librarySummary(this.opened.db) : undefined;
  }

  /** Scans now, then whenever files change (after a quiet moment) and every interval, until closed. */
  watch(): void {
    const folder = this.options.folder;
    if (!folder) throw new LibraryError('watching needs the photos folder');
    const signal = this.controller.signal;
    this.looping = watchLoop(folder, () => this.scanForLoop(), {
      signal,
      intervalMs: this.options.intervalMs,
      settleMs: SETTLE_MS,
    }).done;
  }

  /** Carries out one command; throws a `LibraryError` meant for a person. */
  async command(command: LibraryCommand, payload: unknown): Promise<unknown> {
    if (!isLibraryCommand(command)) {
      throw new LibraryError(
        `unknown command ${JSON.stringify(command)}: expected ${LIBRARY_COMMANDS.join(', ')}`,
      );
    }
    if (this.closing) throw new LibraryError('the library is closing');
    const p: Payload =
      payload === undefined || payload === null || payload === '' || command === 'scan'
        ? {}
        : checkObject(payload, command);
    const answer = await this.run(command, p);
    this.options.on?.changed?.();
    return answer;
  }

  /** Stops watching and scanning (after the current photo), lets queued commands finish, and closes the file. */
  async close(): Promise<void> {
    this.closing = true;
    this.controller.abort();
    await this.looping.catch(() => undefined);
    await this.queue;
    const opened = this.opened;
    this.opened = undefined;
    await opened?.db.close();
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Opens the library once (only ever called from the queue); `create` only for a scan, as the CLI does. */
  private async open(create: boolean): Promise<Opened> {
    if (this.opened) return this.opened;
    const flow = await this.options.models();
    const { dbFile, key } = this.options;
    const db = await LibraryDb.open(
      dbFile,
      create
        ? {
            key,
            create: true,
            modelId: flow.embedder.id,
            dimension: flow.embedder.dimension,
            threshold: flow.threshold,
          }
        : { key, modelId: flow.embedder.id },
    );
    if (db.recoveredBytes > 0) {
      this.options.on?.warn?.(
        `${dbFile}: dropped the last ${db.recoveredBytes} bytes, a record cut short by a crash`,
      );
    }
    this.opened = { flow, db };
    return this.opened;
  }

  /** Runs a reading command at once, unless the library is not open yet or is being compacted. */
  private read<T>(work: (o: Opened) => T | Promise<T>): Promise<T> {
    const opened = this.opened;
    return opened && !this.compacting
      ? Promise.resolve(work(opened))
      : this.serial(async () => work(await this.open(false)));
  }

  private async runScan(): Promise<{ answer: ScanSummary; changed: boolean }> {
    const { folder } = this.options;
    const signal = this.controller.signal;
    if (signal.aborted) throw new LibraryError('the library is closing');
    if (!folder) throw new LibraryError('set the photos folder of the library');
    if (!(await fs.stat(folder).catch(() => undefined))?.isDirectory()) {
      throw new LibraryError(`${folder}: no such folder`);
    }
    if (signal.aborted) throw new LibraryError('the library is closing');
    const { flow, db } = await this.open(true);
    const knownUnreadable = new Set(db.unreadable.keys());
    this.scanningNow = true;
    let report: ScanReport;
    try {
      report = await scanFolder(flow, db, folder, {
        signal,
        onProgress: (p) => {
          if (p.outcome !== 'unchanged' || p.done === p.total)
            this.options.on?.progress?.(`scanning ${p.done}/${p.total}`);
        },
      });
      if (!report.interrupted && db.garbageRatio() > 0.5) await db.compact();
    } finally {
      this.scanningNow = false;
    }
    const newUnreadable = report.unreadable.filter((u) => !knownUnreadable.has(u.path));
    for (const u of newUnreadable) this.options.on?.warn?.(`unreadable: ${u.path}: ${u.error}`);
    for (const o of report.outside.filter((o) => !this.warnedOutside.has(o))) {
      this.warnedOutside.add(o);
      this.options.on?.warn?.(`skipped: ${o} leads outside the folder`);
    }
    this.options.on?.changed?.();
    const answer = scanSummary(report, db);
    return { answer, changed: report.scanned + report.copies + report.gone + newUnreadable.length > 0 };
  }

  /** The scan queued or under way, else a new one. */
  private requestScan(byCommand: boolean): PendingScan {
    if (!this.pending) {
      const p: PendingScan = { promise: undefined as never, commands: 0 };
      p.promise = this.serial(() => this.runScan()).finally(() => {
        if (this.pending === p) this.pending = undefined;
      });
      this.pending = p;
    }
    if (byCommand) this.pending.commands++;
    return this.pending;
  }

  private async scanForLoop(): Promise<void> {
    const scan = this.requestScan(false);
    try {
      const { answer, changed } = await scan.promise;
      this.lastLoopError = undefined;
      if (changed && scan.commands === 0 && !this.controller.signal.aborted)
        this.options.on?.scanned?.(answer);
    } catch (err) {
      // Stopped mid-scan (a redeploy): the models may close under it; the next start goes on from there.
      if (this.controller.signal.aborted) return;
      const message = (err as Error).message;
      // Reported once, not every interval while the folder stays away; a command waiting reports it too.
      this.options.on?.scanFailed?.(message, scan.commands === 0 && message !== this.lastLoopError);
      this.lastLoopError = message;
    }
  }

  private run(command: LibraryCommand, p: Payload): Promise<unknown> {
    switch (command) {
      case 'scan':
        return this.requestScan(true).promise.then((s) => s.answer);
      case 'status':
        return this.read(({ db }) => ({ ...statusSummary(db), scanning: this.scanningNow }));
      case 'match':
      case 'cluster':
      case 'recluster':
        return this.people(command, p);
      case 'name':
        return this.name(p);
      case 'people':
        return this.read(({ db }) => peopleSummary(db));
      case 'export': {
        const format = p.format ?? 'csv';
        if (format !== 'csv' && format !== 'json') {
          throw new LibraryError(`export: payload.format must be csv or json, got ${JSON.stringify(format)}`);
        }
        return this.read(({ db }) => {
          const doc = exportLibrary(db);
          return format === 'csv' ? exportCsv(doc) : doc;
        });
      }
      case 'thumbnail': {
        const id = p.face;
        if (!Number.isInteger(id) || (id as number) < 1) {
          throw new LibraryError(
            'thumbnail: payload.face must be a face id (a whole number from export or people)',
          );
        }
        return this.read(({ db }) => db.thumbnail(id as number));
      }
      case 'sheet': {
        const group = p.group;
        if (!Number.isInteger(group) || (group as number) < 0) {
          throw new LibraryError('sheet: payload.group must be a group number from cluster (0, 1, …)');
        }
        return this.read(async ({ db }) => {
          const ids = clusterSamples(db, group as number, 12);
          if (ids.length === 0)
            throw new LibraryError(`sheet: group ${String(group)} has no unnamed faces left`);
          return contactSheet(await Promise.all(ids.map((id) => db.thumbnail(id))));
        });
      }
      case 'compact':
        return this.serial(async () => {
          const { db } = await this.open(false);
          this.compacting = true;
          try {
            const before = (await fs.stat(db.file)).size;
            await db.compact();
            return { bytesBefore: before, bytesAfter: (await fs.stat(db.file)).size };
          } finally {
            this.compacting = false;
          }
        });
      case 'repair':
        // Through the queue like any writer; the library is closed first (the repair takes its
        // lock) and opened again by the next command, from the repaired file.
        return this.serial(async () => {
          this.compacting = true;
          try {
            await this.opened?.db.close();
            this.opened = undefined;
            return await repairLibrary(this.options.dbFile, { key: this.options.key });
          } finally {
            this.compacting = false;
          }
        });
    }
  }

  private people(command: 'match' | 'cluster' | 'recluster', p: Payload): Promise<unknown> {
    const eps = payloadNumber(
      p,
      'eps',
      command,
      (v) => v > 0 && v <= 2,
      'a cosine distance within (0, 2], e.g. 0.35',
    );
    const minPoints = payloadNumber(
      p,
      'minPoints',
      command,
      (v) => Number.isInteger(v) && v >= 1,
      'a whole number, 1 or more',
    );
    const threshold = payloadNumber(
      p,
      'threshold',
      command,
      (v) => v > 0 && v <= 1,
      'a similarity within (0, 1]',
    );
    const { gallery, includeLowQuality = false } = this.options;
    return this.serial(async () => {
      const { db, flow } = await this.open(false);
      const known = gallery && command !== 'cluster' ? await gallery.open() : undefined;
      const out = peopleAnswer(db, command, {
        threshold:
          command === 'cluster'
            ? undefined
            : (threshold ?? (gallery ? gallery.threshold() : (db.meta.threshold ?? flow.threshold))),
        gallery: known?.file.gallery,
        eps,
        minPoints,
        includeLowQuality,
      });
      await db.flush();
      return out;
    });
  }

  private name(p: Payload): Promise<unknown> {
    const { gallery } = this.options;
    if (p.faces !== undefined) {
      const ids = p.faces;
      if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => Number.isInteger(id) && id >= 1)) {
        throw new LibraryError('name: payload.faces must be a non-empty array of face ids (whole numbers)');
      }
      if (!('name' in p) || (p.name !== null && typeof p.name !== 'string')) {
        throw new LibraryError("name: payload.name must be the person's name, or null for nobody known");
      }
      const person = p.name as string | null;
      if (person !== null) checkPersonName(person);
      return this.serial(async () => {
        const { db } = await this.open(false);
        nameFaces(db, ids as number[], person);
        await db.flush();
        return { person, faces: ids.length };
      });
    }
    if (p.group === undefined) {
      throw new LibraryError(
        'name needs payload.group (a group number from cluster) and payload.name, ' +
          'or payload.faces (face ids) and payload.name',
      );
    }
    const group = p.group;
    if (!Number.isInteger(group) || (group as number) < 0) {
      throw new LibraryError('name: payload.group must be a group number from cluster (0, 1, ...)');
    }
    if (typeof p.name !== 'string') throw new LibraryError("name: payload.name must be the person's name");
    const person = p.name;
    checkPersonName(person);
    return this.serial(async () => {
      const { db } = await this.open(false);
      // Checked before the gallery is touched: a bad group enrols nothing.
      if (clusterFaces(db, group as number).length === 0) {
        throw new LibraryError(`group ${String(group)} has no unnamed faces left`);
      }
      if (!gallery) {
        const ids = nameCluster(db, group as number, person);
        await db.flush();
        return { person, faces: ids.length, enrolled: 0 };
      }
      // Through the gallery's own queue, so no other change of the gallery runs meanwhile. The
      // library is made durable first: were the gallery's save to fail, naming again enrols nothing twice.
      const ids = await gallery.update(async ({ file }) => {
        const named = nameCluster(db, group as number, person, { gallery: file.gallery });
        await db.flush();
        return named;
      });
      return { person, faces: ids.length, enrolled: ids.length };
    });
  }
}

function checkObject(payload: unknown, command: string): Payload {
  if (typeof payload !== 'object' || Array.isArray(payload) || Buffer.isBuffer(payload)) {
    throw new LibraryError(`${command}: msg.payload must be an object`);
  }
  return payload as Payload;
}

function payloadNumber(
  p: Payload,
  key: string,
  command: string,
  ok: (v: number) => boolean,
  what: string,
): number | undefined {
  const v = p[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
    throw new LibraryError(`${command}: payload.${key} must be ${what}, got ${JSON.stringify(v)}`);
  }
  return v;
}
