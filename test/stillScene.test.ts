import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { lastValueFrom, share, toArray } from 'rxjs';

import { FaceFlow } from '../src/faceflow';
import { decodeImage } from '../src/image/decode';
import { MemoryGallery } from '../src/gallery/memoryGallery';
import { fileFrames } from '../src/io/cameraSource';
import { ffmpegPath } from '../src/io/ffmpeg';
import { faceEvents } from '../src/pipeline/events';
import { recognizeFrames } from '../src/pipeline/live';
import { MAX_CAMERAS, sampleBrightness, StillSceneGate } from '../src/pipeline/stillScene';
import { UNKNOWN, type Frame } from '../src/types';
import { frameFromI420, i420Size } from '../src/util/i420';
import { seededRandom } from '../src/util/seededRandom';
import { requireSharedData, shared } from './helpers/shared';

const W = 640;
const H = 360;

/** A grey 640×360 RGB frame with sensor-like noise of ±`noise` levels, and a patch drawn where asked. */
function rgbFrame(
  ts: number,
  options: {
    noise?: number;
    seed?: number;
    patch?: { x: number; y: number; size: number; add: number };
  } = {},
): Frame {
  const rand = seededRandom(options.seed ?? ts + 1);
  const rgb = Buffer.alloc(W * H * 3);
  for (let i = 0; i < W * H; i++) {
    const x = i % W;
    const y = Math.floor(i / W);
    let v = 60 + Math.floor((x / W) * 120) + Math.round((rand() * 2 - 1) * (options.noise ?? 0));
    const p = options.patch;
    if (p && x >= p.x && x < p.x + p.size && y >= p.y && y < p.y + p.size) v += p.add;
    rgb.fill(Math.max(0, Math.min(255, v)), i * 3, i * 3 + 3);
  }
  return { cameraId: 'hall', seq: ts, ts, width: W, height: H, rgb };
}

describe('StillSceneGate', () => {
  it('detects on the first frame, then skips the same scene until maxIdleMs has passed', () => {
    const gate = new StillSceneGate({ maxIdleMs: 1000 });
    const first = rgbFrame(0, { noise: 6, seed: 1 });
    assert.equal(gate.needsDetection(first), true, 'nothing to compare with yet');
    gate.detected(first, 0);
    const asked: number[] = [];
    let skipped = 0;
    for (let ts = 66; ts <= 1400; ts += 66) {
      const frame = rgbFrame(ts, { noise: 6, seed: ts });
      if (gate.needsDetection(frame)) {
        asked.push(ts);
        gate.detected(frame, 0);
      } else skipped++;
    }
    // Noise of ±6 levels never counts as motion; the scene is looked at again once a second.
    assert.deepEqual(asked, [1056]);
    assert.equal(skipped, 20);
  });

  it('detects when a part of the picture changes, and on every frame while the last detection found a face', () => {
    const gate = new StillSceneGate();
    gate.detected(rgbFrame(0), 0);
    // A 40×40 patch 40 levels brighter: 100 of the 14,400 samples (0.7 %), over the 0.2 % needed.
    assert.equal(gate.needsDetection(rgbFrame(66, { patch: { x: 300, y: 100, size: 40, add: 40 } })), true);
    // 8×8 pixels: 4 samples, under it.
    assert.equal(gate.needsDetection(rgbFrame(132, { patch: { x: 300, y: 100, size: 8, add: 40 } })), false);
    // 15 levels brighter everywhere: under the 20-level threshold. 30 levels: the whole picture moved.
    assert.equal(gate.needsDetection(rgbFrame(198, { patch: { x: 0, y: 0, size: W, add: 15 } })), false);
    assert.equal(gate.needsDetection(rgbFrame(264, { patch: { x: 0, y: 0, size: W, add: 30 } })), true);
    gate.detected(rgbFrame(330), 1);
    assert.equal(gate.needsDetection(rgbFrame(396)), true, 'a face was found last time');
    gate.detected(rgbFrame(396), 0);
    assert.equal(gate.needsDetection(rgbFrame(462)), false);
  });

  it('keeps cameras apart, and detects on a new frame size', () => {
    const gate = new StillSceneGate();
    gate.detected(rgbFrame(0), 0);
    assert.equal(gate.needsDetection({ ...rgbFrame(66), cameraId: 'door' }), true, 'another camera');
    const small: Frame = {
      cameraId: 'hall',
      seq: 2,
      ts: 132,
      width: 320,
      height: 180,
      rgb: Buffer.alloc(320 * 180 * 3, 90),
    };
    assert.equal(gate.needsDetection(small), true, 'the frame size changed');
  });

  it('remembers at most MAX_CAMERAS cameras, forgetting the one detected on longest ago', () => {
    const gate = new StillSceneGate();
    const grey = Buffer.alloc(64 * 48 * 3, 90);
    const frame = (cameraId: string, ts: number): Frame => ({
      cameraId,
      seq: ts,
      ts,
      width: 64,
      height: 48,
      rgb: grey,
    });
    gate.detected(frame('cam-0', 0), 0);
    gate.detected(frame('cam-1', 0), 0);
    for (let i = 2; i < MAX_CAMERAS; i++) gate.detected(frame(`cam-${i}`, 0), 0);
    gate.detected(frame('cam-0', 10), 0);
    gate.detected(frame('cam-new', 10), 0);
    assert.equal(gate.needsDetection(frame('cam-0', 20)), false, 'detected on again lately: kept');
    assert.equal(gate.needsDetection(frame('cam-1', 20)), true, 'the oldest: forgotten');
    assert.equal(gate.needsDetection(frame('cam-2', 20)), false);
  });

  it('reads the brightness of a YUV frame from its luma plane, without converting it to RGB', () => {
    const planes = Buffer.alloc(i420Size(W, H), 128);
    for (let y = 0; y < H; y++) planes.fill(y < 100 ? 50 : 200, y * W, (y + 1) * W);
    const frame = frameFromI420({ cameraId: 'hall', seq: 0, ts: 0, width: W, height: H }, planes);
    const samples = sampleBrightness(frame, 4);
    assert.equal(samples.length, 160 * 90);
    assert.equal(samples[0], 50);
    assert.equal(samples[160 * 25], 200, 'row 100 is the first bright one');
    const gate = new StillSceneGate();
    gate.detected(frame, 0);
    assert.equal(gate.needsDetection(frameFromI420({ ...frame, seq: 1, ts: 66 }, planes)), false);
    const moved = Buffer.from(planes);
    for (let y = 150; y < 200; y++) moved.fill(90, y * W + 300, y * W + 350);
    const next = frameFromI420({ cameraId: 'hall', seq: 2, ts: 132, width: W, height: H }, moved);
    assert.equal(gate.needsDetection(next), true);
    assert.ok(
      Object.getOwnPropertyDescriptor(next, 'rgb')?.get,
      'the frame is still YUV: nobody read its RGB',
    );
  });

  it('refuses options out of range', () => {
    assert.throws(() => new StillSceneGate({ pixelThreshold: 255 }), /pixelThreshold/);
    assert.throws(() => new StillSceneGate({ pixelThreshold: -1 }), /pixelThreshold/);
    assert.throws(() => new StillSceneGate({ minChangedShare: 1.5 }), /minChangedShare/);
    assert.throws(() => new StillSceneGate({ maxIdleMs: Number.NaN }), /maxIdleMs/);
    assert.throws(() => new StillSceneGate({ samplesAcross: 4 }), /samplesAcross/);
  });
});

