/**
 * Camera frames in the form ffmpeg decodes them: planar YUV 4:2:0 ("I420": a full-size luma plane, then
 * the two chroma planes at half width and half height, rounded up), limited range, BT.601 colours (what
 * ffmpeg's own RGB conversion assumes for untagged video).
 *
 * Why frames stay in this form until someone needs RGB: half the bytes through the pipe from ffmpeg
 * (1.5 per pixel, not 3), no colour conversion in ffmpeg, and the detector reads its small input straight
 * from the planes. Measured at 1280×720 (bench/RESULTS.md): the RGB hand-off and ffmpeg's conversion
 * cost as much CPU as the detector's inference. Most frames are never looked at in full colour: only the
 * faces that get embedded and the frames that get drawn for a viewer are.
 *
 * A frame made by {@link frameFromI420} is an ordinary `Frame`: its `rgb` is converted on first read and
 * kept, and from then on RGB is the only truth (the planes are forgotten, so writing into `rgb` can
 * never leave a stale copy for the detector). Copies of the frame (spread, Node-RED's clone, JSON) read
 * `rgb` like any property, so they are plain RGB frames.
 */

/** Bytes of one I420 frame: luma, then two chroma planes of ⌈w/2⌉ × ⌈h/2⌉. */
export function i420Size(width: number, height: number): number {
  return width * height + 2 * Math.ceil(width / 2) * Math.ceil(height / 2);
}

/**
 * The frame made small by ffmpeg for the detector (packed RGB, fitted inside the detector's input box; see
 * `detectorInput` in src/io/ffmpegArgs.ts), which spares the detector shrinking the full frame itself.
 */
export interface DetectorPicture {
  rgb: Buffer;
  width: number;
  height: number;
}

/** Pixels of frames whose RGB has not been read yet: the planes, and the detector's picture when ffmpeg made one. */
const pendingPixels = new WeakMap<object, { planes: Buffer; picture?: DetectorPicture }>();

/**
 * A frame whose pixels are I420 planes; `rgb` is converted from them when first read. `picture`, when
 * given, is the same moment shrunk by ffmpeg for the detector; like the planes it is forgotten once `rgb`
 * is read or written, because from then on whoever holds the frame may have changed its pixels (a privacy
 * mask drawn in), and the detector must see that.
 */
export function frameFromI420<F extends { width: number; height: number }>(
  fields: F,
  planes: Buffer,
  picture?: DetectorPicture,
): F & { rgb: Buffer } {
  const { width, height } = fields;
  if (planes.length !== i420Size(width, height)) {
    throw new RangeError(`${planes.length} bytes is not a ${width}×${height} I420 frame`);
  }
  if (picture && picture.rgb.length !== picture.width * picture.height * 3) {
    throw new RangeError(
      `${picture.rgb.length} bytes is not a ${picture.width}×${picture.height} RGB picture`,
    );
  }
  const frame = { ...fields } as F & { rgb: Buffer };
  pendingPixels.set(frame, picture ? { planes, picture } : { planes });
  const settle = (rgb: Buffer): Buffer => {
    pendingPixels.delete(frame);
    Object.defineProperty(frame, 'rgb', { value: rgb, enumerable: true, writable: true, configurable: true });
    return rgb;
  };
  Object.defineProperty(frame, 'rgb', {
    enumerable: true,
    configurable: true,
    get: () => settle(i420ToRgb(planes, width, height)),
    set: (rgb: Buffer) => settle(rgb),
  });
  return frame;
}

/** The I420 planes of a frame whose RGB nobody has read yet; undefined for any other frame. */
export function pendingI420(frame: object): Buffer | undefined {
  return pendingPixels.get(frame)?.planes;
}

/** The detector's picture of a frame whose RGB nobody has read yet, when ffmpeg made one. */
export function pendingDetectorPicture(frame: object): DetectorPicture | undefined {
  return pendingPixels.get(frame)?.picture;
}

/**
 * BT.601 limited range to full-range RGB in 8.8 fixed point (the usual integer approximation: the
 * coefficients times 256); chroma is shared by each 2×2 block of pixels. Writes into `out` when given.
 */
export function i420ToRgb(planes: Uint8Array, width: number, height: number, out?: Buffer): Buffer {
  return i420RegionToRgb(planes, width, height, 0, 0, width, height, out);
}

/**
 * The RGB of a `rw`×`rh` part of the frame at (`x0`, `y0`), converted as {@link i420ToRgb} converts the whole
 * frame (into `out` when given).
 */
