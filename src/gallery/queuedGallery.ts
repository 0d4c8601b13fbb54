import type { FaceFlow } from '../faceflow';
import type { GalleryFileLike, GalleryHandle, GalleryView } from './commands';
import type { Gallery } from './gallery';

export interface QueuedGalleryOptions {
  /** The models that embed enrolment photos; without them enrolment is refused, the rest works. */
  models?: () => FaceFlow;
  /** The similarity a match needs, read at each call. */
  threshold: () => number;
  /** Where enrolment photos given by path must lie; undefined accepts any absolute path. */
  imageDir?: string;
}

/**
 * A gallery that is already open (a gallery file a script or the CLI opened, or a gallery with its own
 * save) made into a command handle: changes run one at a time, each after taking in what other
 * processes wrote to the file (when it is a file) and saved before the next starts, so two callers never
 * write half-way through each other and the file follows the order of the calls.
 */
export function queuedGallery(
  file: GalleryFileLike & { refresh?: () => Promise<unknown> },
  options: QueuedGalleryOptions,
): GalleryHandle {
  const view = (): GalleryView => ({ file, flow: options.models?.() });
  let queue: Promise<unknown> = Promise.resolve();
  return {
    imageDir: options.imageDir,
    threshold: options.threshold,
    open: () => Promise.resolve(view()),
    update<T>(change: (opened: GalleryView) => Promise<T> | T): Promise<T> {
      const run = queue.then(async () => {
        await file.refresh?.();
        const result = await change(view());
        await file.save();
        return result;
      });
      queue = run.catch(() => undefined); // a failed change must not block those after it
      return run;
    },
  };
}

/**
 * A gallery kept by its owner, with the owner's save, seen as a file: it has no backups, so a deletion
 * is done once the change is saved.
 */
export function memoryGalleryFile(gallery: Gallery, save: () => Promise<void>): GalleryFileLike {
  return {
    gallery,
    save,
    removeIdentity: (name) => Promise.resolve(gallery.removeIdentity(name)),
    clear: () => Promise.resolve(gallery.clear()),
    removeUnknowns: (ids) => Promise.resolve(gallery.unknowns.remove(ids)),
    clearUnknowns: () => Promise.resolve(gallery.unknowns.clear()),
    purgeBackups: () => Promise.resolve([]),
  };
}
