import type { FaceFlow } from '../faceflow';
import { enrollFolder } from '../gallery/enroll';
import { Gallery } from '../gallery/gallery';
import { createIndex } from '../gallery/indexFactory';
import type { CommandIO } from './io';

/**
 * The people of `DIR/<person>/<photos>` in a gallery kept in memory, by the rules of every enrolment
 * (`faceflow gallery enroll --dir`, the match node's folders): a photo that cannot be read, does not show
 * one big and sharp enough face, repeats one enrolled already, or already answers to another person there
 * is reported and skipped; one bad photo must not spoil a person.
 */
export async function enrollInMemory(flow: FaceFlow, dir: string, io: CommandIO): Promise<Gallery> {
  const { id, dimension } = flow.embedder;
  const gallery = new Gallery(id, dimension, createIndex(dimension, { backend: 'exact' }));
  const report = await enrollFolder(flow, gallery, dir, {
    recursive: false,
    onProgress: ({ result }) => {
      if (!result.ok) io.err(`skipped ${result.message}`);
    },
  });
  for (const person of report.people)
    if (person.enrolled === 0) io.err(`${person.name}: no usable photo, not enrolled`);
  if (gallery.size === 0) throw new Error(`${dir}: no person could be enrolled`);
  return gallery;
}
