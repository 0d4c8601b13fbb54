import assert from 'node:assert/strict';
import { seededRandom as rng } from '../src/util/seededRandom';
import type { Point } from '../src/types';
import {
  ALIGNED_SIZE,
  ARCFACE_TEMPLATE_112,
  alignFace,
  applyTransform,
  arcfaceTemplate,
  estimateSimilarity,
  invertTransform,
  transformDeterminant,
  warpAffineRgb,
} from '../src/align';
import type { RgbImage, SimilarityTransform } from '../src/align';

function similarity(scale: number, degrees: number, tx: number, ty: number): SimilarityTransform {
  const th = (degrees * Math.PI) / 180;
  const c = scale * Math.cos(th);
  const s = scale * Math.sin(th);
  return { m: [c, -s, tx, s, c, ty] };
}

function residual(t: SimilarityTransform, src: Point[], dst: Point[]): number {
  let sum = 0;
  for (let i = 0; i < src.length; i++) {
    const [x, y] = applyTransform(t, src[i]);
    sum += (x - dst[i][0]) ** 2 + (y - dst[i][1]) ** 2;
  }
  return sum;
}

/** Independent reference: linear least squares in (a, b, tx, ty) via the 4×4 normal equations. */
function referenceSimilarity(src: Point[], dst: Point[]): SimilarityTransform {
  const ata = Array.from({ length: 4 }, () => [0, 0, 0, 0]);
  const atb = [0, 0, 0, 0];
  const addRow = (row: number[], rhs: number) => {
    for (let i = 0; i < 4; i++) {
      atb[i] += row[i] * rhs;
      for (let j = 0; j < 4; j++) ata[i][j] += row[i] * row[j];
    }
  };
  for (let i = 0; i < src.length; i++) {
    const [x, y] = src[i];
    addRow([x, -y, 1, 0], dst[i][0]);
    addRow([y, x, 0, 1], dst[i][1]);
  }
  // Gaussian elimination with partial pivoting.
  const aug = ata.map((r, i) => [...r, atb[i]]);
  for (let col = 0; col < 4; col++) {
    let piv = col;
    for (let r = col + 1; r < 4; r++) if (Math.abs(aug[r][col]) > Math.abs(aug[piv][col])) piv = r;
    [aug[col], aug[piv]] = [aug[piv], aug[col]];
    for (let r = 0; r < 4; r++) {
      if (r === col) continue;
      const f = aug[r][col] / aug[col][col];
      for (let k = col; k < 5; k++) aug[r][k] -= f * aug[col][k];
    }
  }
  const [a, b, tx, ty] = aug.map((r, i) => r[4] / r[i]);
  return { m: [a, -b, tx, b, a, ty] };
}

function assertMatrixClose(actual: SimilarityTransform, expected: SimilarityTransform, tol: number): void {
  for (let i = 0; i < 6; i++) {
    assert.ok(
      Math.abs(actual.m[i] - expected.m[i]) <= tol,
      `m[${i}]: got ${actual.m[i]}, expected ${expected.m[i]} (tol ${tol}); full ${JSON.stringify(actual.m)}`,
    );
  }
}

function randomPoints(rand: () => number, n: number, spread = 100): Point[] {
  return Array.from({ length: n }, (): Point => [rand() * spread - spread / 3, rand() * spread - spread / 4]);
}

