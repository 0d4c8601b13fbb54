import sharp from 'sharp';
import type { Frame } from '../types';
import { pendingDetectorPicture, pendingI420, shrinkI420 } from '../util/i420';

export interface Letterbox {
  /** Float tensor data, channels R, G, B, in the layout asked for (CHW by default). */
  data: Float32Array;
  width: number;
  height: number;
  /** Tensor pixels per source pixel, per axis (rounding makes them differ slightly). */
  scaleX: number;
  scaleY: number;
}

export interface Normalization {
  /** Subtracted from each 0..255 channel value (R, G, B order). */
  mean: [number, number, number];
  /** Each channel is divided by this after the mean is taken off. */
  std: [number, number, number];
}

/** Resize packed RGB to an exact size (bilinear, libvips). */
export async function resizeRgb(
  image: Pick<Frame, 'width' | 'height' | 'rgb'>,
  width: number,
  height: number,
): Promise<Buffer> {
  if (width === image.width && height === image.height) return image.rgb;
  return sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();
}

/**
 * The size an image of `width`×`height` takes when scaled to fit inside `boxW`×`boxH` keeping its aspect
 * ratio. ffmpeg's detector picture is made with the same arithmetic (src/io/ffmpegArgs.ts), in doubles in the
 * same order, so that the two agree to the pixel.
 */
export function fitInside(
  width: number,
  height: number,
  boxW: number,
  boxH: number,
): { width: number; height: number } {
  const scale = Math.min(boxW / width, boxH / height);
  return {
    width: Math.max(1, Math.min(boxW, Math.round(width * scale))),
    height: Math.max(1, Math.min(boxH, Math.round(height * scale))),
  };
}

/**
 * Scale an image to fit inside `width`×`height` keeping its aspect ratio, place it in the top-left
 * corner and pad the rest with black, as SCRFD was trained; return the normalised CHW tensor (in `into` when
 * given, a buffer of exactly that size to reuse).
 */
export async function letterbox(
  image: Pick<Frame, 'width' | 'height' | 'rgb'>,
  width: number,
  height: number,
  norm: Normalization,
  layout: 'nchw' | 'nhwc' = 'nchw',
  into?: Float32Array,
): Promise<Letterbox> {
  const { width: innerW, height: innerH } = fitInside(image.width, image.height, width, height);
  const plane = width * height;
  // Every element is written below (padding, then the image), so a reused buffer needs no clearing.
  if (into !== undefined && into.length !== 3 * plane) {
    throw new RangeError(`letterbox: the buffer holds ${into.length} values, ${3 * plane} needed`);
  }
  const data = into ?? new Float32Array(3 * plane);
  // Element strides of a pixel step and a channel step in the chosen layout.
  const px = layout === 'nchw' ? 1 : 3;
  const ch = layout === 'nchw' ? plane : 1;
  const pads = [0, 1, 2].map((c) => (0 - norm.mean[c]) / norm.std[c]);
  // Only the padding is filled: right of the image on its rows, then every row below it. (Filling the whole
  // tensor pixel by pixel first cost more than the resize itself, measured by bench/profile.ts.)
  const pad = (start: number, count: number) => fillPixels(data, start, count, pads, layout, plane);
  if (innerW < width) for (let y = 0; y < innerH; y++) pad(y * width + innerW, width - innerW);
  if (innerH < height) pad(innerH * width, (height - innerH) * width);
  const [m0, m1, m2] = norm.mean;
  const k0 = 1 / norm.std[0];
  const k1 = 1 / norm.std[1];
  const k2 = 1 / norm.std[2];
  const scaled = { data, width, height, scaleX: innerW / image.width, scaleY: innerH / image.height };
  const picture = pendingDetectorPicture(image);
  if (picture && picture.width === innerW && picture.height === innerH) {
    // ffmpeg already made the frame this small (a camera with detectorInput set): only normalised here.
    copyNormalized(picture.rgb, innerW, innerH, data, width, px, ch, norm);
    return scaled;
  }
  const planes = pendingI420(image);
  if (planes && innerW <= image.width && innerH <= image.height) {
    // A camera frame still in YUV: shrunk and converted in one pass, no full-size RGB made at all.
    shrinkI420(planes, image.width, image.height, innerW, innerH, (x, y, r, g, b) => {
      const dst = (y * width + x) * px;
      data[dst] = (r - m0) * k0;
      data[ch + dst] = (g - m1) * k1;
      data[2 * ch + dst] = (b - m2) * k2;
    });
    return scaled;
  }
  copyNormalized(await resizeRgb(image, innerW, innerH), innerW, innerH, data, width, px, ch, norm);
  return scaled;
}

/** Packed RGB of `w`×`h` into the top-left corner of the tensor (rows `rowPixels` long), normalised. */
function copyNormalized(
  rgb: Buffer,
  w: number,
  h: number,
  data: Float32Array,
  rowPixels: number,
  px: number,
  ch: number,
  norm: Normalization,
): void {
  const [m0, m1, m2] = norm.mean;
  const k0 = 1 / norm.std[0];
  const k1 = 1 / norm.std[1];
  const k2 = 1 / norm.std[2];
  for (let y = 0; y < h; y++) {
    let src = y * w * 3;
    let dst = y * rowPixels * px;
    for (let x = 0; x < w; x++, src += 3, dst += px) {
      data[dst] = (rgb[src] - m0) * k0;
      data[ch + dst] = (rgb[src + 1] - m1) * k1;
      data[2 * ch + dst] = (rgb[src + 2] - m2) * k2;
    }
  }
}

/** Sets `count` pixels from pixel `start` on to `pads` (one value per channel), in either layout. */
function fillPixels(
  data: Float32Array,
  start: number,
  count: number,
  pads: number[],
  layout: 'nchw' | 'nhwc',
  plane: number,
): void {
  if (layout === 'nchw') {
    for (let c = 0; c < 3; c++) data.fill(pads[c], c * plane + start, c * plane + start + count);
    return;
  }
  const from = 3 * start;
  const to = 3 * (start + count);
  if (pads[0] === pads[1] && pads[1] === pads[2]) {
    data.fill(pads[0], from, to);
    return;
  }
  data[from] = pads[0];
  data[from + 1] = pads[1];
  data[from + 2] = pads[2];
  // Doubling copies: the filled run is copied after itself until the span is full.
  for (let done = 3; from + done < to; done *= 2)
    data.copyWithin(from + done, from, from + Math.min(done, to - from - done));
}
