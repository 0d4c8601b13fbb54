import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { lastValueFrom, of } from 'rxjs';
import sharp from 'sharp';

import { FaceFlow } from '../src/faceflow';
import { decodeImage } from '../src/image/decode';
import { loadAttribute } from '../src/models/pack/load';
import {
  assessQuality,
  DEFAULT_QUALITY_THRESHOLDS,
  estimatePose,
  eyeAspectRatio,
  faceSharpness,
  qualityGate,
  type GatedFace,
  type MeshFace,
} from '../src/quality';
import type { Face, FaceFrame, Frame, Point } from '../src/types';
import { requireSharedData, shared } from './helpers/shared';

const knn = (...p: string[]) => shared('face_recognition_examples', 'knn', ...p);
const misc = (...p: string[]) => shared('face_recognition_examples', 'misc', ...p);

function toSharp(frame: Frame) {
  return sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } });
}

async function fromSharp(image: ReturnType<typeof sharp>): Promise<Frame> {
  const { data, info } = await image.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { cameraId: 'test', seq: 0, ts: 0, width: info.width, height: info.height, rgb: data };
}

const area = (f: Face) => (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);
const largest = (faces: Face[]) => [...faces].sort((a, b) => area(b) - area(a))[0];

/** Frontal landmarks of the ArcFace template, scaled: a face looking straight at the camera. */
const FRONTAL: Point[] = [
  [38.29, 51.7],
  [73.53, 51.5],
  [56.03, 71.74],
  [41.55, 92.37],
  [70.73, 92.2],
];

describe('quality: pose and eyes from landmarks', () => {
  it('reads a frontal face as frontal and a rotated one by its rotation', () => {
    const p = estimatePose(FRONTAL);
    assert.ok(Math.abs(p.yaw) < 2 && Math.abs(p.pitch) < 6 && Math.abs(p.roll) < 1, JSON.stringify(p));
    const a = (25 * Math.PI) / 180;
    const rotated = FRONTAL.map(([x, y]): Point => [
      x * Math.cos(a) - y * Math.sin(a),
      x * Math.sin(a) + y * Math.cos(a),
    ]);
    const r = estimatePose(rotated);
    assert.ok(Math.abs(r.roll - p.roll - 25) < 1e-6, `roll ${r.roll}`);
    assert.ok(
      Math.abs(r.yaw - p.yaw) < 1e-6 && Math.abs(r.pitch - p.pitch) < 1e-6,
      'yaw and pitch ignore roll',
    );
  });

  it('turns yaw with the nose and pitch with its height', () => {
    const nose = (dx: number, dy: number): Point[] =>
      FRONTAL.map((q, i): Point => (i === 2 ? [q[0] + dx, q[1] + dy] : q));
    assert.ok(estimatePose(nose(12, 0)).yaw > 30, 'nose to the right: turned right');
    assert.ok(estimatePose(nose(-12, 0)).yaw < -30, 'nose to the left: turned left');
    assert.ok(estimatePose(nose(0, 10)).pitch > 20, 'nose lower: looking down');
    assert.ok(estimatePose(nose(0, -10)).pitch < -20, 'nose higher: looking up');
    const upsideDown = FRONTAL.map(([x, y]): Point => [x, -y]);
    assert.ok(Number.isNaN(estimatePose(upsideDown).yaw));
  });

  it('measures eye openness from a 468-point mesh and flags closed eyes', () => {
    const eye = (mesh: Point[], [p1, p2, p3, p4, p5, p6]: number[], cx: number, open: number) => {
      mesh[p1] = [cx - 15, 50];
      mesh[p4] = [cx + 15, 50];
      mesh[p2] = mesh[p3] = [cx, 50 - open / 2];
      mesh[p6] = mesh[p5] = [cx, 50 + open / 2];
    };
    const mesh = (open: number) => {
      const m: Point[] = Array.from({ length: 468 }, () => [56, 70] as Point);
      eye(m, [33, 160, 158, 133, 153, 144], 38, open);
      eye(m, [263, 387, 385, 362, 380, 373], 74, open);
      return m;
    };
    assert.ok(Math.abs(eyeAspectRatio(mesh(9)) - 0.3) < 1e-9);
    assert.throws(() => eyeAspectRatio(FRONTAL), /468-point/);
    const frame = { width: 112, height: 112, rgb: Buffer.alloc(112 * 112 * 3, 128) };
    const face = (open: number): MeshFace => ({
      box: [0, 0, 112, 112],
      score: 1,
      landmarks: FRONTAL,
      mesh: mesh(open),
    });
    const closed = assessQuality(frame, face(1.5), { minContrast: 0, minSharpness: 0 });
    assert.ok(closed.scores.eyeOpenness !== undefined && closed.scores.eyeOpenness < 0.1);
    assert.deepEqual(closed.reasons, ['eyes-closed']);
    assert.deepEqual(assessQuality(frame, face(9), { minContrast: 0, minSharpness: 0 }).reasons, []);
    const noMesh = assessQuality(frame, { box: [0, 0, 112, 112], score: 1, landmarks: FRONTAL });
    assert.equal(noMesh.scores.eyeOpenness, undefined, 'omitted without a mesh');
  });
});

