import type { Frame } from '../types';
import { pendingI420 } from '../util/i420';
import { decodeImage, ImageDecodeError, type DecodeOptions } from './decode';

/**
 * A message payload as a `Frame`: a Frame passes through untouched (pixels are never copied), an
 * encoded image (JPEG/PNG/WebP bytes) or a file path is decoded. Anything else is refused with a
 * message that says what was expected, for a Node-RED user wiring the wrong node in.
 */
export async function frameFromInput(value: unknown, options: DecodeOptions = {}): Promise<Frame> {
  if (isFrame(value)) return value;
  if (Buffer.isBuffer(value) || typeof value === 'string') return decodeImage(value, options);
  const what = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
  throw new ImageDecodeError(
    `expected a frame ({ width, height, rgb }), image bytes (JPEG/PNG/WebP) or a file path, got ${what}`,
  );
}

/**
 * Whether `value` is a well-formed Frame: positive integer size and exactly width × height × 3 bytes (a
 * camera frame still in YUV is checked without converting it: asking is not a reason to pay for RGB).
 */
export function isFrame(value: unknown): value is Frame {
  if (value === null || typeof value !== 'object') return false;
  const f = value as Partial<Frame>;
  if (!(
    Number.isInteger(f.width) &&
    Number.isInteger(f.height) &&
    (f.width as number) > 0 &&
    (f.height as number) > 0
  ))
    return false;
  if (pendingI420(value)) return true;
  return Buffer.isBuffer(f.rgb) && f.rgb.length === (f.width as number) * (f.height as number) * 3;
}
