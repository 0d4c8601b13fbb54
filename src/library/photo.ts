/**
 * Reading one photo of a library: upright, shrunk to a size the detector gains nothing beyond, and
 * with a reason a person can act on when it cannot be read.
 */
import * as path from 'node:path';
import sharp, { type Metadata } from 'sharp';
import type { Frame } from '../types';

/** Extensions a library scan looks at; the ones sharp cannot read are reported, not skipped silently. */
export const PHOTO_EXTENSIONS = new Set([
  '.jpg',
  '.jpeg',
  '.png',
  '.webp',
  '.avif',
  '.tif',
  '.tiff',
  '.heic',
  '.heif',
]);

/**
 * Long side photos are decoded at. The detector sees 640 pixels of it and the aligner 112 per face,
 * so beyond this only decode time grows (a 12 MP JPEG shrinks on load, several times faster), while
 * a face 1/40 of a group photo's width still keeps 50 pixels.
 */
export const DEFAULT_MAX_SIDE = 2048;

/** Phone cameras reach 200 MP; shrink-on-load keeps such a decode affordable. */
export const LIBRARY_MAX_PIXELS = 250_000_000;

export function isPhotoFile(file: string): boolean {
  return PHOTO_EXTENSIONS.has(path.extname(file).toLowerCase());
}

export interface DecodedPhoto {
  frame: Frame;
  /** The photo's upright size; `frame` is this times `scale`. */
  width: number;
  height: number;
  scale: number;
}

const HEIC_MESSAGE =
  'HEIC photo: the libvips bundled with sharp reads AVIF but not HEVC-coded HEIC; convert it to JPEG';

export class PhotoReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PhotoReadError';
  }
}

export async function decodePhoto(bytes: Buffer, maxSide = DEFAULT_MAX_SIDE): Promise<DecodedPhoto> {
  if (bytes.length === 0) throw new PhotoReadError('empty file');
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    const what = imageKind(bytes);
    if (what === 'heif' && isHevcBrand(bytes)) throw new PhotoReadError(HEIC_MESSAGE);
    throw new PhotoReadError(
      what ? `corrupt or truncated ${what} (${firstLine(err)})` : `not a readable image (${firstLine(err)})`,
    );
  }
  const rotated = (meta.orientation ?? 1) >= 5;
  const width = (rotated ? meta.height : meta.width) ?? 0;
  const height = (rotated ? meta.width : meta.height) ?? 0;
  if (!(width > 0 && height > 0)) throw new PhotoReadError('image without a size');
  if (width * height > LIBRARY_MAX_PIXELS) {
    throw new PhotoReadError(
      `${width}×${height} is above the limit of ${LIBRARY_MAX_PIXELS / 1e6} megapixels`,
    );
  }
  if (meta.format === 'heif' && meta.compression === 'hevc') throw new PhotoReadError(HEIC_MESSAGE);
  const scale = Math.min(1, maxSide / Math.max(width, height));
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: LIBRARY_MAX_PIXELS, failOn: 'error' })
      .rotate()
      .resize({ width: maxSide, height: maxSide, fit: 'inside', withoutEnlargement: true })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    return {
      frame: { cameraId: '', seq: 0, ts: Date.now(), width: info.width, height: info.height, rgb: data },
      width,
      height,
      // The rounded size the resize produced, so boxes map back exactly.
      scale: scale === 1 ? 1 : info.width / width,
    };
  } catch (err) {
    const message = firstLine(err);
    if (meta.format === 'heif' && /compression|decod|support/i.test(message))
      throw new PhotoReadError(HEIC_MESSAGE);
    throw new PhotoReadError(`corrupt or truncated ${meta.format ?? 'image'} (${message})`);
  }
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}

/** The format a file's first bytes announce, to tell a damaged photo from a file of another kind. */
function imageKind(bytes: Buffer): string | undefined {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'jpeg';
  if (bytes.subarray(0, 4).toString('latin1') === '\x89PNG') return 'png';
  if (
    bytes.subarray(0, 4).toString('latin1') === 'RIFF' &&
    bytes.subarray(8, 12).toString('latin1') === 'WEBP'
  )
    return 'webp';
  if (bytes.subarray(4, 8).toString('latin1') === 'ftyp') return 'heif';
  const tiff = bytes.subarray(0, 4).toString('latin1');
  if (tiff === 'II*\0' || tiff === 'MM\0*') return 'tiff';
  return undefined;
}

/** HEIC's brands (ISO/IEC 23008-12): the HEVC-coded kind that phones write. */
function isHevcBrand(bytes: Buffer): boolean {
  const brand = bytes.subarray(8, 12).toString('latin1');
  return ['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis'].includes(brand);
}
