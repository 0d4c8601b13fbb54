import assert from 'node:assert/strict';
import sharp from 'sharp';

import { ImageDecodeError } from '../src/image/decode';
import { frameFromInput, isFrame } from '../src/image/frameInput';

describe('image/frameFromInput', () => {
  const frame = { cameraId: 'c', seq: 1, ts: 2, width: 2, height: 1, rgb: Buffer.alloc(6) };

  it('passes a frame through without copying its pixels', async () => {
    assert.equal(await frameFromInput(frame), frame);
  });

  it('decodes image bytes, with the camera id given', async () => {
    const png = await sharp({ create: { width: 4, height: 3, channels: 3, background: '#123456' } })
      .png()
      .toBuffer();
    const decoded = await frameFromInput(png, { cameraId: 'door' });
    assert.deepEqual([decoded.width, decoded.height, decoded.cameraId], [4, 3, 'door']);
  });

  it('refuses what is neither, saying what it got', async () => {
    for (const [value, what] of [
      [42, 'number'],
      [null, 'null'],
      [[1, 2], 'an array'],
      [{ width: 2, height: 1, rgb: Buffer.alloc(5) }, 'object'],
    ] as const) {
      await assert.rejects(frameFromInput(value), (err: Error) => {
        assert.ok(err instanceof ImageDecodeError);
        assert.match(err.message, new RegExp(`got ${what}$`));
        return true;
      });
    }
  });

  it('tells a well-formed frame from a malformed one', () => {
    assert.equal(isFrame(frame), true);
    assert.equal(isFrame({ ...frame, width: 0 }), false);
    assert.equal(isFrame({ ...frame, width: 1.5 }), false);
    assert.equal(isFrame({ ...frame, rgb: new Uint8Array(6) }), false);
  });
});
