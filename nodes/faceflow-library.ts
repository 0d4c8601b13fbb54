import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';

import type { FaceFlow } from '../src/faceflow';
import { contactSheet } from '../src/gallery/thumbnail';
import {
  checkPersonName,
  clusterFaces,
  clusterLibrary,
  clusterSamples,
  exportCsv,
  exportLibrary,
  LibraryDb,
  LibraryError,
  matchKnown,
  nameCluster,
  nameFaces,
  scanFolder,
  librarySummary,
  peopleSummary,
  repairLibrary,
  scanSummary,
  unassignedFaces,
  watchLoop,
  type ScanReport,
  type ScanSummary,
} from '../src/library';
import type { GalleryNode } from './faceflow-gallery';
import type { ModelsNode } from './faceflow-models';
import { handleInput, shorten, StatusThrottle } from './lib/runtime';
import { flag } from './lib/source';
import { translator } from './lib/i18n';

interface LibraryDef extends NodeDef {
  folder?: string;
  db?: string;
  models: string;
  gallery?: string;
  watch?: boolean | string;
  interval?: string | number;
  includeLowQuality?: boolean | string;
}

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
type LibraryCommand = (typeof LIBRARY_COMMANDS)[number];

const DEFAULT_INTERVAL_S = 300;
/** Quiet time after the last filesystem event before scanning, so that a photo being copied is read whole. */
const SETTLE_MS = 2000;

type LibraryMessage = NodeMessageInFlow & { payload: unknown; error?: unknown };
type Payload = Record<string, unknown>;