describe('align/similarity', () => {
  it('recovers a known similarity exactly from 5 points', () => {
    const rand = rng(1);
    const truth = similarity(1.7, 23, 12, -5);
    for (let trial = 0; trial < 20; trial++) {
      const src = randomPoints(rand, 5);
      const dst = src.map((p) => applyTransform(truth, p));
      assertMatrixClose(estimateSimilarity(src, dst), truth, 1e-9);
    }
  });

  it('recovers large rotations (near ±180°) and small scales', () => {
    const rand = rng(2);
    for (const [scale, deg] of [
      [0.05, 179.9],
      [3, -179.9],
      [1, 180],
      [0.5, -90],
      [2.5, 0],
    ]) {
      const truth = similarity(scale, deg, -40, 77);
      const src = randomPoints(rand, 5);
      const dst = src.map((p) => applyTransform(truth, p));
      assertMatrixClose(estimateSimilarity(src, dst), truth, 1e-9);
    }
  });

  it('fits two points exactly', () => {
    const src: Point[] = [
      [10, 20],
      [30, 25],
    ];
    const dst: Point[] = [
      [-3, 4],
      [5, 50],
    ];
    const t = estimateSimilarity(src, dst);
    for (let i = 0; i < 2; i++) {
      const p = applyTransform(t, src[i]);
      assert.ok(Math.abs(p[0] - dst[i][0]) < 1e-9 && Math.abs(p[1] - dst[i][1]) < 1e-9, `point ${i}: ${p}`);
    }
  });

  it('with noise returns the least-squares optimum', () => {
    const rand = rng(3);
    const truth = similarity(1.7, 23, 12, -5);
    for (let trial = 0; trial < 10; trial++) {
      const src = randomPoints(rand, 5);
      const dst = src.map((p): Point => {
        const q = applyTransform(truth, p);
        return [q[0] + (rand() - 0.5) * 2, q[1] + (rand() - 0.5) * 2];
      });
      const est = estimateSimilarity(src, dst);
      // Agrees with an independent normal-equations solution.
      assertMatrixClose(est, referenceSimilarity(src, dst), 1e-9);
      // And no nearby similarity does better.
      const best = residual(est, src, dst);
      const params = [est.m[0], est.m[3], est.m[2], est.m[5]]; // a, b, tx, ty
      const directions: number[][] = [];
      for (let k = 0; k < 4; k++) {
        for (const sign of [1, -1]) {
          const d = [0, 0, 0, 0];
          d[k] = sign;
          directions.push(d);
        }
      }
      for (let k = 0; k < 30; k++) directions.push([0, 0, 0, 0].map(() => rand() * 2 - 1));
      for (const eps of [1e-6, 1e-4, 1e-2]) {
        for (const d of directions) {
          const [a, b, tx, ty] = params.map((v, i) => v + eps * d[i]);
          const r = residual({ m: [a, -b, tx, b, a, ty] }, src, dst);
          assert.ok(r >= best, `perturbation ${eps}·${d} lowers the residual: ${r} < ${best}`);
        }
      }
      // The truth itself is not better than the estimate.
      assert.ok(residual(truth, src, dst) >= best);
    }
  });

  it('never returns a reflection (mirrored destination)', () => {
    const rand = rng(4);
    for (let trial = 0; trial < 10; trial++) {
      const src = randomPoints(rand, 5);
      const dst = src.map((p): Point => [-p[0], p[1]]);
      const t = estimateSimilarity(src, dst);
      const det = transformDeterminant(t);
      assert.ok(det > 0, `determinant ${det} must be positive (proper rotation)`);
      // Similarity structure [[a, -b], [b, a]].
      assert.ok(Math.abs(t.m[0] - t.m[4]) < 1e-9 && Math.abs(t.m[1] + t.m[3]) < 1e-9, JSON.stringify(t.m));
      // It is the best proper similarity, not an (exact-fitting) reflection.
      assertMatrixClose(t, referenceSimilarity(src, dst), 1e-9);
      assert.ok(residual(t, src, dst) > 1e-3);
    }
  });

  it('inverts and composes consistently', () => {
    const t = similarity(1.7, 23, 12, -5);
    const inv = invertTransform(t);
    for (const p of randomPoints(rng(5), 5)) {
      const q = applyTransform(inv, applyTransform(t, p));
      assert.ok(Math.abs(q[0] - p[0]) < 1e-12 && Math.abs(q[1] - p[1]) < 1e-12);
    }
    // The inverse of a similarity is the similarity with reciprocal scale, opposite angle and
    // translation −L⁻¹·t.
    const lin = similarity(1 / 1.7, -23, 0, 0).m;
    const expected: SimilarityTransform = {
      m: [lin[0], lin[1], -(lin[0] * 12 + lin[1] * -5), lin[3], lin[4], -(lin[3] * 12 + lin[4] * -5)],
    };
    assertMatrixClose(inv, expected, 1e-12);
    assert.ok(Math.abs(transformDeterminant(inv) - 1 / 1.7 ** 2) < 1e-12);
    assert.throws(() => invertTransform({ m: [0, 0, 1, 0, 0, 1] }), /singular/);
    assert.throws(() => invertTransform({ m: [1, 0, NaN, 0, 1, 0] }), /non-finite/);
  });

  it('rejects bad input with clear errors', () => {
    const p5 = randomPoints(rng(6), 5);
    assert.throws(() => estimateSimilarity([], []), /at least 2/);
    assert.throws(() => estimateSimilarity([[1, 2]], [[3, 4]]), /at least 2/);
    assert.throws(() => estimateSimilarity(p5, p5.slice(0, 4)), /same length/);
    const withNaN = p5.map((p): Point => [...p]);
    withNaN[2] = [NaN, 1];
    assert.throws(() => estimateSimilarity(withNaN, p5), /src\[2\].*non-finite/);
    assert.throws(() => estimateSimilarity(p5, withNaN), /dst\[2\].*non-finite/);
    const withInf = p5.map((p): Point => [...p]);
    withInf[4] = [1, Infinity];
    assert.throws(() => estimateSimilarity(withInf, p5), /non-finite/);
    const same: Point[] = Array.from({ length: 5 }, (): Point => [0.1 * 3, 7.7]);
    assert.throws(() => estimateSimilarity(same, p5), /degenerate/);
  });
});

