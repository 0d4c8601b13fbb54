/**
 * A second process that holds a gallery file, for the writer tests: opens FILE, says "ready", waits
 * for a line on stdin, then enrols NAME (one made-up vector) and saves, says "saved" and exits. Many
 * of these started together and told to go at once all write the same file from the same first read.
 *
 * Usage: node galleryWriterChild.js FILE NAME
 */
import { createInterface } from 'node:readline';

import { GalleryFile } from '../../src/gallery/galleryFile';

export const WRITER_MODEL = 'writer-test-model';
export const WRITER_DIMENSION = 8;

/** A unit vector that only `name` gets, so every person's embedding is distinct. */
export function vectorFor(name: string): Float32Array {
  const v = new Float32Array(WRITER_DIMENSION);
  for (let i = 0; i < v.length; i++)
    v[i] = Math.sin((i + 1) * (name.charCodeAt(i % name.length) + name.length));
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

async function main(file: string, name: string): Promise<void> {
  const opened = await GalleryFile.open(file, {
    modelId: WRITER_MODEL,
    dimension: WRITER_DIMENSION,
    backend: 'exact',
    writer: `test writer ${name}`,
  });
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  await new Promise((resolve) => lines.once('line', resolve));
  lines.close();
  opened.gallery.addEmbedding(name, vectorFor(name));
  await opened.save();
  process.stdout.write('saved\n');
}

if (require.main === module) {
  const [file, name] = process.argv.slice(2);
  main(file, name).catch((err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 1;
  });
}
