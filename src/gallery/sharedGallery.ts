import type { FaceFlow } from '../faceflow';
import type { GalleryHandle, OpenGallery } from './commands';
import { GalleryFile } from './galleryFile';
import type { VectorBackend } from './indexFactory';
import { GalleryStoreError, isEncryptedFile } from './store';
import { applyGalleryChange, galleryChanges, galleryDigest, type GalleryChange } from './sync';

export interface SharedGalleryOptions {
  /** The gallery file (absolute path). */
  file: string;
  /** The models that fill the gallery, opened when first needed. */
  models: () => Promise<FaceFlow>;
  key?: string;
  /** 'migrate': encrypt a plain file with `key` once opened (and delete its plain backups). */
  allowPlaintext?: 'migrate';
  backups?: number;
  backend?: VectorBackend;
  /** Who writes, for the file's lock and merge reports. */
  writer: string;
  /** A threshold that overrides the gallery's calibrated one and the model's. */
  threshold?: number;
  /** Where enrolment photos given by path must lie. */
  imageDir?: string;
  /** Sends the changes made here to other instances (the MQTT sync); undefined without sync. */
  publish?: () => ((changes: GalleryChange[]) => void) | undefined;
  on?: { log?: (text: string) => void; warn?: (text: string) => void };
}

/**
 * One gallery file shared by everything in a process that names or enrols people (the Node-RED
 * gallery node and the nodes that use it, a script): opened once on first use, every change run one
 * at a time after taking in what other writers saved, then saved (and published to other instances),
 * and the file watched so others' changes arrive within seconds. A change that was answered is on
 * disk before `close()` returns.
 */
export class SharedGallery implements GalleryHandle {
  private opening: Promise<OpenGallery> | undefined;
  private opened: OpenGallery | undefined;
  // Every change and save is chained here; a failed one must not block those after it.
  private queue: Promise<unknown> = Promise.resolve();
  private stopWatching: (() => void) | undefined;
  private closed = false;
  /** Why the last open failed, until one succeeds. */
  openError: string | undefined;

  constructor(private readonly options: SharedGalleryOptions) {}

  get imageDir(): string | undefined {
    return this.options.imageDir;
  }

  /** The open gallery, if it is (for reports that must not open it). */
  get current(): OpenGallery | undefined {
    return this.opened;
  }

  /** What a health report shows of the gallery, read without opening it. */
  figures(): { open: boolean; people: number | null; embeddings: number | null; error?: string } {
    const gallery = this.opened?.file.gallery;
    return {
      open: gallery !== undefined,
      people: gallery ? gallery.size : null,
      embeddings: gallery ? gallery.embeddingCount : null,
      ...(this.openError === undefined ? {} : { error: this.openError }),
    };
  }

  open(): Promise<OpenGallery> {
    this.opening ??= this.openOnce().catch((err: Error) => {
      this.opening = undefined; // the next call tries again, e.g. once the models are built
      this.openError = err.message;
      throw err;
    });
    return this.opening;
  }

  threshold(): number {
    if (this.options.threshold !== undefined) return this.options.threshold;
    if (!this.opened) throw new Error('the gallery is not open yet');
    return this.opened.file.gallery.threshold ?? this.opened.flow.threshold;
  }

  /** Runs a change, saves the gallery and publishes what changed to other instances. */
  update<T>(change: (opened: OpenGallery) => Promise<T> | T): Promise<T> {
    return this.run(change, true);
  }

  /** Applies a change another instance made; it is not published back. */
  applyRemote(change: unknown): Promise<void> {
    return this.run(({ file }) => {
      applyGalleryChange(file.gallery, change);
    }, false);
  }

  /** Stops watching and lets queued changes finish; the gallery may be opened anew afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopWatching?.();
    await this.queue;
    this.opening = undefined;
    this.opened = undefined;
  }

  private run<T>(change: (o: OpenGallery) => Promise<T> | T, publish: boolean): Promise<T> {
    const run = this.queue.then(async () => {
      const o = await this.open();
      // Others' changes first, so this one applies to the file as it is and is all that gets published.
      await o.file.refresh();
      const send = publish ? this.options.publish?.() : undefined;
      const before = send ? galleryDigest(o.file.gallery) : undefined;
      const result = await change(o);
      await o.file.save();
      if (send && before) send(galleryChanges(before, o.file.gallery));
      return result;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async openOnce(): Promise<OpenGallery> {
    const { file, key, allowPlaintext, backups, backend, writer } = this.options;
    const log = this.options.on?.log ?? (() => undefined);
    const warn = this.options.on?.warn ?? (() => undefined);
    const flow = await this.options.models();
    const gallery = await GalleryFile.open(file, {
      modelId: flow.embedder.id,
      dimension: flow.embedder.dimension,
      key,
      allowPlaintext,
      backups,
      backend,
      writer,
      onMerged: (report) => {
        log(
          `gallery file changed on disk: merged ${report.changes} changes ` +
            `(${report.added.length} people added, ${report.deleted.length} deleted) (${file})`,
        );
        for (const conflict of report.conflicts) warn(`gallery ${file}: ${conflict}`);
      },
    }).catch((err: unknown) => {
      throw readable(err, file);
    });
    for (const problem of gallery.problems) warn(`gallery ${file}: ${problem}`);
    if (gallery.recoveredFrom) warn(`gallery ${file}: recovered from backup ${gallery.recoveredFrom}`);
    if (allowPlaintext && (await isEncryptedFile(file)) === false) {
      // Encrypted now rather than at the first change; the plain backups would keep the data in the clear.
      await gallery.save();
      await gallery.purgeBackups();
      warn(
        `gallery ${file}: encrypted the plain gallery file and deleted its plain backups; ` +
          '"Encrypt an existing plain file" can be turned off again',
      );
    }
    this.opened = { file: gallery, flow };
    this.openError = undefined;
    // Changes other processes (the CLI, another flow) write to the file are taken in within seconds,
    // so a person deleted there stops being recognised here and is not written back by our next save.
    if (!this.closed) {
      this.stopWatching = gallery.watch(() => {
        const run = this.queue.then(() => gallery.refresh());
        this.queue = run.catch((err: Error) => warn(`gallery ${file}: ${err.message}`));
      });
    }
    return this.opened;
  }
}

/**
 * Store errors start with the file's path, which is all a 40-character status line would show; the
 * cause goes first so that "wrong key" is what a person reads in the editor.
 */
function readable(err: unknown, file: string): Error {
  if (!(err instanceof GalleryStoreError)) return err instanceof Error ? err : new Error(String(err));
  const cause = err.message.startsWith(`${file}: `) ? err.message.slice(file.length + 2) : err.message;
  const hints: Partial<Record<string, string>> = {
    WRONG_KEY: 'wrong key: ',
    KEY_REQUIRED: 'key required: ',
    PLAINTEXT_REFUSED: 'plain file refused: ',
    ROLLBACK: 'older copy refused: ',
  };
  const hint = hints[err.code] ?? '';
  const out = new Error(`${hint && cause.startsWith(hint.slice(0, -2)) ? '' : hint}${cause} (${file})`);
  (out as Error & { code?: string }).code = err.code;
  return out;
}
