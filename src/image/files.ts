import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp']);

export function isImageFile(file: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(file).toLowerCase());
}

/** stat() follows symbolic links, so linked photos and folders count like real ones. */
function isKind(file: string, kind: 'file' | 'dir'): boolean {
  try {
    const st = statSync(file);
    return kind === 'file' ? st.isFile() : st.isDirectory();
  } catch {
    return false; // a dangling link
  }
}

/** Image files directly inside a folder, sorted by name. */
export function imagesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => isImageFile(name))
    .map((name) => path.join(dir, name))
    .filter((file) => isKind(file, 'file'))
    .sort();
}

/** Image files anywhere below a folder (hidden entries skipped), sorted by path. */
export function imagesBelow(dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const file = path.join(dir, name);
    if (isKind(file, 'dir')) found.push(...imagesBelow(file));
    else if (isImageFile(name) && isKind(file, 'file')) found.push(file);
  }
  return found;
}

/** `DIR/<person>/<photos>`: one folder per person; loose files at the top are ignored. */
export function peopleFolders(dir: string, options: { recursive?: boolean } = {}): Map<string, string[]> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: no such folder`);
  const people = new Map<string, string[]>();
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.') || !isKind(path.join(dir, name), 'dir')) continue;
    const folder = path.join(dir, name);
    const photos = options.recursive ? imagesBelow(folder) : imagesIn(folder);
    if (photos.length > 0) people.set(name, photos);
  }
  if (people.size === 0) {
    throw new Error(`${dir}: expected one folder per person with JPEG/PNG/WebP photos inside, found none`);
  }
  return new Map([...people.entries()].sort(([a], [b]) => a.localeCompare(b)));
}
