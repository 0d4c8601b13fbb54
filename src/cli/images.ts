import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp']);

export function isImageFile(file: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(file).toLowerCase());
}

/** Image files directly inside a folder, sorted by name. */
export function imagesIn(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && isImageFile(e.name))
    .map((e) => path.join(dir, e.name))
    .sort();
}

/** `DIR/<person>/<photos>`: one folder per person; loose files at the top are ignored. */
export function peopleFolders(dir: string): Map<string, string[]> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: no such folder`);
  const people = new Map<string, string[]>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const photos = imagesIn(path.join(dir, entry.name));
    if (photos.length > 0) people.set(entry.name, photos);
  }
  if (people.size === 0) {
    throw new Error(`${dir}: expected one folder per person with JPEG/PNG/WebP photos inside, found none`);
  }
  return new Map([...people.entries()].sort(([a], [b]) => a.localeCompare(b)));
}
