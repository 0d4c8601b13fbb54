import { createHash } from 'node:crypto';
import { promises as fs, unwatchFile, watchFile, type Stats } from 'node:fs';

import { FileLockError, withFileLock } from '../util/fileLock';
import { ExactIndex } from './exactIndex';
import { Gallery, GalleryError } from './gallery';
import { createIndex, type CreateIndexOptions } from './indexFactory';
import { mergeBaseOf, mergeInto, type MergeBase, type MergeReport } from './merge';
import { GalleryStore, GalleryStoreError, type GalleryStoreOptions } from './store';
import { packHint } from '../models/pack/packs';

export type { MergeReport } from './merge';

export interface GalleryFileOptions
  extends CreateIndexOptions, Pick<GalleryStoreOptions, 'allowPlaintext' | 'acceptRollback'> {
  /** The embedder whose embeddings this gallery holds; a file of another model is refused. */
  modelId: string;
  dimension: number;
  /** Encryption key: 32 bytes, 64 hex characters or a passphrase (see crypto.ts). */
  key?: Buffer | string;
  /** Rotating backups kept beside the file (default 3). */
  backups?: number;
  /** How many faces that matched nobody are kept (default 5,000). */
  unknownCapacity?: number;
  /** Who writes, as another writer that finds the file locked is told (e.g. `faceflow gallery enroll`). */
  writer?: string;
  /** How long a save waits for another process that is writing the file (default 10 s); then it fails. */
  lockWaitMs?: number;
  /** Called whenever changes another process wrote to the file were merged into this gallery. */
  onMerged?: (report: MergeReport) => void;
}

export const DEFAULT_LOCK_WAIT_MS = 10_000;
/** How often `watch()` looks at the file. */
export const DEFAULT_WATCH_INTERVAL_MS = 2000;

/**
 * The file as last read or written here: the stat fields that every save changes (a save renames a new
 * file into place) and, once the bytes had to be read, their hash, which tells a file merely touched
 * from one rewritten.
 */
interface DiskStamp {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  sha256?: string;
}

const nothingMerged = (): MergeReport => ({ changes: 0, deleted: [], added: [], conflicts: [] });

/**
 * A gallery kept in a file: loaded (or recovered from a backup) on open, written atomically by
 * `save()`. Deleting people, and faces that matched nobody, goes through here so that no file written
 * afterwards holds them — backups included.
 *
 * Several processes may hold the same file (Node-RED, the CLI, a library scan). Every write takes
 * the file's lock (`<file>.lock`, see util/fileLock.ts), re-reads the file and, when another process
 * wrote it since this one last read or wrote it, merges that writer's changes into this gallery
 * first (rules in merge.ts: deletions stay deleted, others' enrolments are kept). A long-running
 * holder calls `refresh()` (or `watch()`) to take in others' changes without writing. The `gallery`
 * object stays the same throughout: whoever holds it sees the merged content.
 */
