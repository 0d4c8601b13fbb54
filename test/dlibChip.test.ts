import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { alignFace, applyTransform, dlibChipTemplate, framedTemplate, type RgbImage } from '../src/align';
import { OnnxEmbedder } from '../src/models/embedder';
import { OnnxGraphBuilder } from '../src/models/onnx/builder';
import { openSession, signatureOf } from '../src/models/session';
import type { Point } from '../src/types';

const close = (a: number, b: number, eps = 1e-6) => assert.ok(Math.abs(a - b) < eps, `${a} vs ${b}`);

describe('align/dlibChipTemplate', () => {
  it("places the five points where dlib's mean face puts them in a 150 chip with padding 0.25", () => {
    const [le, re, nose, lm, rm] = dlibChipTemplate(150);
    // Mean face (unit square) → chip: (0.25 + u) / 1.5 × 150 = (0.25 + u) × 100.
    close(nose[0], (0.25 + 0.490127) * 100);
    close(nose[1], (0.25 + 0.515625) * 100);
    close(lm[0], (0.25 + 0.254149) * 100);
    close(rm[0], (0.25 + 0.726104) * 100);
    close(lm[1], rm[1]);
    // Eye centres are the means of the six contour points: level, and mirror images about the nose.
    close(le[1], re[1]);
    close(le[1], (0.25 + 0.21599) * 100, 1e-4);
    close(le[0] + re[0], 2 * (0.25 + 0.49012) * 100, 0.05);
    assert.ok(le[0] < nose[0] && nose[0] < re[0] && le[1] < nose[1] && nose[1] < lm[1]);
  });

  it('scales with the chip and refuses a size that is not a positive integer', () => {
    const a = dlibChipTemplate(150);
    const b = dlibChipTemplate(300);
    a.forEach((p, i) => (close(b[i][0], 2 * p[0]), close(b[i][1], 2 * p[1])));
    assert.throws(() => dlibChipTemplate(0), /positive integer/);
    assert.throws(() => dlibChipTemplate(12.5), /positive integer/);
  });

  it('is what framedTemplate gives for template dlib, zoomed about the centre like the ArcFace one', () => {
    const plain = framedTemplate({ size: 150, zoom: 1, shiftY: 0, template: 'dlib' });
    plain.forEach((p, i) => assert.deepEqual(p, dlibChipTemplate(150)[i]));
    const tight = framedTemplate({ size: 150, zoom: 1.2, shiftY: 0, template: 'dlib' });
    tight.forEach((p, i) => close(p[0] - 75, (plain[i][0] - 75) * 1.2));
    const arc = framedTemplate({ size: 150, zoom: 1, shiftY: 0 });
    assert.notDeepEqual(arc, plain, 'the default stays the ArcFace template');
    assert.throws(
      () => framedTemplate({ size: 150, zoom: 1, shiftY: 0, template: 'other' as 'dlib' }),
      /unknown template 'other'/,
    );
  });

  it('aligns a tilted face so its points land on the dlib template', () => {
    const frame: RgbImage = { width: 400, height: 300, rgb: Buffer.alloc(400 * 300 * 3, 90) };
    const template = dlibChipTemplate(150);
    // A face 1.7× the chip's scale, turned by 20° and moved to (210, 140).
    const angle = (20 * Math.PI) / 180;
    const face = template.map(([x, y]): Point => {
      const [dx, dy] = [(x - 75) * 1.7, (y - 75) * 1.7];
      return [
        210 + dx * Math.cos(angle) - dy * Math.sin(angle),
        140 + dx * Math.sin(angle) + dy * Math.cos(angle),
      ];
    });
    const { aligned, transform } = alignFace(frame, face, 150, template);
    assert.equal(aligned.length, 150 * 150 * 3);
    face.forEach((p, i) => {
      const q = applyTransform(transform, p);
      close(q[0], template[i][0], 1e-6);
      close(q[1], template[i][1], 1e-6);
    });
  });
});

describe('models/embedder centring', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-centre-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** N×3×2×2 → N×2: the first output sums the red plane, the second the blue one. */
  async function tinyEmbedder(center?: number[]): Promise<OnnxEmbedder> {
    const g = new OnnxGraphBuilder('tiny');
    const x = g.input('x', ['N', 3, 2, 2]);
    const flat = g.node('Reshape', [x, g.int64('shape', [0, -1])]);
    const w = new Array(12 * 2).fill(0);
    for (let i = 0; i < 4; i++) {
      w[i * 2] = 1;
      w[(8 + i) * 2 + 1] = 1;
    }
    const y = g.node('MatMul', [flat, g.constant('w', w, [12, 2])]);
    g.alias(y, 'y');
    g.output('y', ['N', 2]);
    const file = path.join(dir, `tiny-${Math.random()}.onnx`);
    writeFileSync(file, g.toBuffer({ source: 'test' }));
    const session = await openSession(file);
    return new OnnxEmbedder('tiny', session, signatureOf(session), {
      normalization: { channels: 'rgb', mean: [0, 0, 0], std: [1, 1, 1] },
      defaultThreshold: 0.5,
      center,
    });
  }

  /** A 2×2 crop whose red pixels are all r and blue pixels all b. */
  const crop = (r: number, b: number) => Buffer.from([r, 0, b, r, 0, b, r, 0, b, r, 0, b]);

  it('takes the centre off the normalised embedding and normalises again', async () => {
    const plain = await tinyEmbedder();
    const centred = await tinyEmbedder([0.6, 0.6]);
    try {
      const [p] = await plain.embed([crop(30, 40)]);
      close(p[0], 0.6);
      close(p[1], 0.8);
      const [c] = await centred.embed([crop(30, 40)]);
      // (0.6, 0.8) − (0.6, 0.6) = (0, 0.2) → (0, 1).
      close(c[0], 0, 1e-6);
      close(c[1], 1, 1e-6);
      // Two faces near the common direction: similar before centring, apart after it.
      const [a, b] = await plain.embed([crop(40, 30), crop(30, 40)]);
      const [ca, cb] = await centred.embed([crop(40, 30), crop(30, 40)]);
      assert.ok(a[0] * b[0] + a[1] * b[1] > 0.9);
      close(ca[0] * cb[0] + ca[1] * cb[1], 0, 1e-6);
    } finally {
      await plain.dispose();
      await centred.dispose();
    }
  });

  it('refuses a centre of the wrong length or with non-numbers', async () => {
    await assert.rejects(tinyEmbedder([0.1, 0.2, 0.3]), /tiny: center must be 2 finite numbers/);
    await assert.rejects(tinyEmbedder([0.1, Number.NaN]), /center must be 2 finite numbers/);
  });
});
