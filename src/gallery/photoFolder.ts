import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { isImageFile } from '../image/files';

/** Most photos one folder enrolment takes on: each costs a detection and an embedding, about 0.1 s. */
export const MAX_FOLDER_PHOTOS = 500;

export interface ConfinedPhotos {
  /** Person → their photos (real paths), people sorted by name, photos by path. */
  people: Map<string, string[]>;
  /** Entries that were left out because their real location is outside the root, as given (relative). */
  outside: string[];
  /** How many photos were found in all. */
  count: number;
}

export class PhotoFolderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PhotoFolderError';
  }
}

/**
 * The photos of a folder, confined to `root`: `folder` may be relative to `root` or absolute, and
 * must lie inside it once symbolic links are resolved. Without `person`, each sub-folder is one
 * person named after it (`DIR/<person>/<photos>`, sub-folders too, loose files ignored), the layout
 * `faceflow gallery enroll --dir` reads; with `person`, every photo below the folder is theirs.
 *
 * Unlike `peopleFolders` (src/image/files.ts) this resolves every entry: the folder name comes from a
 * message, which may come from outside, so a link inside the tree that points out of `root` is
 * left out and reported instead of followed, a link loop is walked once, and the walk is
 * asynchronous and stops after `maxPhotos` + 1 photos so that a huge tree neither blocks the
 * event loop nor runs for minutes before the command is refused.
 */
export async function confinedPhotos(
  root: string,
  folder: string,
  options: { person?: string; maxPhotos?: number } = {},
): Promise<ConfinedPhotos> {
  const maxPhotos = options.maxPhotos ?? MAX_FOLDER_PHOTOS;
  const realRoot = await fs.realpath(root).catch(() => {
    throw new PhotoFolderError(`the photos folder ${root} does not exist`);
  });
  const start = await realInside(realRoot, path.resolve(realRoot, folder));
  if (start === undefined)
    throw new PhotoFolderError(`folder '${folder}' is outside the gallery's photos folder`);
  if (start === null)
    throw new PhotoFolderError(`folder '${folder}' does not exist in the gallery's photos folder`);
  if (!(await fs.stat(start)).isDirectory()) throw new PhotoFolderError(`'${folder}' is not a folder`);

  const result: ConfinedPhotos = { people: new Map(), outside: [], count: 0 };
  const visited = new Set<string>();
  const show = (p: string) => path.relative(realRoot, p) || '.';

  const walk = async (dir: string, into: string[], topLevel: boolean): Promise<void> => {
    if (visited.has(dir)) return;
    visited.add(dir);
    const names = (await fs.readdir(dir)).filter((n) => !n.startsWith('.')).sort();
    for (const name of names) {
      const entry = path.join(dir, name);
      const real = await realInside(realRoot, entry);
      if (real === null) continue; // a dangling link
      if (real === undefined) {
        result.outside.push(show(entry));
        continue;
      }
      const stat = await fs.stat(real).catch(() => undefined);
      if (!stat) continue;
      if (stat.isDirectory()) {
        if (topLevel) {
          const photos: string[] = [];
          await walk(real, photos, false);
          if (photos.length > 0) result.people.set(name, photos);
        } else await walk(real, into, false);
      } else if (stat.isFile() && isImageFile(name) && !topLevel) {
        into.push(real);
        if (++result.count > maxPhotos) {
          throw new PhotoFolderError(
            `folder '${folder}' holds more than ${maxPhotos} photos; enrol it in parts (one person's folder at a time)`,
          );
        }
      }
    }
  };

  if (options.person === undefined) {
    await walk(start, [], true);
  } else {
    const photos: string[] = [];
    // One person's folder: its own photos count, so the top level is walked like any other.
    await walk(start, photos, false);
    if (photos.length > 0) result.people.set(options.person, photos);
  }
  result.people = new Map([...result.people.entries()].sort(([a], [b]) => a.localeCompare(b)));
  return result;
}

/** The real path of `p` when it lies inside `realRoot` (or is it); undefined outside; null when missing. */
async function realInside(realRoot: string, p: string): Promise<string | null | undefined> {
  let real: string;
  try {
    real = await fs.realpath(p);
  } catch {
    return null;
  }
  const rel = path.relative(realRoot, real);
  const out = rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel);
  return out ? undefined : real;
}