/** Random test image with a deterministic PRNG. */
function randomImage(width: number, height: number, seed: number): RgbImage {
  const rand = rng(seed);
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = Math.floor(rand() * 256);
  return { width, height, rgb };
}

function pixel(img: { width: number; rgb: Uint8Array }, x: number, y: number): number[] {
  const o = (y * img.width + x) * 3;
  return [img.rgb[o], img.rgb[o + 1], img.rgb[o + 2]];
}

describe('align/warp', () => {
  const identity: SimilarityTransform = { m: [1, 0, 0, 0, 1, 0] };

  it('identity reproduces the image', () => {
    const img = randomImage(37, 23, 10);
    const out = warpAffineRgb(img, identity, 37, 23);
    assert.ok(out.equals(img.rgb));
  });

  it('integer translation shifts pixels exactly, with black outside', () => {
    const img = randomImage(30, 20, 11);
    const [dx, dy] = [3, -2];
    const out = warpAffineRgb(img, { m: [1, 0, dx, 0, 1, dy] }, 34, 22);
    const dst = { width: 34, rgb: out };
    let black = 0;
    for (let y = 0; y < 22; y++) {
      for (let x = 0; x < 34; x++) {
        const sx = x - dx;
        const sy = y - dy;
        const inside = sx >= 0 && sx < 30 && sy >= 0 && sy < 20;
        const expected = inside ? pixel(img, sx, sy) : [0, 0, 0];
        if (!inside) black++;
        assert.deepEqual(pixel(dst, x, y), expected, `pixel (${x}, ${y})`);
      }
    }
    assert.ok(black > 0);
  });

  it('is entirely black when the source is out of view', () => {
    const img = randomImage(20, 20, 12);
    const out = warpAffineRgb(img, { m: [1, 0, 500, 0, 1, 0] }, 16, 16);
    assert.ok(out.every((v) => v === 0));
    const out2 = warpAffineRgb(img, { m: [1, 0, -21, 0, 1, 0] }, 16, 16);
    assert.ok(out2.every((v) => v === 0));
  });

  it('rotation by 90° about the centre moves a known pixel where expected', () => {
    const n = 21;
    const c = 10;
    const img = randomImage(n, n, 13);
    const marked = (10 * n + 15) * 3; // source pixel (x=15, y=10)
    img.rgb[marked] = 1;
    img.rgb[marked + 1] = 2;
    img.rgb[marked + 2] = 3;
    // (x, y) → (c − (y − c), c + (x − c)): +90° in image coordinates (y down), i.e. clockwise on screen.
    const rot: SimilarityTransform = { m: [0, -1, 2 * c, 1, 0, 0] };
    rot.m[0] = Math.cos(Math.PI / 2); // not exactly 0: bilinear weights must still round exactly
    rot.m[4] = Math.cos(Math.PI / 2);
    const out = { width: n, rgb: warpAffineRgb(img, rot, n, n) };
    assert.deepEqual(pixel(out, 10, 15), [1, 2, 3]);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        // inverse: source (y, 2c − x)
        assert.deepEqual(pixel(out, x, y), pixel(img, y, 2 * c - x), `pixel (${x}, ${y})`);
      }
    }
  });

  it('uses integer coordinates as pixel centres (bilinear half-pixel and 2× scale)', () => {
    const img = randomImage(12, 9, 14);
    const half = { width: 12, rgb: warpAffineRgb(img, { m: [1, 0, 0.5, 0, 1, 0] }, 12, 9) };
    for (let y = 0; y < 9; y++) {
      for (let x = 1; x < 12; x++) {
        const a = pixel(img, x - 1, y);
        const b = pixel(img, x, y);
        assert.deepEqual(
          pixel(half, x, y),
          a.map((v, k) => Math.floor((v + b[k]) / 2 + 0.5)),
          `half-pixel shift at (${x}, ${y})`,
        );
      }
      // x = 0 samples at −0.5: half of pixel 0 blended with black outside.
      assert.deepEqual(
        pixel(half, 0, y),
        pixel(img, 0, y).map((v) => Math.floor(v / 2 + 0.5)),
      );
    }
    // Scale 2 about the origin: destination (2i, 2j) is exactly source (i, j) with this convention
    // (with corner-based pixels it would be source (i − 0.25, j − 0.25) instead).
    const big = { width: 24, rgb: warpAffineRgb(img, { m: [2, 0, 0, 0, 2, 0] }, 24, 18) };
    for (let j = 0; j < 9; j++) {
      for (let i = 0; i < 12; i++) assert.deepEqual(pixel(big, 2 * i, 2 * j), pixel(img, i, j));
    }
  });

  it('rejects invalid arguments', () => {
    const img = randomImage(8, 8, 15);
    assert.throws(() => warpAffineRgb(img, identity, 0, 8), /output size/);
    assert.throws(() => warpAffineRgb(img, identity, 8, 2.5), /output size/);
    assert.throws(() => warpAffineRgb({ ...img, rgb: img.rgb.subarray(0, 10) }, identity, 8, 8), /bytes/);
    assert.throws(() => warpAffineRgb({ ...img, width: 0 }, identity, 8, 8), /source size/);
    assert.throws(() => warpAffineRgb(img, { m: [0, 0, 0, 0, 0, 0] }, 8, 8), /singular/);
  });
});

