import { NoSingleFaceError, type FaceFlow } from '../faceflow';
import { MemoryGallery } from '../gallery/memoryGallery';
import { decodeImage, ImageDecodeError } from '../image/decode';
import type { CommandIO } from './io';
import { peopleFolders } from './images';

/**
 * Build an in-memory gallery from `DIR/<person>/<photos>`. A photo that cannot be read or does
 * not show exactly one clear face is reported and skipped: one bad photo must not spoil a person.
 */
export async function enrollFolder(flow: FaceFlow, dir: string, io: CommandIO): Promise<MemoryGallery> {
  const gallery = new MemoryGallery(flow.embedder.id);
  for (const [name, photos] of peopleFolders(dir)) {
    let added = 0;
    for (const file of photos) {
      try {
        const face = await flow.singleFace(await decodeImage(file), file);
        gallery.add(name, face.embedding as Float32Array, {});
        added++;
      } catch (err) {
        if (!(err instanceof ImageDecodeError || err instanceof NoSingleFaceError)) throw err;
        io.err(`skipped ${err.message}`);
      }
    }
    if (added === 0) io.err(`${name}: no usable photo, not enrolled`);
  }
  if (gallery.size === 0) throw new Error(`${dir}: no person could be enrolled`);
  return gallery;
}
