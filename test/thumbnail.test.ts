import assert from 'node:assert/strict';
import sharp from 'sharp';

import { contactSheet, faceThumbnail, THUMBNAIL_SIZE } from '../src/gallery/thumbnail';
import type { Point } from '../src/types';

describe('gallery/thumbnail', () => {
  const frame = { width: 200, height: 200, rgb: Buffer.alloc(200 * 200 * 3, 90) };
  // Landmarks of an upright face about 60 px wide in the middle of the frame.
  const landmarks: Point[] = [
    [80, 90],
    [120, 90],
    [100, 110],
    [85, 130],
    [115, 130],
  ];

  it('makes a small JPEG of the face', async () => {
    const jpeg = await faceThumbnail(frame, landmarks);
    const meta = await sharp(jpeg).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.equal(meta.width, THUMBNAIL_SIZE);
    assert.ok(jpeg.length < 64 * 1024);
  });

  it('lays thumbnails out in rows and leaves an unreadable one grey', async () => {
    const jpeg = await faceThumbnail(frame, landmarks);
    const sheet = await contactSheet([jpeg, jpeg, Buffer.from('not an image'), jpeg, jpeg], 2);
    const meta = await sharp(sheet).metadata();
    assert.equal(meta.width, 4 + 2 * (THUMBNAIL_SIZE + 4));
    assert.equal(meta.height, 4 + 3 * (THUMBNAIL_SIZE + 4));
    await assert.rejects(contactSheet([]), /no thumbnails/);
  });

  it('refuses landmarks that are not five points', async () => {
    await assert.rejects(faceThumbnail(frame, landmarks.slice(0, 3)), /exactly 5 landmarks/);
  });
});
