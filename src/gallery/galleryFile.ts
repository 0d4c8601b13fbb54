import { Gallery, GalleryError } from './gallery';
import { createIndex, type CreateIndexOptions } from './indexFactory';
import { GalleryStore, GalleryStoreError, type GalleryStoreOptions } from './store';

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
}

/**
 * A gallery kept in a file: loaded (or recovered from a backup) on open, written atomically by
 * `save()`. Deleting people, and faces that matched nobody, goes through here so that no file written
 * afterwards holds them — backups included.
 */
export class GalleryFile {
  private constructor(
    readonly gallery: Gallery,
    private readonly store: GalleryStore,
    /** What went wrong while loading (a corrupt main file, a recovery from a backup). */
    readonly problems: string[],
    readonly recoveredFrom?: string,
  ) {}

  static async open(file: string, options: GalleryFileOptions): Promise<GalleryFile> {
    const { key, backups, allowPlaintext, acceptRollback } = options;
    const store = new GalleryStore(file, { key, backups, allowPlaintext, acceptRollback });
    const loaded = await store.load();
    const index = createIndex(options.dimension, options);
    const galleryOptions = { unknownCapacity: options.unknownCapacity };
    if (!loaded.snapshot) {
      return new GalleryFile(
        new Gallery(options.modelId, options.dimension, index, galleryOptions),
        store,
        loaded.problems,
      );
    }
    const s = loaded.snapshot;
    if (s.modelId !== options.modelId || s.dimension !== options.dimension) {
      index.dispose();
      throw new GalleryError(
        `${file} holds ${s.dimension}-d embeddings of '${s.modelId}', not ${options.dimension}-d of '${options.modelId}'; ` +
          'use one gallery file per model',
      );
    }
    const gallery = Gallery.fromState(s, index, galleryOptions);
    const opened = new GalleryFile(gallery, store, loaded.problems, loaded.recoveredFrom);
    // A recovered gallery is written back at once, so the damaged main file is replaced.
    if (loaded.recoveredFrom) await opened.writeBack(loaded.recoveredFrom);
    return opened;
  }

  /** Saves a recovered gallery; where the folder cannot be written (read-only), it is used from memory, and says so. */
  private async writeBack(recoveredFrom: string): Promise<void> {
    try {
      await this.save();
    } catch (e) {
      if (!(e instanceof GalleryStoreError) || e.code !== 'WRITE_FAILED') throw e;
      this.problems.push(
        `recovered from ${recoveredFrom} in memory; could not write it back: ${e.reason ?? e.message}`,
      );
    }
  }

  save(): Promise<void> {
    return this.store.save(this.gallery.toState());
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
    return this.store.purgeBackups();
  }

  private async forgetOldCopies(): Promise<void> {
    // Save first: saving rotates the previous file (still holding the person) into a backup,
    // which the purge then removes with the others.
    await this.save();
    await this.store.purgeBackups();
  }
}