describe('quality gate on real photos', function () {
  let flow: FaceFlow;
  let obama: Frame;
  let obamaFace: Face;
  before(async function () {
    requireSharedData(this);
    flow = await FaceFlow.open({ threads: 2 });
    obama = await decodeImage(knn('train', 'obama', 'obama.jpg'));
    obamaFace = largest(await flow.analyze(obama));
  });
  after(async () => flow?.dispose());

  /** The largest face of a variant of a photo, assessed with the default thresholds. */
  async function assessVariant(frame: Frame) {
    const faces = await flow.analyze(frame);
    assert.ok(faces.length > 0, 'a face is still found');
    const face = largest(faces);
    return { face, ...assessQuality(frame, face, DEFAULT_QUALITY_THRESHOLDS) };
  }

  it('passes frontal, sharp, well-lit faces', async () => {
    const files = [
      knn('train', 'obama', 'obama.jpg'),
      knn('train', 'biden', 'biden2.jpg'),
      knn('train', 'alex_lacamoire', 'img1.jpg'),
      knn('train', 'rose_leslie', 'img2.jpg'),
      misc('obama-1080p.jpg'),
      misc('lin-manuel-miranda.png'),
    ];
    for (const file of files) {
      const frame = await decodeImage(file);
      const { scores, passed, reasons } = await assessVariant(frame);
      assert.ok(passed, `${file}: ${reasons.join(', ')} ${JSON.stringify(scores)}`);
      assert.equal(typeof scores.sharpness, 'number');
      assert.ok(
        Math.abs(scores.yaw) < 20 && Math.abs(scores.roll) < 10,
        `${file}: ${JSON.stringify(scores)}`,
      );
    }
  });

  it('keeps faceSharpness as it was: the same value as the gate', () => {
    const { scores } = assessQuality(obama, obamaFace);
    assert.equal(scores.sharpness, faceSharpness(obama, obamaFace.landmarks));
  });

  it('rejects a blurred face as too blurry', async () => {
    const r = await assessVariant(await fromSharp(toSharp(obama).blur(9)));
    assert.ok(r.reasons.includes('too-blurry'), JSON.stringify(r));
    assert.ok(!r.reasons.includes('too-dark') && !r.reasons.includes('too-small'), r.reasons.join());
  });

  it('rejects a dark face as too dark, and a washed-out one as low in contrast', async () => {
    const dark = await assessVariant(await fromSharp(toSharp(obama).linear(0.1, 0)));
    assert.ok(dark.reasons.includes('too-dark'), JSON.stringify(dark));
    const flat = await assessVariant(await fromSharp(toSharp(obama).linear(0.1, 115)));
    assert.ok(flat.reasons.includes('low-contrast'), JSON.stringify(flat));
    assert.ok(
      !flat.reasons.includes('too-dark') && !flat.reasons.includes('too-bright'),
      flat.reasons.join(),
    );
    const bright = await assessVariant(await fromSharp(toSharp(obama).linear(2.6, 0)));
    assert.ok(bright.reasons.includes('too-bright'), JSON.stringify(bright));
  });

  it('rejects a tiny face as too small', async () => {
    // The 240p Obama shrunk to half, on a grey canvas so that the detector sees a scene.
    const small = await fromSharp(
      toSharp(await decodeImage(misc('obama-240p.jpg')))
        .resize({ width: 213 })
        .extend({ top: 120, bottom: 120, left: 200, right: 200, background: { r: 120, g: 120, b: 120 } }),
    );
    const r = await assessVariant(small);
    assert.ok(r.scores.size < DEFAULT_QUALITY_THRESHOLDS.minSize, `size ${r.scores.size}`);
    assert.ok(r.reasons.includes('too-small'), JSON.stringify(r));
  });

  it('measures the roll of a photo rotated by ±20° within a few degrees', async () => {
    const base = assessQuality(obama, obamaFace).scores.roll;
    for (const angle of [20, -20]) {
      const rotated = await fromSharp(toSharp(obama).rotate(angle, { background: '#787878' }));
      const { scores } = await assessVariant(rotated);
      assert.ok(
        Math.abs(scores.roll - base - angle) < 3,
        `rotated ${angle}°: roll ${scores.roll}, upright ${base}`,
      );
    }
  });

  it('reads a bystander turned away as turned, and rejects a profile from the Hamilton clip', async () => {
    const photo = await decodeImage(knn('test', 'obama_and_biden.jpg'));
    const faces = await flow.analyze(photo);
    const yaws = faces.map((f) => assessQuality(photo, f).scores.yaw).sort((a, b) => a - b);
    assert.ok(yaws[0] < -30, `the bystander: ${yaws[0]}`);
    assert.ok(Math.abs(yaws[1]) < 10 && Math.abs(yaws[2]) < 10, `the two looking at the camera: ${yaws}`);

    const profile = await videoFrame(
      shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4'),
      41,
    );
    if (!profile) {
      console.warn('    (profile check skipped: @ffmpeg-installer/ffmpeg is not installed)');
      return;
    }
    const r = await assessVariant(profile);
    assert.ok(r.scores.yaw < -DEFAULT_QUALITY_THRESHOLDS.maxYaw, JSON.stringify(r.scores));
    assert.ok(r.reasons.includes('yaw'), r.reasons.join());
  });

  it('qualityGate marks or drops rejected faces and scores every face', async () => {
    const frame = await decodeImage(knn('test', 'obama_and_biden.jpg'));
    const faces = await flow.detect(frame);
    assert.equal(faces.length, 3);
    const item: FaceFrame = { frame, faces };
    const marked = await lastValueFrom(of(item).pipe(qualityGate({ maxYaw: 30 })));
    assert.equal(marked.faces.length, 3);
    for (const f of marked.faces) {
      assert.equal(typeof f.quality?.sharpness, 'number');
      assert.equal(typeof f.quality?.yaw, 'number');
    }
    const rejected = (marked.faces as GatedFace[]).filter((f) => f.rejected);
    assert.equal(rejected.length, 1);
    assert.deepEqual(rejected[0].rejected, ['yaw']);
    assert.equal(faces[0].quality, undefined, 'the input faces are left alone');

    const dropped = await lastValueFrom(of(item).pipe(qualityGate({ maxYaw: 30, mode: 'drop' })));
    assert.equal(dropped.faces.length, 2);
    assert.ok(dropped.faces.every((f) => Math.abs(f.quality?.yaw as number) <= 30));
    assert.equal(dropped.frame, frame);
    // A face that passes a later, laxer gate loses its earlier mark.
    const relaxed = await lastValueFrom(of(marked).pipe(qualityGate({ maxYaw: 60 })));
    assert.ok(relaxed.faces.every((f) => (f as GatedFace).rejected === undefined));
    assert.throws(() => qualityGate({ mode: 'keep' as 'mark' }), /mode/);
  });

  it('records anti-spoof scores when the models are given, and gates on them only when asked', async () => {
    const antispoof = await loadAttribute('antispoof', { threads: 2 });
    try {
      const frame = await decodeImage(knn('train', 'biden', 'biden2.jpg'));
      const item: FaceFrame = { frame, faces: await flow.detect(frame) };
      const out = await lastValueFrom(of(item).pipe(qualityGate({ spoofModels: [antispoof] })));
      const real = out.faces[0].quality?.real;
      assert.ok(typeof real === 'number' && real >= 0 && real <= 1, `real ${real}`);
      assert.equal((out.faces[0] as GatedFace).rejected, undefined);
      const strict = await lastValueFrom(
        of(item).pipe(qualityGate({ spoofModels: [antispoof], minReal: 1.01 })),
      );
      assert.deepEqual((strict.faces[0] as GatedFace).rejected, ['spoof']);
    } finally {
      await antispoof.dispose();
    }
  });
});

/** One frame (0-based index) of a video, through the ffmpeg binary of @ffmpeg-installer if present. */
async function videoFrame(file: string, index: number): Promise<Frame | undefined> {
  let ffmpeg: string;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ffmpeg = require('@ffmpeg-installer/ffmpeg').path;
  } catch {
    return undefined;
  }
  const { stdout } = await promisify(execFile)(
    ffmpeg,
    [
      '-loglevel',
      'error',
      '-i',
      file,
      '-vf',
      `select=eq(n\\,${index})`,
      '-frames:v',
      '1',
      '-f',
      'image2pipe',
      '-c:v',
      'png',
      '-',
    ],
    { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
  );
  return decodeImage(stdout);
}
