import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';

import { ffmpegPath } from '../io/ffmpeg';

/**
 * The demo's media come from photos that ship inside an npm dependency
 * (`@vladmandic/face-api`, MIT, pinned to one version), so `npm start` needs nothing beyond
 * `npm install`: no download, no `../shared`.
 *
 * The person enrolled in the demo is the woman in the middle of `sample3.jpg`; the same woman
 * stands on the right of `sample1.jpg`, a different photo (cosine similarity 0.67 with the
 * default pack, the next closest face in the samples 0.46). The video is built from every
 * sample but `sample3`, so the photo she is enrolled from never appears in it: what the demo
 * recognises is a second photo of her, not the same pixels.
 */
export const DEMO_PERSON = 'Sam';

const SAMPLE_PACKAGE = '@vladmandic/face-api';
/** Photos of the video, in order; sample3 is kept for enrolment only (see above). */
const VIDEO_SAMPLES = ['sample1.jpg', 'sample2.jpg', 'sample4.jpg', 'sample5.jpg', 'sample6.jpg'];
const ENROL_SAMPLE = 'sample3.jpg';
/**
 * Her head in sample3.jpg (1920×1350) with room around it, and no other face in it: the
 * neighbours' faces end at x = 792 and begin at x = 1476.
 */
const ENROL_CROP = { left: 960, top: 120, width: 480, height: 580 };

export const VIDEO_FPS = 15;
export const VIDEO_WIDTH = 1280;
export const VIDEO_HEIGHT = 720;
/** Seconds each photo is shown. */
const SECONDS_PER_PHOTO = 4;

/** The folder of the sample photos inside the installed package. */
export function samplePhotosDir(): string {
  return path.join(path.dirname(require.resolve(`${SAMPLE_PACKAGE}/package.json`)), 'demo');
}

/**
 * Writes the demo clip (H.264, 1280×720 at 15 fps, 20 s): each sample photo cropped to 16:9 and
 * slowly zoomed into, as a camera operator might. Written beside the target and renamed, so an
 * interrupted run never leaves a half clip that a later start would take for a whole one.
 */
export async function makeSampleVideo(target: string, options: { ffmpeg?: string } = {}): Promise<void> {
  const dir = samplePhotosDir();
  const frames = SECONDS_PER_PHOTO * VIDEO_FPS;
  const zoomStep = (0.15 / frames).toFixed(5);
  const inputs = VIDEO_SAMPLES.flatMap((name) => ['-i', path.join(dir, name)]);
  const chains = VIDEO_SAMPLES.map(
    (_, i) =>
      `[${i}:v]scale=1920:-2,crop=1920:1080,` +
      `zoompan=z='min(zoom+${zoomStep},1.15)':d=${frames}:x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)'` +
      `:s=${VIDEO_WIDTH}x${VIDEO_HEIGHT}:fps=${VIDEO_FPS},setsar=1[p${i}]`,
  );
  const joined = `${VIDEO_SAMPLES.map((_, i) => `[p${i}]`).join('')}concat=n=${VIDEO_SAMPLES.length}:v=1:a=0,format=yuv420p[v]`;
  const partial = `${target}.partial.mp4`;
  await fs.mkdir(path.dirname(target), { recursive: true });
  const args = [
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    ...inputs,
    '-filter_complex',
    [...chains, joined].join(';'),
    '-map',
    '[v]',
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-crf',
    '23',
    // A key frame every second, so a looping reader restarts cleanly.
    '-g',
    String(VIDEO_FPS),
    partial,
  ];
  await run(ffmpegPath({ ffmpeg: options.ffmpeg }), args);
  await fs.rename(partial, target);
}

/** Writes the enrolment photo of the demo person: her head cut out of sample3.jpg, as a JPEG. */
export async function makeEnrolmentPhoto(target: string): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const jpeg = await sharp(path.join(samplePhotosDir(), ENROL_SAMPLE))
    .extract(ENROL_CROP)
    .jpeg({ quality: 92 })
    .toBuffer();
  await fs.writeFile(target, jpeg);
}

function run(binary: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      // Only the tail matters for the message; a runaway log must not grow without bound.
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new Error(`ffmpeg failed making the demo video (${signal ?? `exit ${code}`}): ${stderr.trim()}`),
        );
    });
  });
}
