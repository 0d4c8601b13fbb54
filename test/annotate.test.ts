import assert from 'node:assert/strict';
import { from, lastValueFrom, toArray } from 'rxjs';
import sharp from 'sharp';

import {
  annotate,
  annotateFrame,
  colourOf,
  labelOf,
  COLOURS,
  drawAnnotations,
  escapeXml,
  type Rgb,
} from '../src/output/annotate';
import { UNKNOWN, type Box, type Face, type FaceFrame, type Frame } from '../src/types';

const W = 1280;
const H = 720;
const GREY = 128;

function greyFrame(seq = 0, ts = 0): Frame {
  return { cameraId: 'door', seq, ts, width: W, height: H, rgb: Buffer.alloc(W * H * 3, GREY) };
}

function face(box: Box, name?: string, similarity = 0.8, extra: Partial<Face> = {}): Face {
  return {
    box,
    score: 0.9,
    landmarks: [],
    ...(name === undefined ? {} : { identity: { name, similarity, margin: 0.2, topK: [] } }),
    ...extra,
  };
}

function pixel(rgb: Buffer, width: number, x: number, y: number): Rgb {
  const p = (y * width + x) * 3;
  return [rgb[p], rgb[p + 1], rgb[p + 2]];
}

function near(actual: Rgb, expected: Rgb, tolerance: number, what: string): void {
  const off = Math.max(...actual.map((v, i) => Math.abs(v - expected[i])));
  assert.ok(off <= tolerance, `${what}: got [${actual}], expected about [${expected}]`);
}

