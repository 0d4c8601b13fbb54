import assert from 'node:assert/strict';
import { framedTemplate, ARCFACE_TEMPLATE_112 } from '../src/align';
import { letterbox } from '../src/image/letterbox';
import { frameFromI420, i420Size } from '../src/util/i420';
import { blazefaceAnchors, fivePointsFromBlazeface } from '../src/models/blazeface';

describe('image/letterbox', () => {
  const image = { width: 4, height: 2, rgb: Buffer.from(Array.from({ length: 24 }, (_, i) => i * 10)) };
  const norm = { mean: [10, 20, 30] as [number, number, number], std: [2, 4, 5] as [number, number, number] };

  it('fits the image top-left, pads the rest, and normalises per channel', async () => {
    const lb = await letterbox(image, 4, 4, norm);
    assert.equal(lb.scaleX, 1);
    assert.equal(lb.scaleY, 1);
    // Pixel (0,0) is [0,10,20] → [(0-10)/2, (10-20)/4, (20-30)/5].
    assert.deepEqual([lb.data[0], lb.data[16], lb.data[32]], [-5, -2.5, -2]);
    // Row 3 is padding: black, normalised.
    assert.deepEqual([lb.data[12], lb.data[16 + 12], lb.data[32 + 12]], [-5, -5, -6]);
  });

  it('pads right of a tall image and below a wide one with normalised black, in both layouts', async () => {
    // At scale 1 (one side fills the target exactly): 2×4 into 4×4 pads two columns on the right,
    // 4×2 into 4×4 two rows below.
    const rgb = (n: number) => Buffer.from(Array.from({ length: n * 3 }, (_, i) => (i * 37) % 256));
    const pads = [0, 1, 2].map((c) => (0 - norm.mean[c]) / norm.std[c]);
    for (const img of [
      { width: 2, height: 4, rgb: rgb(8) },
      { width: 4, height: 2, rgb: rgb(8) },
    ]) {
      for (const layout of ['nchw', 'nhwc'] as const) {
        const lb = await letterbox(img, 4, 4, norm, layout);
        assert.deepEqual([lb.scaleX, lb.scaleY], [1, 1]);
        const at = (x: number, y: number, c: number) =>
          layout === 'nchw' ? lb.data[c * 16 + y * 4 + x] : lb.data[(y * 4 + x) * 3 + c];
        for (let y = 0; y < 4; y++) {
          for (let x = 0; x < 4; x++) {
            for (let c = 0; c < 3; c++) {
              const inside = x < img.width && y < img.height;
              const value = inside
                ? (img.rgb[(y * img.width + x) * 3 + c] - norm.mean[c]) / norm.std[c]
                : pads[c];
              assert.equal(
                at(x, y, c),
                Math.fround(value),
                `${img.width}×${img.height} ${layout} (${x},${y}) ${c}`,
              );
            }
          }
        }
      }
    }
    // The same pad in every channel (BlazeFace's normalisation) is one plain fill.
    const even = {
      mean: [127.5, 127.5, 127.5] as [number, number, number],
      std: [127.5, 127.5, 127.5] as [number, number, number],
    };
    const lb = await letterbox({ width: 2, height: 4, rgb: rgb(8) }, 4, 4, even, 'nhwc');
    for (let y = 0; y < 4; y++)
      assert.deepEqual(Array.from(lb.data.subarray(y * 12 + 6, y * 12 + 12)), [-1, -1, -1, -1, -1, -1]);
  });

  it('writes the same values in NHWC order', async () => {
    const chw = await letterbox(image, 4, 4, norm, 'nchw');
    const hwc = await letterbox(image, 4, 4, norm, 'nhwc');
    for (let p = 0; p < 16; p++) {
      for (let c = 0; c < 3; c++)
        assert.equal(hwc.data[p * 3 + c], chw.data[c * 16 + p], `pixel ${p} channel ${c}`);
    }
  });

  it('fills a reused buffer completely, from RGB and from camera planes, and refuses a wrong size', async () => {
    const planes = Buffer.from(Array.from({ length: i420Size(6, 4) }, (_, i) => (i * 53) % 256));
    for (const layout of ['nchw', 'nhwc'] as const) {
      for (const make of [() => image, () => frameFromI420({ width: 6, height: 4 }, planes)]) {
        const fresh = await letterbox(make(), 5, 5, norm, layout);
        const dirty = new Float32Array(75).fill(Number.NaN);
        const reused = await letterbox(make(), 5, 5, norm, layout, dirty);
        assert.equal(reused.data, dirty, 'written into the buffer given');
        assert.deepEqual(Array.from(reused.data), Array.from(fresh.data), layout);
      }
    }
    await assert.rejects(
      letterbox(image, 4, 4, norm, 'nchw', new Float32Array(47)),
      /holds 47 values, 48 needed/,
    );
  });
});

describe('align/framedTemplate', () => {
  it('is the ArcFace template at zoom 1, and zooms and shifts about the centre', () => {
    const same = framedTemplate({ size: 112, zoom: 1, shiftY: 0 });
    same.forEach((p, i) => assert.deepEqual(p, [...ARCFACE_TEMPLATE_112[i]]));
    const loose = framedTemplate({ size: 224, zoom: 0.5, shiftY: 0.1 });
    // Eye distance halves relative to a 224 ArcFace template; everything moves down by 22.4 px.
    const eyes = loose[1][0] - loose[0][0];
    assert.ok(Math.abs(eyes - (73.5318 - 38.2946) * 2 * 0.5) < 1e-9);
    assert.ok(Math.abs(loose[2][1] - (112 + (71.7366 * 2 - 112) * 0.5 + 22.4)) < 1e-9);
    assert.throws(() => framedTemplate({ size: 112, zoom: 0, shiftY: 0 }), /invalid framing/);
  });
});

describe('models/blazeface geometry', () => {
  it('lays 896 anchors for a 256 input at the cell centres', () => {
    const anchors = blazefaceAnchors(256);
    assert.equal(anchors.length, 16 * 16 * 2 + 8 * 8 * 6);
    assert.deepEqual(anchors[0], [8, 8]);
    assert.deepEqual(anchors[1], [8, 8]);
    assert.deepEqual(anchors[2], [24, 8]);
    assert.deepEqual(anchors[512], [16, 16]);
    assert.deepEqual(anchors[895], [240, 240]);
  });

  it('derives five points with mouth corners along the eye line, left eye first', () => {
    // Subject's right eye (image left) listed first, as BlazeFace does; a level face.
    const five = fivePointsFromBlazeface([
      [70, 50],
      [30, 50],
      [50, 70],
      [50, 90],
      [10, 60],
      [90, 60],
    ]);
    assert.deepEqual(five[0], [30, 50]);
    assert.deepEqual(five[1], [70, 50]);
    assert.deepEqual(five[2], [50, 70]);
    const half = 40 * 0.5 * (29.2 / 35.2);
    assert.deepEqual(five[3], [50 - half, 90]);
    assert.deepEqual(five[4], [50 + half, 90]);
  });
});
