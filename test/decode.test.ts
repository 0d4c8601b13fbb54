import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { decodeImage, encodeJpeg, ImageDecodeError } from '../src/image/decode';
import { hasSharedData, shared } from './helpers/shared';

/** A 4×2 image: left half red, right half blue, so a rotation is visible in the pixels. */
function twoColourRgb(): Buffer {
  const rgb = Buffer.alloc(4 * 2 * 3);
  for (let y = 0; y < 2; y++) {
    for (let x = 0; x < 4; x++) {
      const i = (y * 4 + x) * 3;
      if (x < 2) rgb[i] = 255;
      else rgb[i + 2] = 255;
    }
  }
  return rgb;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([len, body, crc]);
}

/** A small PNG that claims 100000×100000 pixels: what a decompression bomb looks like to us. */
function hugePngHeader(): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(100_000, 0);
  ihdr.writeUInt32BE(100_000, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(1000))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('image/decode', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-decode-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('decodes PNG, JPEG and WebP bytes to packed RGB of the right size', async () => {
    const raw = { raw: { width: 4, height: 2, channels: 3 as const } };
    for (const format of ['png', 'jpeg', 'webp'] as const) {
      const bytes = await sharp(twoColourRgb(), raw)
        .toFormat(format, { quality: 100, lossless: true })
        .toBuffer();
      const frame = await decodeImage(bytes, { cameraId: 'cam', seq: 7 });
      assert.equal(frame.width, 4, format);
      assert.equal(frame.height, 2, format);
      assert.equal(frame.rgb.length, 4 * 2 * 3, format);
      assert.equal(frame.cameraId, 'cam');
      assert.equal(frame.seq, 7);
      // Top-left pixel is red, top-right blue (JPEG within its loss).
      assert.ok(frame.rgb[0] > 200 && frame.rgb[2] < 60, `${format}: left is red`);
      assert.ok(frame.rgb[9 + 2] > 200 && frame.rgb[9] < 60, `${format}: right is blue`);
    }
  });

  it('turns greyscale and alpha images into 3-channel RGB', async () => {
    const grey = await sharp({ create: { width: 3, height: 3, channels: 3, background: '#808080' } })
      .greyscale()
      .png()
      .toBuffer();
    const rgba = await sharp({
      create: { width: 3, height: 3, channels: 4, background: { r: 10, g: 20, b: 30, alpha: 1 } },
    })
      .png()
      .toBuffer();
    const g = await decodeImage(grey);
    const a = await decodeImage(rgba);
    assert.equal(g.rgb.length, 27);
    assert.deepEqual([...g.rgb.subarray(0, 3)], [128, 128, 128]);
    assert.deepEqual([...a.rgb.subarray(0, 3)], [10, 20, 30]);
  });

  it('honours the EXIF orientation so faces come out upright', async () => {
    const file = path.join(dir, 'rotated.jpg');
    // Orientation 6: the stored image must be turned 90° clockwise to display.
    await sharp(twoColourRgb(), { raw: { width: 4, height: 2, channels: 3 } })
      .jpeg({ quality: 100 })
      .withMetadata({ orientation: 6 })
      .toFile(file);
    const frame = await decodeImage(file);
    assert.equal(frame.width, 2);
    assert.equal(frame.height, 4);
    // After a clockwise turn the red (left) half is on top.
    assert.ok(frame.rgb[0] > 200 && frame.rgb[2] < 60, 'top is red');
    const last = (4 * 2 - 1) * 3;
    assert.ok(frame.rgb[last + 2] > 200 && frame.rgb[last] < 60, 'bottom is blue');
  });

  it('refuses images above the pixel limit before decoding them', async () => {
    await assert.rejects(decodeImage(hugePngHeader()), (err: Error) => {
      assert.ok(err instanceof ImageDecodeError);
      assert.match(err.message, /100000×100000 image has 10000000000 pixels, above the limit of 40000000/);
      return true;
    });
    const small = await sharp({ create: { width: 20, height: 10, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
    await assert.rejects(decodeImage(small, { maxPixels: 199 }), /200 pixels, above the limit of 199/);
    assert.equal((await decodeImage(small, { maxPixels: 200 })).width, 20);
  });

  it('gives one clear error for every kind of bad input', async () => {
    const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#123456' } })
      .jpeg()
      .toBuffer();
    const gif = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#fff' } })
      .gif()
      .toBuffer();
    writeFileSync(path.join(dir, 'notes.txt'), 'hello');
    const cases: [string | Buffer, RegExp][] = [
      [path.join(dir, 'missing.jpg'), /missing\.jpg: no such file/],
      [dir, /not a file/],
      [path.join(dir, 'notes.txt'), /notes\.txt: not a readable image/],
      [Buffer.alloc(0), /empty input/],
      [jpeg.subarray(0, jpeg.length >> 1), /corrupt or truncated/],
      [gif, /unsupported image format 'gif'/],
    ];
    for (const [input, expected] of cases) {
      await assert.rejects(decodeImage(input), (err: Error) => {
        assert.ok(err instanceof ImageDecodeError, `${String(expected)}: ${err.name}`);
        assert.match(err.message, expected);
        return true;
      });
    }
    await assert.rejects(
      decodeImage(42 as unknown as Buffer),
      /expected a file path or a Buffer, got number/,
    );
  });

  it('decodes a real photo and encodes frames back to JPEG', async function () {
    if (!hasSharedData) this.skip();
    const frame = await decodeImage(shared('bbt', 'group', 'bbt1.jpg'));
    assert.equal(frame.width, 1366);
    assert.equal(frame.height, 768);
    const jpeg = await encodeJpeg(frame);
    const meta = await sharp(jpeg).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.equal(meta.width, 1366);
  });
});
