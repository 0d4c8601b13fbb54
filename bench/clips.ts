/**
 * The hamilton clip as the live benchmarks use it: the file, its 1280×720 15 fps copy, and all of a file's frames
 * decoded into memory with the file's own timing.
 */
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { lastValueFrom, toArray } from 'rxjs';

import {
  DEMO_PERSON,
  makeEnrolmentPhoto,
  makeSampleVideo,
  VIDEO_FPS as DEMO_FPS,
} from '../src/demo/sampleMedia';
import { fileFrames } from '../src/io/cameraSource';
import { ffmpegPath } from '../src/io/ffmpeg';
import { frameFromI420, pendingDetectorPicture, pendingI420, type DetectorPicture } from '../src/util/i420';
import type { Frame } from '../src/types';
import { SHARED_DATA } from './common';

export const HAMILTON = {
  clip: path.join(SHARED_DATA, 'face_recognition_examples', 'video', 'short_hamilton_clip.mp4'),
  portrait: path.join(SHARED_DATA, 'face_recognition_examples', 'misc', 'lin-manuel-miranda.png'),
  person: 'lin-manuel-miranda',
  fps: 30000 / 1001,
};

export const HD = { width: 1280, height: 720, fps: 15 };

/** The hamilton clip at 1280×720, 15 fps, in `dir`. */
export async function make720p(dir: string): Promise<string> {
  const out = path.join(dir, 'hamilton-720p15.mp4');
  // A near-lossless H.264 file, so the live rows decode what a camera would send.
  await promisify(execFile)(ffmpegPath(), [
    '-nostdin',
    '-v',
    'error',
    '-y',
    '-i',
    HAMILTON.clip,
    '-vf',
    `scale=${HD.width}:${HD.height}`,
    '-r',
    String(HD.fps),
    // The clip's first video frame is at 0.85 s; a constant-rate output would fill that gap with
    // copies of it. vfr only drops frames to reach 15 fps.
    '-vsync',
    'vfr',
    '-an',
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-crf',
    '18',
    '-pix_fmt',
    'yuv420p',
    out,
  ]);
  return out;
}

/** The I420 planes of each frame decodeAll returned, so passes can be replayed as fresh camera frames. */
const planesOf = new WeakMap<Frame, Buffer>();
const picturesOf = new WeakMap<Frame, DetectorPicture>();

/**
 * All frames of a file in memory, as a camera delivers them (I420, RGB converted only when read). Their
 * `ts` are rewritten to the file's own timing, as a camera would stamp them, because they were decoded
 * faster than real time and faceEvents keeps time by `ts`. Hand each pass {@link replay} of them: a frame
 * whose RGB was read once stays RGB. With `detectorInput` they carry ffmpeg's detector picture too.
 */
export async function decodeAll(
  file: string,
  cameraId: string,
  fps: number,
  detectorInput?: { width: number; height: number },
): Promise<Frame[]> {
  const frames = await lastValueFrom(fileFrames(file, { cameraId, detectorInput }).pipe(toArray()));
  const t0 = Date.now();
  return frames.map((f) => {
    const planes = pendingI420(f);
    if (planes) planesOf.set(f, planes);
    const picture = pendingDetectorPicture(f);
    if (picture) picturesOf.set(f, picture);
    return restamp(f, { ts: t0 + Math.round((f.seq * 1000) / fps) });
  });
}

/** Fresh frames with the same pixels (and `changes`), still unconverted where decodeAll's were. */
export function replay(
  frames: Frame[],
  changes: Partial<Omit<Frame, 'rgb' | 'width' | 'height'>> = {},
): Frame[] {
  return frames.map((f) => restamp(f, changes));
}

/** One fresh frame with the same pixels and the fields changed, still unconverted where `frame` was decoded so. */
export function restamp(frame: Frame, changes: Partial<Omit<Frame, 'rgb' | 'width' | 'height'>>): Frame {
  const planes = planesOf.get(frame);
  const { cameraId, seq, ts, width, height } = frame;
  const fields = { cameraId, seq, ts, width, height, ...changes };
  if (!planes) return { ...fields, rgb: frame.rgb };
  const picture = picturesOf.get(frame);
  const fresh = frameFromI420(fields, planes, picture);
  planesOf.set(fresh, planes);
  if (picture) picturesOf.set(fresh, picture);
  return fresh;
}

/** Bytes the frames hold: their planes, or RGB where that was read. */
export function heldBytes(frames: Frame[]): number {
  return frames.reduce(
    (sum, f) => sum + (planesOf.get(f)?.length ?? 0) + (pendingI420(f) ? 0 : f.rgb.length),
    0,
  );
}

/** A clip with the people to enrol for it. */
export interface PeopleClip {
  name: string;
  file: string;
  fps: number;
  /** person → photos */
  people: Map<string, string[]>;
}

/**
 * The hamilton clip (the singer enrolled, strangers around him, a cut to the audience) and the demo's sample
 * camera clip (Sam enrolled, four strangers coming round), made here as `npm start` makes it.
 */
export async function peopleClips(): Promise<PeopleClip[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'faceflow-bench-clips-'));
  const demoClip = path.join(dir, 'sample-camera.mp4');
  const demoPhoto = path.join(dir, 'sam.jpg');
  await makeSampleVideo(demoClip);
  await makeEnrolmentPhoto(demoPhoto);
  return [
    {
      name: 'hamilton (640×360)',
      file: HAMILTON.clip,
      fps: HAMILTON.fps,
      people: new Map([[HAMILTON.person, [HAMILTON.portrait]]]),
    },
    {
      name: 'demo sample camera',
      file: demoClip,
      fps: DEMO_FPS,
      people: new Map([[DEMO_PERSON, [demoPhoto]]]),
    },
  ];
}

/** The clip played `loops` times in a row, as a camera sees people come round again. */
export async function decodeLoops(file: string, fps: number, loops: number): Promise<Frame[]> {
  // As a camera delivers them (I420), so that the detector sees what it sees live.
  const once = await decodeAll(file, 'cam', fps);
  const t0 = Date.now();
  const frames: Frame[] = [];
  for (let loop = 0; loop < loops; loop++) {
    for (const f of once) {
      const seq = loop * once.length + f.seq;
      frames.push(restamp(f, { seq, ts: t0 + Math.round((seq * 1000) / fps) }));
    }
  }
  return frames;
}