async function decode(jpeg: Buffer) {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

describe('annotate', () => {
  const THRESHOLD = 0.5;

  it('makes a JPEG of the frame size and leaves the frame alone', async () => {
    const frame = greyFrame();
    const before = Buffer.from(frame.rgb);
    const jpeg = await annotateFrame(
      { frame, faces: [face([100, 100, 300, 340], 'ann', 0.9), face([500, 200, 640, 360], UNKNOWN, 0.2)] },
      { threshold: THRESHOLD, fps: 12.5 },
    );
    assert.deepEqual(
      [jpeg[0], jpeg[1], jpeg[jpeg.length - 2], jpeg[jpeg.length - 1]],
      [0xff, 0xd8, 0xff, 0xd9],
    );
    const meta = await sharp(jpeg).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['jpeg', W, H, 3]);
    assert.ok(frame.rgb.equals(before), 'the frame is not drawn on');
  });

  it('draws each box edge in the colour of its confidence (decoded from the JPEG)', async () => {
    const cases: [Face, Rgb][] = [
      [face([100, 200, 260, 400], 'well-above', THRESHOLD + 0.3), COLOURS.green],
      [face([340, 200, 500, 400], 'above', THRESHOLD + 0.07), COLOURS.yellow],
      [face([580, 200, 740, 400], 'just-above', THRESHOLD + 0.01), COLOURS.orange],
      [face([820, 200, 980, 400], UNKNOWN, THRESHOLD - 0.1), COLOURS.red],
      [face([1060, 200, 1220, 400]), COLOURS.blue],
      [{ ...face([100, 500, 260, 700], 'x', 0.9), rejected: ['too-blurry'] } as Face, COLOURS.grey],
    ];
    const item: FaceFrame = { frame: greyFrame(), faces: cases.map(([f]) => f) };
    // 4 px lines on even columns fill whole 2×2 chroma blocks, so the colour survives 4:2:0 JPEG.
    const jpeg = await annotateFrame(item, { threshold: THRESHOLD, lineWidth: 4, quality: 90 });
    const img = await decode(jpeg);
    assert.equal(img.channels, 3);
    for (const [f, colour] of cases) {
      const [x1, y1, x2, y2] = f.box;
      const midY = (y1 + y2) / 2;
      near(pixel(img.data, img.width, x1, midY), colour, 24, `left edge of ${f.identity?.name}`);
      near(pixel(img.data, img.width, x2, midY), colour, 24, `right edge of ${f.identity?.name}`);
      near(pixel(img.data, img.width, (x1 + x2) / 2, y2), colour, 24, `bottom edge of ${f.identity?.name}`);
      near(pixel(img.data, img.width, (x1 + x2) / 2, midY), [GREY, GREY, GREY], 8, 'inside the box');
    }
    // Default line width (2 px at 720p) on the raw drawing: exact colours.
    const raw = await drawAnnotations({ frame: greyFrame(), faces: [cases[0][0]] }, { threshold: THRESHOLD });
    assert.deepEqual(pixel(raw, W, 100, 300), COLOURS.green);
    assert.deepEqual(pixel(raw, W, 99, 300), COLOURS.green);
    assert.deepEqual(pixel(raw, W, 98, 300), [GREY, GREY, GREY]);
  });

  it('puts a label with a solid background above the box, inside when there is no room', async () => {
    const f = face([200, 100, 360, 300], 'ann', 0.9, { trackId: 42 });
    const raw = await drawAnnotations(
      { frame: greyFrame(), faces: [f] },
      { threshold: THRESHOLD, showCamera: false },
    );
    const row = (y: number) => Array.from({ length: 400 }, (_, x) => pixel(raw, W, 150 + x, y));
    const labelRows = Array.from({ length: 30 }, (_, i) => row(99 - i));
    const green = labelRows.flat().filter((p) => p.join() === COLOURS.green.join()).length;
    const dark = labelRows.flat().filter((p) => p[1] < 100).length;
    assert.ok(green > 1000, `label background: ${green} px`);
    assert.ok(dark > 50, `label text (black on green): ${dark} px`);
    const atTop = face([200, 0, 360, 200], 'ann', 0.9);
    const top = await drawAnnotations({ frame: greyFrame(), faces: [atTop] }, { threshold: THRESHOLD });
    assert.deepEqual(pixel(top, W, 201, 12), COLOURS.green, 'label inside the box at the frame top');
  });

  it('draws names with XML specials literally and cannot be made to draw anything else', async () => {
    assert.equal(escapeXml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
    const evil = '</text><rect width="9999" height="9999" fill="red"/><text>';
    const names = ['<script>&"\'', 'xxxxxxxxxxx', evil, 'line\nbreak\u0000', 'Zoë 王小明'];
    const drawn = [];
    for (const name of names) {
      const raw = await drawAnnotations(
        { frame: greyFrame(), faces: [face([600, 300, 760, 500], name, 0.9)] },
        { threshold: THRESHOLD, showCamera: false },
      );
      // Nothing outside the box and its label is touched.
      for (const [x, y] of [
        [10, 10],
        [1270, 700],
        [100, 600],
        [680, 400],
      ]) {
        assert.deepEqual(pixel(raw, W, x, y), [GREY, GREY, GREY], `${JSON.stringify(name)} at ${x},${y}`);
      }
      const labelRow = Array.from({ length: W }, (_, x) => pixel(raw, W, x, 290));
      const xs = labelRow.flatMap((p, x) => (p.join() === COLOURS.green.join() ? [x] : []));
      drawn.push({ width: xs.length ? xs[xs.length - 1] - xs[0] + 1 : 0, raw });
    }
    // Eleven characters each: the same width, and different ink (the specials really are drawn).
    assert.ok(drawn[0].width > 100);
    assert.equal(drawn[0].width, drawn[1].width);
    assert.ok(!drawn[0].raw.equals(drawn[1].raw), 'the specials have their own glyphs');
    assert.ok(drawn[2].width > drawn[0].width, 'the long injection attempt is drawn as text');
  });

  it('picks colours by the margin over the threshold, or green without a threshold', () => {
    const named = (s: number) => face([0, 0, 10, 10], 'x', s);
    assert.equal(colourOf(named(0.61), { threshold: 0.5 }), COLOURS.green);
    assert.equal(colourOf(named(0.56), { threshold: 0.5 }), COLOURS.yellow);
    assert.equal(colourOf(named(0.52), { threshold: 0.5 }), COLOURS.orange);
    assert.equal(colourOf(named(0.52), { threshold: 0.5, bands: { green: 0.01 } }), COLOURS.green);
    assert.equal(colourOf(named(0.52)), COLOURS.green);
    assert.equal(colourOf(face([0, 0, 10, 10], UNKNOWN, 0.1)), COLOURS.red);
  });

  it('draws an ambiguous face purple, labelled with both candidates and no name of its own', () => {
    const f = face([0, 0, 10, 10], UNKNOWN, 0.93, { trackId: 3 });
    f.identity = {
      ...(f.identity as NonNullable<Face['identity']>),
      ambiguous: true,
      topK: [
        { name: 'ann', similarity: 0.93 },
        { name: 'bea', similarity: 0.929 },
        { name: 'cy', similarity: 0.5 },
      ],
    };
    assert.equal(colourOf(f, { threshold: 0.92 }), COLOURS.purple);
    assert.equal(labelOf(f).text, 'ann or bea? #3');
    assert.equal(labelOf(face([0, 0, 10, 10], UNKNOWN, 0.1)).text, UNKNOWN);
  });

  it("shrinks the bands with the room above a high threshold (face-api's 0.92)", () => {
    const named = (s: number) => face([0, 0, 10, 10], 'x', s);
    // Room 0.08 of FaceRes's 0.48: green from 0.0167 above, yellow from 0.0083 above.
    assert.equal(colourOf(named(0.94), { threshold: 0.92 }), COLOURS.green);
    assert.equal(colourOf(named(0.93), { threshold: 0.92 }), COLOURS.yellow);
    assert.equal(colourOf(named(0.922), { threshold: 0.92 }), COLOURS.orange);
  });

  it('annotate() adds a JPEG to every frame, in order, with a measured frame rate', async () => {
    const items: FaceFrame[] = [0, 1, 2, 3].map((i) => ({
      frame: greyFrame(i, 1_700_000_000_000 + i * 100),
      faces: [face([100 + i * 10, 100, 300, 300], 'ann', 0.9)],
    }));
    const out = await lastValueFrom(
      from(items).pipe(annotate({ showFps: true, threshold: THRESHOLD }), toArray()),
    );
    assert.deepEqual(
      out.map((o) => o.frame.seq),
      [0, 1, 2, 3],
    );
    for (const o of out) assert.equal((await sharp(o.jpeg).metadata()).width, W);
    const first = await decode(out[0].jpeg);
    const last = await decode(out[3].jpeg);
    // The corner holds the camera and time on every frame; the fps text appears from the second.
    const inkWidth = (img: typeof first) => {
      let right = 0;
      for (let x = 0; x < 600; x++) if (pixel(img.data, img.width, x, 8)[0] < 100) right = x;
      return right;
    };
    assert.ok(inkWidth(last) > inkWidth(first) + 40, `${inkWidth(first)} → ${inkWidth(last)}`);
  });
});