describe('recognizeFrames on a camera that shows an empty room, then a person', function () {
  this.timeout(180_000);
  let dir: string;
  let video: string;
  let flow: FaceFlow;
  let gallery: MemoryGallery;

  before(async function () {
    requireSharedData(this);
    dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-still-'));
    video = path.join(dir, 'room.mp4');
    // Three seconds of a still picture with sensor noise (the clip's first frame, blurred until no face
    // is left in it), then the hamilton clip, all at 15 fps through H.264 like a camera's stream.
    await promisify(execFile)(ffmpegPath(), [
      '-v',
      'error',
      '-i',
      shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4'),
      '-filter_complex',
      '[0:v]trim=end_frame=1,boxblur=30:3,loop=loop=44:size=1:start=0,setpts=N/15/TB,noise=alls=8:allf=t[a];' +
        '[0:v]fps=15,setpts=PTS-STARTPTS[b];[a][b]concat=n=2:v=1:a=0,format=yuv420p[v]',
      '-map',
      '[v]',
      '-r',
      '15',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      video,
    ]);
    flow = await FaceFlow.open();
    gallery = new MemoryGallery(flow.embedder.id);
    const lin = await decodeImage(shared('face_recognition_examples', 'misc', 'lin-manuel-miranda.png'));
    gallery.add('lin', (await flow.singleFace(lin, 'lin-manuel-miranda.png')).embedding as Float32Array);
  });
  after(async () => {
    await flow?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function run(stillScenes: boolean) {
    const detectedSeqs: number[] = [];
    const counting = Object.create(flow) as FaceFlow;
    counting.detect = (frame, options) => {
      detectedSeqs.push(frame.seq);
      return flow.detect(frame, options);
    };
    const frames$ = fileFrames(video, { cameraId: 'room' }).pipe(
      recognizeFrames(counting, gallery, {
        threshold: flow.threshold,
        stillScenes: stillScenes ? {} : false,
      }),
      share(),
    );
    const [frames, events] = await Promise.all([
      lastValueFrom(frames$.pipe(toArray())),
      lastValueFrom(frames$.pipe(faceEvents(), toArray())),
    ]);
    return { frames, events, detectedSeqs };
  }

  it('skips the detector on the still frames and names the person as without it', async () => {
    const gated = await run(true);
    const every = await run(false);
    assert.equal(gated.frames.length, every.frames.length);
    const stillFrames = 45;
    const inStill = gated.detectedSeqs.filter((s) => s < stillFrames).length;
    // The first frame, and one more a second at most (the frames of a file come faster than that).
    assert.ok(inStill <= 4, `detected on ${inStill} of the ${stillFrames} still frames`);
    assert.equal(every.detectedSeqs.filter((s) => s < stillFrames).length, stillFrames);
    // Without the gate the detector's low-score band (kept for the tracker) may find a ghost in the
    // noise of a blurred picture; no track comes of it either way.
    for (const { frames } of [gated, every]) {
      const tracked = frames
        .slice(0, stillFrames)
        .flatMap((f) => f.faces.filter((x) => x.trackId !== undefined));
      assert.equal(tracked.length, 0);
    }
    // Once he is in view every frame is detected, and he is named the same.
    const after = (seqs: number[]) => seqs.filter((s) => s >= stillFrames).length;
    console.log(
      `      detections: ${inStill} of the ${stillFrames} still frames, then ${after(gated.detectedSeqs)} ` +
        `(without the gate ${after(every.detectedSeqs)}) of the ${gated.frames.length - stillFrames} with him`,
    );
    assert.equal(after(gated.detectedSeqs), after(every.detectedSeqs));
    const names = (events: { name: string }[]) => events.map((e) => e.name).filter((n) => n !== UNKNOWN);
    assert.ok(names(every.events).includes('lin'), JSON.stringify(every.events));
    assert.deepEqual(names(gated.events), names(every.events));
  });
});