describe('align/alignFace', () => {
  const colours: [number, number, number][] = [
    [255, 0, 0], // left eye: red
    [0, 255, 0], // right eye: green
    [0, 0, 255], // nose: blue
    [255, 255, 0], // left mouth: yellow
    [0, 255, 255], // right mouth: cyan
  ];

  /** Which of `colours` a pixel on a black background shows (or −1 for none/black). */
  function classify(r: number, g: number, b: number): number {
    if (r > 0 && g === 0 && b === 0) return 0;
    if (r === 0 && g > 0 && b === 0) return 1;
    if (r === 0 && g === 0 && b > 0) return 2;
    if (r > 0 && g > 0 && b === 0) return 3;
    if (r === 0 && g > 0 && b > 0) return 4;
    return -1;
  }

  /** Black frame with a small Gaussian dot of each colour at each landmark. */
  function drawDots(width: number, height: number, landmarks: Point[], sigma = 1.5): RgbImage {
    const rgb = Buffer.alloc(width * height * 3);
    landmarks.forEach(([cx, cy], k) => {
      for (let y = Math.floor(cy - 6); y <= Math.ceil(cy + 6); y++) {
        for (let x = Math.floor(cx - 6); x <= Math.ceil(cx + 6); x++) {
          assert.ok(x >= 0 && y >= 0 && x < width && y < height, 'dot must lie inside the frame');
          const d2 = (x - cx) ** 2 + (y - cy) ** 2;
          if (d2 > 36) continue;
          const v = Math.exp(-d2 / (2 * sigma * sigma));
          const o = (y * width + x) * 3;
          for (let ch = 0; ch < 3; ch++) rgb[o + ch] = Math.round(colours[k][ch] * v);
        }
      }
    });
    return { width, height, rgb };
  }

  /** Intensity-weighted centroid of each colour's pixels. */
  function centroids(img: Buffer, size: number): { at: Point; mass: number }[] {
    const acc = colours.map(() => ({ sx: 0, sy: 0, m: 0 }));
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const o = (y * size + x) * 3;
        const k = classify(img[o], img[o + 1], img[o + 2]);
        if (k < 0) continue;
        const w = Math.max(img[o], img[o + 1], img[o + 2]);
        acc[k].sx += w * x;
        acc[k].sy += w * y;
        acc[k].m += w;
      }
    }
    return acc.map((a) => ({ at: [a.sx / a.m, a.sy / a.m], mass: a.m }));
  }

  const cases: { name: string; t: SimilarityTransform; size: number; frame: [number, number] }[] = [
    { name: 'scale 1.6, 15°, size 112', t: similarity(1.6, 15, 70, 20), size: 112, frame: [320, 240] },
    { name: 'scale 0.9, −40°, size 224', t: similarity(0.9, -40, 20, 90), size: 224, frame: [200, 200] },
    { name: 'scale 2.3, 170°, size 112', t: similarity(2.3, 170, 320, 400), size: 112, frame: [400, 480] },
  ];

  for (const c of cases) {
    it(`puts the landmark dots onto the template (${c.name})`, () => {
      const landmarks = ARCFACE_TEMPLATE_112.map((p) => applyTransform(c.t, p));
      const frame = drawDots(c.frame[0], c.frame[1], landmarks);
      const { aligned, transform } = alignFace(frame, landmarks, c.size);
      assert.equal(aligned.length, c.size * c.size * 3);
      const template = arcfaceTemplate(c.size);
      // The transform maps the landmarks onto the (scaled) template.
      landmarks.forEach((p, i) => {
        const q = applyTransform(transform, p);
        assert.ok(Math.hypot(q[0] - template[i][0], q[1] - template[i][1]) < 1e-9);
      });
      // And the warped dots sit at the template positions.
      centroids(aligned, c.size).forEach(({ at, mass }, i) => {
        assert.ok(mass > 200, `dot ${i} not found in the aligned crop`);
        const err = Math.hypot(at[0] - template[i][0], at[1] - template[i][1]);
        assert.ok(err < 1, `dot ${i} at (${at}) is ${err.toFixed(3)} px from template (${template[i]})`);
      });
    });
  }

  it('exposes the 112 template and scales it for other sizes', () => {
    assert.equal(ALIGNED_SIZE, 112);
    assert.equal(ARCFACE_TEMPLATE_112.length, 5);
    assert.deepEqual(ARCFACE_TEMPLATE_112[0], [38.2946, 51.6963]);
    assert.ok(
      ARCFACE_TEMPLATE_112[0][0] < ARCFACE_TEMPLATE_112[1][0],
      'left eye is on the left of the image',
    );
    assert.deepEqual(arcfaceTemplate(224)[4], [70.7299 * 2, 92.2041 * 2]);
    assert.ok(Object.isFrozen(ARCFACE_TEMPLATE_112) && Object.isFrozen(ARCFACE_TEMPLATE_112[2]));
  });

  it('validates landmarks and size', () => {
    const frame = randomImage(64, 64, 20);
    const good = ARCFACE_TEMPLATE_112.map((p): Point => [p[0] / 2, p[1] / 2]);
    assert.doesNotThrow(() => alignFace(frame, good));
    assert.throws(() => alignFace(frame, good.slice(0, 4)), /exactly 5 landmarks, got 4/);
    assert.throws(() => alignFace(frame, [...good, [1, 1]]), /exactly 5 landmarks, got 6/);
    const nan = good.map((p): Point => [...p]);
    nan[1] = [NaN, 3];
    assert.throws(() => alignFace(frame, nan), /landmark 1 is not a finite/);
    const inf = good.map((p): Point => [...p]);
    inf[3] = [3, -Infinity];
    assert.throws(() => alignFace(frame, inf), /landmark 3 is not a finite/);
    const same = good.map((): Point => [5, 5]);
    assert.throws(() => alignFace(frame, same), /degenerate/);
    assert.throws(() => alignFace(frame, good, 0), /size/);
    assert.throws(() => alignFace(frame, good, 100.5), /size/);
  });
});
