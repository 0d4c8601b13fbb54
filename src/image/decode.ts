import { promises as fs } from 'node:fs';
import sharp, { type Metadata } from 'sharp';
import type { Frame } from '../types';

/** 40 megapixels: more than any camera frame or phone photo, far less than a decompression bomb. */
export const DEFAULT_MAX_PIXELS = 40_000_000;

const SUPPORTED_FORMATS = new Set(['jpeg', 'png', 'webp']);

export interface DecodeOptions {
  /** Refuse images with more pixels than this (checked on the header, before decoding). */
  maxPixels?: number;
  cameraId?: string;
  seq?: number;
  ts?: number;
}

/** Raised for any input that is not a usable image; the message is meant for a person. */
export class ImageDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageDecodeError';
  }
}

/** An image refused for its size in pixels, read from its header: the caller asked too much, not for something broken. */
export class ImageTooLargeError extends ImageDecodeError {
  constructor(
    message: string,
    readonly pixels: number,
    readonly maxPixels: number,
  ) {
    super(message);
    this.name = 'ImageTooLargeError';
  }
}

/**
 * Throws ImageTooLargeError when the header of `bytes` (a JPEG, PNG or WebP) promises more than `maxPixels`
 * pixels; reads the header only, so a small file that would decode to gigabytes costs nothing. Anything that is
 * not a readable image passes: decoding it explains what is wrong.
 */
export async function checkImagePixels(bytes: Buffer, maxPixels: number, label = 'image'): Promise<void> {
  if (!looksLikeImage(bytes)) return;
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    return;
  }
  const pixels = (metadata.width ?? 0) * (metadata.height ?? 0);
  if (pixels > maxPixels) throw tooManyPixels(label, metadata.width ?? 0, metadata.height ?? 0, maxPixels);
}

function tooManyPixels(label: string, width: number, height: number, maxPixels: number): ImageTooLargeError {
  const pixels = width * height;
  return new ImageTooLargeError(
    `${label}: ${width}×${height} image has ${pixels} pixels, above the limit of ${maxPixels}`,
    pixels,
    maxPixels,
  );
}

/**
 * Decode a JPEG, PNG or WebP (a file path or the encoded bytes) into a packed RGB `Frame`,
 * rotated upright according to its EXIF orientation.
 */
export async function decodeImage(input: string | Buffer, options: DecodeOptions = {}): Promise<Frame> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const label = typeof input === 'string' ? input : 'image buffer';
  const bytes = await readInput(input);
  if (bytes.length === 0) throw new ImageDecodeError(`${label}: empty input`);

  // The common case is one libvips pipeline: it reads the header, refuses too many pixels before
  // decoding any, and decodes. Only a failure pays for a second look, to explain itself.
  if (looksLikeImage(bytes)) {
    try {
      // rotate() with no angle applies the EXIF orientation, so faces come out upright.
      const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
        .rotate()
        .removeAlpha()
        .toColourspace('srgb')
        .raw()
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== 3)
        throw new ImageDecodeError(`${label}: expected 3 channels, got ${info.channels}`);
      return {
        cameraId: options.cameraId ?? '',
        seq: options.seq ?? 0,
        ts: options.ts ?? Date.now(),
        width: info.width,
        height: info.height,
        rgb: data,
      };
    } catch (err) {
      if (err instanceof ImageDecodeError) throw err;
      throw await explainFailure(bytes, label, maxPixels, err);
    }
  }
  throw await explainFailure(bytes, label, maxPixels, undefined);
}

/** Why an input could not be decoded, in words a person can act on. */
async function explainFailure(
  bytes: Buffer,
  label: string,
  maxPixels: number,
  cause: unknown,
): Promise<ImageDecodeError> {
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    if (looksLikeImage(bytes)) {
      return new ImageDecodeError(`${label}: corrupt or truncated image (${firstLine(cause ?? err)})`);
    }
    return new ImageDecodeError(`${label}: not a readable image (expected JPEG, PNG or WebP)`);
  }
  if (!metadata.format || !SUPPORTED_FORMATS.has(metadata.format) || !looksLikeImage(bytes)) {
    return new ImageDecodeError(
      `${label}: unsupported image format '${metadata.format ?? 'unknown'}' (expected JPEG, PNG or WebP)`,
    );
  }
  const width = metadata.width ?? 0;
  const height = metadata.height ?? 0;
  if (width * height > maxPixels) return tooManyPixels(label, width, height, maxPixels);
  return new ImageDecodeError(`${label}: corrupt or truncated image (${firstLine(cause)})`);
}

async function readInput(input: string | Buffer): Promise<Buffer> {
  if (Buffer.isBuffer(input)) return input;
  if (typeof input !== 'string') {
    throw new ImageDecodeError(`expected a file path or a Buffer, got ${describe(input)}`);
  }
  try {
    const stat = await fs.stat(input);
    if (!stat.isFile()) throw new ImageDecodeError(`${input}: not a file`);
    return await fs.readFile(input);
  } catch (err) {
    if (err instanceof ImageDecodeError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ImageDecodeError(`${input}: no such file`);
    if (code === 'EACCES') throw new ImageDecodeError(`${input}: permission denied`);
    throw new ImageDecodeError(`${input}: cannot read (${(err as Error).message})`);
  }
}

/** Magic numbers of the formats we read, to tell a damaged image from a file of another kind. */
export function looksLikeImage(bytes: Buffer): boolean {
  const jpeg = bytes[0] === 0xff && bytes[1] === 0xd8;
  const png = bytes.subarray(0, 4).toString('latin1') === '\x89PNG';
  const webp =
    bytes.subarray(0, 4).toString('latin1') === 'RIFF' && bytes.subarray(8, 12).toString('latin1') === 'WEBP';
  return jpeg || png || webp;
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

/** Encode a frame as JPEG, for people and networks (raw pixels travel between stages). */
export async function encodeJpeg(
  frame: Pick<Frame, 'width' | 'height' | 'rgb'>,
  quality = 85,
): Promise<Buffer> {
  return sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();
}