export class GalleryFile {
  /** The file as last read or written here, the common ancestor of the next merge. */
  private base: MergeBase;
  private stamp: DiskStamp | undefined;
  /** Saves, refreshes and purges of this object, one at a time. */
  private turn: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly gallery: Gallery,
    private readonly store: GalleryStore,
    /** What went wrong while loading (a corrupt main file, a recovery from a backup). */
    readonly problems: string[],
    private readonly options: GalleryFileOptions,
    stamp: DiskStamp | undefined,
    readonly recoveredFrom?: string,
  ) {
    this.base = mergeBaseOf(gallery);
    this.stamp = stamp;
  }

  static async open(file: string, options: GalleryFileOptions): Promise<GalleryFile> {
    const { key, backups, allowPlaintext, acceptRollback } = options;
    const store = new GalleryStore(file, { key, backups, allowPlaintext, acceptRollback });
    // Stamped before loading: should another process write in between, the stamp is the older file's,
    // so the next save sees a change and merges (harmlessly) instead of missing one.
    const stamp = await statOf(store.file).then((st) => st && stampOf(st));
    const loaded = await store.load();
    const index = createIndex(options.dimension, options);
    const galleryOptions = { unknownCapacity: options.unknownCapacity };
    if (!loaded.snapshot) {
      return new GalleryFile(
        new Gallery(options.modelId, options.dimension, index, galleryOptions),
        store,
        loaded.problems,
        options,
        stamp,
      );
    }
    const s = loaded.snapshot;
    if (s.modelId !== options.modelId || s.dimension !== options.dimension) {
      index.dispose();
      throw new GalleryModelError(
        `${file} holds ${s.dimension}-d embeddings of '${s.modelId}', not ${options.dimension}-d of '${options.modelId}'; ` +
          'use one gallery file per model' +
          packHint(s.modelId),
        s.modelId,
      );
    }
    const gallery = Gallery.fromState(s, index, galleryOptions);
    const opened = new GalleryFile(gallery, store, loaded.problems, options, stamp, loaded.recoveredFrom);
    // A recovered gallery is written back at once, so the damaged main file is replaced.
    if (loaded.recoveredFrom) await opened.writeBack(loaded.recoveredFrom);
    return opened;
  }

  /** Saves a recovered gallery; where the folder cannot be written (read-only), it is used from memory, and says so. */
  private async writeBack(recoveredFrom: string): Promise<void> {
    try {
      await this.save();
    } catch (e) {
      // A folder that cannot be written cannot hold the lock file either.
      const unwritable =
        (e instanceof GalleryStoreError && e.code === 'WRITE_FAILED') ||
        (e instanceof FileLockError && e.holder === undefined && e.reason !== undefined);
      if (!unwritable) throw e;
      this.problems.push(
        `recovered from ${recoveredFrom} in memory; could not write it back: ${e.reason ?? e.message}`,
      );
    }
  }

  /** The file's absolute path. */
  get file(): string {
    return this.store.file;
  }

  /** Writes the gallery, after merging what other processes wrote to the file since it was last read here. */
  save(): Promise<void> {
    return this.inTurn(() => this.locked(() => this.mergeAndWrite()));
  }

  /**
   * Takes in what other processes wrote to the file since it was last read or written here, without
   * writing. Cheap when nothing changed (one stat). Resolves to what was merged.
   */
  refresh(): Promise<MergeReport> {
    return this.inTurn(async () => {
      const now = await statOf(this.file);
      if (!now || (this.stamp && sameFile(now, this.stamp))) return nothingMerged();
      return this.locked(() => this.mergeFromDisk());
    });
  }

  /**
   * Calls `changed` when the file on disk no longer is what was last read or written here (polled
   * every `intervalMs`); the holder then calls `refresh()` when it suits it. Returns a function
   * that stops watching. The poll does not keep the process alive.
   */
  watch(changed: () => void, intervalMs = DEFAULT_WATCH_INTERVAL_MS): () => void {
    const listener = (now: Stats) => {
      if (now.ino === 0 && now.size === 0) return; // the file is gone; nothing to take in
      if (this.stamp && sameFile(now, this.stamp)) return;
      changed();
    };
    watchFile(this.file, { interval: intervalMs, persistent: false }, listener);
    return () => unwatchFile(this.file, listener);
  }

  /** Delete a person everywhere: from the index, the file and every backup. */
  async removeIdentity(name: string): Promise<number> {
    const removed = this.gallery.removeIdentity(name);
    await this.forgetOldCopies();
    return removed;
  }

  /** Delete everyone, in the file and its backups too (unknown faces are kept: see `clearUnknowns`). */
  async clear(): Promise<void> {
    this.gallery.clear();
    await this.forgetOldCopies();
  }

  /**
   * Delete faces that matched nobody (their thumbnails with them) from the pool, the file and every backup.
   * Ids no longer held are ignored; returns how many were removed.
   */
  async removeUnknowns(ids: Iterable<number>): Promise<number> {
    const removed = this.gallery.unknowns.remove(ids);
    await this.forgetOldCopies();
    return removed;
  }

  /** Delete every face that matched nobody, in the file and its backups too; returns how many there were. */
  async clearUnknowns(): Promise<number> {
    const removed = this.gallery.unknowns.clear();
    await this.forgetOldCopies();
    return removed;
  }

  /**
   * Deletes every backup and leftover temporary file; returns their paths. Call it after `save()` when something
   * was deleted in a way this class does not cover (the save rotates the old main file into a backup first).
   */
  purgeBackups(): Promise<string[]> {
    return this.inTurn(() => this.locked(() => this.store.purgeBackups()));
  }

  private forgetOldCopies(): Promise<void> {
    // Save first: saving rotates the previous file (still holding the person) into a backup,
    // which the purge then removes with the others. Both under one lock, so no other writer
    // rotates a copy in between.
    return this.inTurn(() =>
      this.locked(async () => {
        await this.mergeAndWrite();
        await this.store.purgeBackups();
      }),
    );
  }

  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const run = this.turn.then(work);
    this.turn = run.catch(() => undefined); // a failed save must not block those after it
    return run;
  }

  private locked<T>(work: () => Promise<T>): Promise<T> {
    return withFileLock(
      this.file,
      { purpose: this.options.writer ?? 'faceflow', waitMs: this.options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS },
      work,
    );
  }

  /** Only while holding the lock. */
  private async mergeAndWrite(): Promise<void> {
    await this.mergeFromDisk();
    // State and base taken together, synchronously, so that they describe the same gallery.
    const state = this.gallery.toState();
    const base = mergeBaseOf(this.gallery);
    await this.store.save(state);
    this.base = base;
    // Nobody else writes while we hold the lock: the file there now is the one just written.
    this.stamp = await statOf(this.file).then((st) => st && stampOf(st));
  }

  /** Only while holding the lock. */
  private async mergeFromDisk(): Promise<MergeReport> {
    const now = await statOf(this.file);
    // A file that vanished has nothing to merge: the next save writes this gallery as it is.
    if (!now) return nothingMerged();
    if (this.stamp && sameFile(now, this.stamp)) return nothingMerged();
    const disk = await readStamp(this.file);
    if (!disk) return nothingMerged();
    if (this.stamp && disk.sha256 === this.stamp.sha256) {
      this.stamp = disk;
      return nothingMerged();
    }
    const loaded = await this.store.load();
    if (!loaded.snapshot || loaded.recoveredFrom) {
      // A damaged file: merging an older backup would bring back what was deleted since. This
      // gallery is written over the damage instead.
      this.problems.push(`${this.file} changed on disk but could not be read; not merged`);
      return nothingMerged();
    }
    const s = loaded.snapshot;
    if (s.modelId !== this.gallery.modelId || s.dimension !== this.gallery.dimension) {
      throw new GalleryError(
        `${this.file} now holds a gallery of '${s.modelId}' (${s.dimension}-d), written by another process; ` +
          `this one is of '${this.gallery.modelId}': not overwritten`,
      );
    }
    const index = new ExactIndex(s.dimension);
    try {
      const theirs = Gallery.fromState(s, index);
      const report = mergeInto(this.gallery, this.base, theirs);
      this.base = mergeBaseOf(theirs);
      this.stamp = disk;
      if (report.changes > 0 || report.conflicts.length > 0) this.options.onMerged?.(report);
      return report;
    } finally {
      index.dispose();
    }
  }
}

/** The file's hash and stat, from one open file, or undefined when there is no file. */
async function readStamp(file: string): Promise<DiskStamp | undefined> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = await fh.stat();
    const sha256 = createHash('sha256')
      .update(await fh.readFile())
      .digest('hex');
    return { ...stampOf(st), sha256 };
  } finally {
    await fh.close();
  }
}

function stampOf(st: Stats): DiskStamp {
  return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

async function statOf(file: string): Promise<Stats | undefined> {
  try {
    return await fs.stat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Whether `now` is the file that was stamped: a save replaces the file, so a new inode or times. */
function sameFile(now: Stats, stamp: DiskStamp): boolean {
  return (
    now.ino === stamp.ino &&
    now.size === stamp.size &&
    now.mtimeMs === stamp.mtimeMs &&
    now.ctimeMs === stamp.ctimeMs
  );
}

/** A gallery file made by another embedder than the one it is opened with. */
export class GalleryModelError extends GalleryError {
  constructor(
    message: string,
    /** The model the file's embeddings come from. */
    readonly fileModelId: string,
  ) {
    super(message);
    this.name = 'GalleryModelError';
  }
}