interface LibraryCredentials {
  key?: string;
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

/**
 * `faceflow-library`: keeps a photo library (src/library) of a folder up to date, scanning it on
 * deploy, when files change and every interval, and carries out the library's commands
 * (`msg.topic` scan, status, match, cluster, recluster, name, people, export, thumbnail, compact, repair).
 * Everything that writes the library, scans and commands alike, runs one at a time through one queue.
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  function FaceflowLibraryNode(this: Node<LibraryCredentials>, def: LibraryDef) {
    RED.nodes.createNode(this, def);
    // Encrypts the library file; kept in Node-RED's credentials, never in the flow.
    const key = this.credentials?.key || undefined;
    const models = RED.nodes.getNode(def.models) as ModelsNode | null;
    const gallery = def.gallery ? (RED.nodes.getNode(def.gallery) as GalleryNode | null) : null;
    const userDir = RED.settings.userDir ?? path.join(os.homedir(), '.node-red');
    const folder = def.folder ? path.resolve(userDir, def.folder) : undefined;
    const dbFile = path.resolve(userDir, def.db || 'faceflow-library.ffl');
    const watching = flag(def.watch, true);
    const intervalS = Number(def.interval);
    const intervalMs = (Number.isFinite(intervalS) && intervalS >= 1 ? intervalS : DEFAULT_INTERVAL_S) * 1000;
    const includeLowQuality = flag(def.includeLowQuality, false);
    const progress = new StatusThrottle(this);
    const controller = new AbortController();
    const signal = controller.signal;

    let opened: Opened | undefined;
    let closing = false;
    let compacting = false;
    let scanning = false;
    let pending: PendingScan | undefined;
    // Every write of the library (scans and commands) is chained here; a failed one must not block the next.
    let queue: Promise<unknown> = Promise.resolve();
    const serial = <T>(work: () => Promise<T>): Promise<T> => {
      const run = queue.then(work);
      queue = run.catch(() => undefined);
      return run;
    };

    const showSummary = () => {
      if (!opened || scanning) return;
      const s = librarySummary(opened.db);
      this.status({
        fill: 'green',
        shape: 'dot',
        text: shorten(`${s.photos} photos, ${s.faces} faces, ${s.people} people`),
      });
    };
    // The paths that start most messages would be all a 40-character status line shows: the cause goes first.
    const statusOf = (message: string): string => {
      if (folder && message.startsWith(`${folder}: `)) return message.slice(folder.length + 2);
      if (message.startsWith(dbFile)) return `library${message.slice(dbFile.length)}`;
      return message;
    };
    const showError = (message: string) => {
      this.status({ fill: 'red', shape: 'ring', text: shorten(statusOf(message)) });
    };

    /** Opens the library once (only ever called from the queue); `create` only for a scan, as the CLI does. */
    const open = async (create: boolean): Promise<Opened> => {
      if (opened) return opened;
      if (!models) throw new Error(t('common.error.noModels'));
      const flow = await models.faceflow();
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
        this.warn(`${dbFile}: dropped the last ${db.recoveredBytes} bytes, a record cut short by a crash`);
      }
      opened = { flow, db };
      return opened;
    };

    /** Runs a reading command at once, unless the library is not open yet or is being compacted. */
    const read = <T>(work: (o: Opened) => T | Promise<T>): Promise<T> =>
      opened && !compacting ? Promise.resolve(work(opened)) : serial(async () => work(await open(false)));

    const warnedOutside = new Set<string>();
    const runScan = async (): Promise<{ answer: ScanSummary; changed: boolean }> => {
      if (signal.aborted) throw new Error(t('faceflow-library.error.stopping'));
      if (!folder) throw new Error(t('faceflow-library.error.noFolder'));
      if (!(await fs.stat(folder).catch(() => undefined))?.isDirectory()) {
        throw new Error(`${folder}: no such folder`);
      }
      if (signal.aborted) throw new Error(t('faceflow-library.error.stopping'));
      const { flow, db } = await open(true);
      const knownUnreadable = new Set(db.unreadable.keys());
      scanning = true;
      let report: ScanReport;
      try {
        report = await scanFolder(flow, db, folder, {
          signal,
          onProgress: (p) => {
            if (p.outcome !== 'unchanged' || p.done === p.total)
              progress.show(`scanning ${p.done}/${p.total}`);
          },
        });
        if (!report.interrupted && db.garbageRatio() > 0.5) await db.compact();
      } finally {
        scanning = false;
      }
      const newUnreadable = report.unreadable.filter((u) => !knownUnreadable.has(u.path));
      for (const u of newUnreadable) this.warn(`unreadable: ${u.path}: ${u.error}`);
      for (const o of report.outside.filter((o) => !warnedOutside.has(o))) {
        warnedOutside.add(o);
        this.warn(`skipped: ${o} leads outside the folder`);
      }
      showSummary();
      const answer = scanSummary(report, db);
      return { answer, changed: report.scanned + report.copies + report.gone + newUnreadable.length > 0 };
    };

    /** The scan queued or under way, else a new one. */
    const requestScan = (byCommand: boolean): PendingScan => {
      if (!pending) {
        const p: PendingScan = { promise: undefined as never, commands: 0 };
        p.promise = serial(runScan).finally(() => {
          if (pending === p) pending = undefined;
        });
        pending = p;
      }
      if (byCommand) pending.commands++;
      return pending;
    };

    // --- Watching: a scan on deploy, then whenever files change (after a quiet moment) and every interval.
    let lastLoopError: string | undefined;
    const scanForLoop = async () => {
      const scan = requestScan(false);
      try {
        const { answer, changed } = await scan.promise;
        lastLoopError = undefined;
        if (changed && scan.commands === 0 && !signal.aborted) this.send({ topic: 'scan', payload: answer });
      } catch (err) {
        // Stopped mid-scan (a redeploy): the models may close under it; the next deployment goes on from there.
        if (signal.aborted) return;
        const message = (err as Error).message;
        showError(message);
        // Reported once, not every interval while the folder stays away; a command waiting reports it too.
        if (scan.commands === 0 && message !== lastLoopError) this.error(`scan failed: ${message}`);
        lastLoopError = message;
      }
    };
    const loop = () => watchLoop(folder!, scanForLoop, { signal, intervalMs, settleMs: SETTLE_MS }).done;

    let looping: Promise<void> = Promise.resolve();
    if (!models) showError('no models configured');
    else if (!folder) showError('no photos folder set');
    else if (watching) looping = loop();
    else this.status({});

    // --- Commands

    const runCommand = async (command: LibraryCommand, payload: unknown): Promise<unknown> => {
      const p: Payload =
        payload === undefined || payload === null || payload === '' || command === 'scan'
          ? {}
          : checkObject(payload, command);
      switch (command) {
        case 'scan':
          return (await requestScan(true).promise).answer;
        case 'status':
          return read(({ db }) => ({
            ...librarySummary(db),
            model: db.meta.modelId,
            groups: db.clusters?.clusters.length ?? 0,
            unreadableFiles: [...db.unreadable.values()].map((u) => ({ path: u.path, error: u.error })),
            scanning,
          }));
        case 'match':
        case 'cluster':
        case 'recluster':
          return people(command, p);
        case 'name':
          return name(p);
        case 'people':
          return read(({ db }) => peopleSummary(db));
        case 'export': {
          const format = p.format ?? 'csv';
          if (format !== 'csv' && format !== 'json') {
            throw new LibraryError(
              `export: payload.format must be csv or json, got ${JSON.stringify(format)}`,
            );
          }
          return read(({ db }) => {
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
          return read(({ db }) => db.thumbnail(id as number));
        }
        case 'sheet': {
          const group = p.group;
          if (!Number.isInteger(group) || (group as number) < 0) {
            throw new LibraryError('sheet: payload.group must be a group number from cluster (0, 1, …)');
          }
          return read(async ({ db }) => {
            const ids = clusterSamples(db, group as number, 12);
            if (ids.length === 0)
              throw new LibraryError(`sheet: group ${String(group)} has no unnamed faces left`);
            return contactSheet(await Promise.all(ids.map((id) => db.thumbnail(id))));
          });
        }
        case 'compact':
          return serial(async () => {
            const { db } = await open(false);
            compacting = true;
            try {
              const before = (await fs.stat(db.file)).size;
              await db.compact();
              return { bytesBefore: before, bytesAfter: (await fs.stat(db.file)).size };
            } finally {
              compacting = false;
            }
          });
        case 'repair':
          // Through the queue like any writer; the library is closed first (the repair takes its
          // lock) and opened again by the next command, from the repaired file.
          return serial(async () => {
            compacting = true;
            try {
              await opened?.db.close();
              opened = undefined;
              return await repairLibrary(dbFile, { key });
            } finally {
              compacting = false;
            }
          });
      }
    };

    const people = (command: 'match' | 'cluster' | 'recluster', p: Payload) => {
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
      return serial(async () => {
        const { db, flow } = await open(false);
        const out: Record<string, unknown> = {};
        if (command !== 'cluster') {
          const known = gallery ? (await gallery.open()).file.gallery : undefined;
          const { assigned, ambiguous } = matchKnown(db, {
            threshold: threshold ?? (gallery ? gallery.threshold() : (db.meta.threshold ?? flow.threshold)),
            gallery: known,
            includeLowQuality,
          });
          out.matched = assigned.map((a) => ({ ...a, similarity: round(a.similarity, 4) }));
          out.ambiguous = ambiguous.map((a) => ({
            id: a.id,
            candidates: a.candidates.map((c) => ({ ...c, similarity: round(c.similarity, 4) })),
          }));
        }
        if (command !== 'match') {
          const stored = clusterLibrary(db, { eps, minPoints, includeLowQuality });
          const grouped = new Set(stored.clusters.flat());
          out.groups = stored.clusters.map((ids, n) => ({
            group: n,
            faces: ids.length,
            samples: clusterSamples(db, n, 4),
          }));
          out.ungrouped = unassignedFaces(db, { includeLowQuality }).filter((f) => !grouped.has(f.id)).length;
        }
        await db.flush();
        return out;
      });
    };

    const name = (p: Payload) => {
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
        return serial(async () => {
          const { db } = await open(false);
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
      return serial(async () => {
        const { db } = await open(false);
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
    };

    handleInput<LibraryMessage>(
      this,
      async (msg, send) => {
        try {
          const topic = msg.topic;
          if (typeof topic !== 'string' || !(LIBRARY_COMMANDS as readonly string[]).includes(topic)) {
            throw new LibraryError(
              `unknown command ${JSON.stringify(topic)} in msg.topic: expected ${LIBRARY_COMMANDS.join(', ')}`,
            );
          }
          if (closing) throw new Error(t('faceflow-library.error.stopping'));
          msg.payload = await runCommand(topic as LibraryCommand, msg.payload);
          delete msg.error;
          showSummary();
          send(msg);
        } catch (err) {
          // The answer goes out too, so a flow waiting for it (an HTTP response) is not left hanging.
          msg.error = { message: err instanceof Error ? err.message : String(err) };
          send(msg);
          throw err;
        }
      },
      statusOf,
    );

    this.on('close', (done: () => void) => {
      closing = true;
      controller.abort();
      // The scan stops after its photo, queued commands finish, then the lock is released so that
      // the next deployment can open the library again.
      looping
        .catch(() => undefined)
        .then(() => queue)
        .then(() => opened?.db.close())
        .catch((err: unknown) => this.warn(`closing ${dbFile}: ${(err as Error).message}`))
        .then(() => {
          opened = undefined;
          done();
        });
    });
  }
  RED.nodes.registerType<Node<LibraryCredentials>, LibraryDef, unknown, LibraryCredentials>(
    'faceflow-library',
    FaceflowLibraryNode,
    { credentials: { key: { type: 'password' } } },
  );
};

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
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