export function i420RegionToRgb(
  planes: Uint8Array,
  width: number,
  height: number,
  x0: number,
  y0: number,
  rw: number,
  rh: number,
  out?: Buffer,
): Buffer {
  if (x0 < 0 || y0 < 0 || rw < 1 || rh < 1 || x0 + rw > width || y0 + rh > height) {
    throw new RangeError(`i420RegionToRgb: ${rw}×${rh} at (${x0}, ${y0}) is not inside ${width}×${height}`);
  }
  const rgb = out ?? Buffer.allocUnsafe(rw * rh * 3);
  if (rgb.length < rw * rh * 3) throw new RangeError('i420RegionToRgb: output buffer too small');
  // Stores through a clamped view saturate at 0 and 255 without a branch per channel.
  const px = new Uint8ClampedArray(rgb.buffer, rgb.byteOffset, rw * rh * 3);
  const cw = Math.ceil(width / 2);
  const uBase = width * height;
  const vBase = uBase + cw * Math.ceil(height / 2);
  const xEnd = x0 + rw;
  let o = 0;
  for (let y = y0; y < y0 + rh; y++) {
    const row = y * width;
    const chromaRow = (y >> 1) * cw;
    for (let x = x0; x < xEnd;) {
      const u = planes[uBase + chromaRow + (x >> 1)] - 128;
      const v = planes[vBase + chromaRow + (x >> 1)] - 128;
      const r = 409 * v;
      const g = -100 * u - 208 * v;
      const b = 516 * u;
      let c = 298 * (planes[row + x] - 16) + 128;
      px[o] = (c + r) >> 8;
      px[o + 1] = (c + g) >> 8;
      px[o + 2] = (c + b) >> 8;
      o += 3;
      x++;
      // An even pixel's right neighbour shares its chroma sample.
      if (x < xEnd && (x & 1) === 1) {
        c = 298 * (planes[row + x] - 16) + 128;
        px[o] = (c + r) >> 8;
        px[o + 1] = (c + g) >> 8;
        px[o + 2] = (c + b) >> 8;
        o += 3;
        x++;
      }
    }
  }
  return rgb;
}

/**
 * Shrinks I420 planes to `outW`×`outH` RGB by averaging each output pixel's area of the source (luma and
 * chroma separately, then one colour conversion), calling `put(x, y, r, g, b)` for each output pixel with channel values on the 0..255 scale, unrounded. Only for shrinking: each output pixel must
 * cover at least one source pixel.
 */
export function shrinkI420(
  planes: Uint8Array,
  width: number,
  height: number,
  outW: number,
  outH: number,
  put: (x: number, y: number, r: number, g: number, b: number) => void,
): void {
  if (outW > width || outH > height || outW < 1 || outH < 1) {
    throw new RangeError(`shrinkI420: cannot shrink ${width}×${height} to ${outW}×${outH}`);
  }
  const cw = Math.ceil(width / 2);
  const ch = Math.ceil(height / 2);
  const uBase = width * height;
  const vBase = uBase + cw * ch;
  const lumaY = runs(height, outH);
  const chromaY = runs(ch, outH);
  // Typed arrays in locals and whole-number sums: 6-7 % faster than reaching them through an object and summing
  // in doubles (the detector's letterbox of a 640×360 and a 1280×720 frame, bench/RESULTS.md).
  const { from: lumaFrom, to: lumaTo } = runs(width, outW);
  const { from: chromaFrom, to: chromaTo } = runs(cw, outW);
  // Per output row, each source row's run under each output pixel is summed, then added up, in whole numbers
  // (doubles only where a cell is so large that 255 per pixel could overflow 32 bits: a frame shrunk to a few
  // pixels).
  const largestCell = (Math.ceil(width / outW) + 1) * (Math.ceil(height / outH) + 1);
  const Sums = largestCell * 255 < 2 ** 31 ? Int32Array : Float64Array;
  const ySum = new Sums(outW);
  const uSum = new Sums(outW);
  const vSum = new Sums(outW);
  for (let oy = 0; oy < outH; oy++) {
    ySum.fill(0);
    uSum.fill(0);
    vSum.fill(0);
    for (let y = lumaY.from[oy]; y < lumaY.to[oy]; y++) {
      const row = y * width;
      for (let ox = 0; ox < outW; ox++) {
        let sum = 0;
        const end = row + lumaTo[ox];
        for (let i = row + lumaFrom[ox]; i < end; i++) sum += planes[i];
        ySum[ox] += sum;
      }
    }
    for (let y = chromaY.from[oy]; y < chromaY.to[oy]; y++) {
      const u = uBase + y * cw;
      const v = vBase + y * cw;
      for (let ox = 0; ox < outW; ox++) {
        let su = 0;
        let sv = 0;
        const end = chromaTo[ox];
        for (let i = chromaFrom[ox]; i < end; i++) {
          su += planes[u + i];
          sv += planes[v + i];
        }
        uSum[ox] += su;
        vSum[ox] += sv;
      }
    }
    const lumaRows = lumaY.to[oy] - lumaY.from[oy];
    const chromaRows = chromaY.to[oy] - chromaY.from[oy];
    for (let ox = 0; ox < outW; ox++) {
      const luma = 1.164 * (ySum[ox] / ((lumaTo[ox] - lumaFrom[ox]) * lumaRows) - 16);
      const chromaCount = (chromaTo[ox] - chromaFrom[ox]) * chromaRows;
      const u = uSum[ox] / chromaCount - 128;
      const v = vSum[ox] / chromaCount - 128;
      put(
        ox,
        oy,
        clampUnit(luma + 1.596 * v),
        clampUnit(luma - 0.391 * u - 0.813 * v),
        clampUnit(luma + 2.018 * u),
      );
    }
  }
}

function clampUnit(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * For each of `n` equal cells along an axis of `size` source pixels, where its run of source pixels
 * begins (`from[k]`) and ends (`to[k]`): the pixels whose centres fall in the
 * cell, or the one under its start when the cell is narrower than a pixel (chroma, at half resolution,
 * can be).
 */
function runs(size: number, n: number): { from: Int32Array; to: Int32Array } {
  const from = new Int32Array(n);
  const to = new Int32Array(n);
  const step = size / n;
  for (let k = 0; k < n; k++) {
    const start = Math.min(size - 1, step >= 1 ? Math.round(k * step) : Math.floor(k * step));
    from[k] = start;
    to[k] = Math.max(start + 1, Math.min(size, Math.round((k + 1) * step)));
  }
  return { from, to };
}
