import sharp from 'sharp';

import { alignFace, framedTemplate, type RgbImage } from '../align';
import type { Point } from '../types';

/** Side of a face thumbnail in pixels. */
export const THUMBNAIL_SIZE = 112;

/**
 * A small upright JPEG of a face, for asking a person who it is. Aligned like the embedder's crop
 * but zoomed out (0.8) so hair and chin show: people recognise a head more easily than a tight
 * crop of the eyes and mouth. About 3–5 KB, well under the unknown pool's 64 KiB limit.
 */
export async function faceThumbnail(
  frame: RgbImage,
  landmarks: readonly Point[],
  size = THUMBNAIL_SIZE,
): Promise<Buffer> {
  const { aligned } = alignFace(frame, landmarks, size, framedTemplate({ size, zoom: 0.8, shiftY: 0 }));
  return sharp(aligned, { raw: { width: size, height: size, channels: 3 } })
    .jpeg({ quality: 80 })
    .toBuffer();
}

/**
 * Thumbnails side by side on a grey sheet, `columns` per row, as one JPEG: a cluster at a glance.
 * Every thumbnail is scaled to `size`×`size`; one that cannot be read leaves its cell grey.
 */
export async function contactSheet(
  thumbnails: Buffer[],
  columns = 4,
  size = THUMBNAIL_SIZE,
): Promise<Buffer> {
  if (thumbnails.length === 0) throw new Error('contactSheet: no thumbnails');
  const gap = 4;
  const cols = Math.max(1, Math.min(columns, thumbnails.length));
  const rows = Math.ceil(thumbnails.length / cols);
  const cells = await Promise.all(
    thumbnails.map((t) =>
      sharp(t)
        .resize(size, size)
        .toBuffer()
        .catch(() => null),
    ),
  );
  const composites = cells.flatMap((input, i) =>
    input
      ? [{ input, left: gap + (i % cols) * (size + gap), top: gap + Math.floor(i / cols) * (size + gap) }]
      : [],
  );
  return sharp({
    create: {
      width: gap + cols * (size + gap),
      height: gap + rows * (size + gap),
      channels: 3,
      background: { r: 64, g: 64, b: 64 },
    },
  })
    .composite(composites)
    .jpeg({ quality: 85 })
    .toBuffer();
}
