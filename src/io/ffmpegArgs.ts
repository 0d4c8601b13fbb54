/**
 * ffmpeg command lines for camera ingest, built as plain arrays so they can be checked without
 * running anything (and without a camera: the device case is only ever tested this way here).
 */
import * as path from 'node:path';
import { CameraError } from './ffmpeg';
import { maskUrl } from './maskUrl';

export type CameraInput =
  | {
      kind: 'file';
      path: string;
      /** Start again at the end instead of completing (`-stream_loop -1`). */
      loop?: boolean;
      /** Read at the file's native frame rate (`-re`), as a camera would deliver it. */
      realtime?: boolean;
    }
  | {
      kind: 'rtsp';
      url: string;
      /** Interleaved in the RTSP connection (default) or RTP over UDP. */
      transport?: 'tcp' | 'udp';
    }
  | {
      kind: 'device';
      /** A V4L2 device such as `/dev/video0`. */
      device: string;
      /** What the camera should send, e.g. `mjpeg` or `yuyv422` (ffmpeg's `-input_format`). */
      inputFormat?: string;
      /** Capture size asked of the camera, `WIDTHxHEIGHT`. */
      captureSize?: string;
      /** Capture rate asked of the camera. */
      framerate?: number;
    };

export interface OutputOptions {
  /** Scale to this width; with only one of width/height the other keeps the aspect ratio. */
  width?: number;
  height?: number;
  /** At most this many frames per second; surplus frames are dropped by ffmpeg, never duplicated. */
  fps?: number;
  /**
   * Threads ffmpeg decodes the stream with: 1 by default, 0 for ffmpeg's own choice (one per core and one
   * more). H.264 spreads over threads a frame each, so every extra thread holds a frame back and costs CPU: on
   * 2 cores ffmpeg's choice delivered 720p frames about 130 ms later at 15 fps and took 25 % more CPU than one
   * thread (bench/RESULTS.md). One thread decodes 720p at about 350 frames a second there; a single 4K stream on
   * a small board may need more.
   */
  decoderThreads?: number;
  /** Extra ffmpeg options placed just before `-i`, for what this API does not cover. */
  inputArgs?: string[];
  /**
   * The input size of the detector the frames feed: 256 for the default pack's BlazeFace, a number for a
   * square box or width and height. With it ffmpeg also delivers every frame shrunk to fit inside that box
   * (RGB, the letterbox's own size), and the detector takes that instead of shrinking the full frame on
   * Node's thread: about 2.5 ms less there per 720p frame, for 0.9 ms more in ffmpeg (bench/RESULTS.md).
   * A detector of another size still works, shrinking the frame itself. Off by default; ignored on Windows.
   */
  detectorInput?: number | { width: number; height: number };
}

export interface ArgsContext {
  /** ffmpeg ≥ 5.1 spells `-vsync` as `-fps_mode` (see `hasFpsMode`). */
  fpsMode: boolean;
  platform?: NodeJS.Platform;
}

/** The smallest and largest detector box accepted (a side, in pixels). */
const DETECTOR_BOX_LIMITS = [16, 4096] as const;

/**
 * The detector box of `detectorInput`, checked; undefined when there is none (or on Windows, where the
 * picture's extra pipe is not used).
 */
export function detectorBox(
  output: Pick<OutputOptions, 'detectorInput'>,
  platform: NodeJS.Platform = process.platform,
): { width: number; height: number } | undefined {
  const asked = output.detectorInput;
  if (asked === undefined || asked === 0) return undefined;
  const box = typeof asked === 'number' ? { width: asked, height: asked } : asked;
  const [low, high] = DETECTOR_BOX_LIMITS;
  const ok = (v: unknown) => Number.isInteger(v) && (v as number) >= low && (v as number) <= high;
  if (typeof box !== 'object' || box === null || !ok(box.width) || !ok(box.height)) {
    throw new CameraError(
      `detectorInput must be 0 (off), a whole number of pixels from ${low} to ${high} or { width, height } of such, got ${JSON.stringify(asked)}`,
    );
  }
  return platform === 'win32' ? undefined : { width: box.width, height: box.height };
}

/** The file descriptor ffmpeg writes the detector's picture to, beside the frames on stdout. */
export const DETECTOR_PICTURE_FD = 3;

/**
 * The full argument list (without the binary): decode the first video stream to raw I420 frames on
 * stdout (and, with `detectorInput`, the detector's picture of each to fd 3, written before its frame). Logging is `level+info` because the output size is read from the info lines when no
 * size is given, and the `[level]` prefix tells warnings from errors without guessing.
 */
export function ffmpegArgs(input: CameraInput, output: OutputOptions, context: ArgsContext): string[] {
  const args = ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'level+info'];
  args.push(...inputArgs(input, context.platform ?? process.platform));
  const threads = output.decoderThreads ?? 1;
  if (!Number.isInteger(threads) || threads < 0 || threads > 64) {
    throw new CameraError(
      `decoderThreads must be a whole number from 0 (ffmpeg's choice) to 64, got ${String(output.decoderThreads)}`,
    );
  }
  // Before inputArgs, so that a '-threads' among them still wins.
  args.push('-threads', String(threads));
  for (const extra of output.inputArgs ?? []) {
    if (typeof extra !== 'string') throw new CameraError('inputArgs must be strings');
    args.push(extra);
  }
  args.push('-i', inputTarget(input));

  const width = optionalSize('width', output.width);
  const height = optionalSize('height', output.height);
  // -2 keeps the aspect ratio and rounds to an even number, which some pixel formats need.
  const scale =
    width !== undefined || height !== undefined ? `scale=${width ?? -2}:${height ?? -2}` : undefined;

  const syncFlag = context.fpsMode ? '-fps_mode' : '-vsync';
  if (output.fps !== undefined && !(Number.isFinite(output.fps) && output.fps > 0)) {
    throw new CameraError(`fps must be a positive number, got ${String(output.fps)}`);
  }
  const timing =
    output.fps !== undefined
      ? // With vfr, -r only drops: frames landing on an already used tick are discarded. The fps
        // filter would duplicate frames to fill gaps in a stream slower than the cap. Both outputs
        // see the same timestamps, so they keep and drop the same frames.
        ['-r', String(output.fps), syncFlag, 'vfr']
      : // rawvideo is a constant-rate format to ffmpeg, which would otherwise duplicate and drop
        // frames to fit the nominal rate; a camera's frames should come out one for one.
        [syncFlag, 'passthrough'];
  // Planar YUV 4:2:0, what decoders produce: half the bytes of RGB and no conversion in ffmpeg (src/util/i420.ts).
  const frames = ['-f', 'rawvideo', '-pix_fmt', 'yuv420p', 'pipe:1'];

  const box = detectorBox(output, context.platform ?? process.platform);
  if (box === undefined) {
    args.push('-map', '0:v:0', '-an', '-sn', '-dn');
    if (scale) args.push('-vf', scale);
    args.push(...timing, ...frames);
    return args;
  }
  // The letterbox's arithmetic (fitInside in src/image/letterbox.ts) in ffmpeg's expressions. Area
  // averaging, as the detector's own shrink does; BT.601, as src/util/i420.ts converts.
  const fit = (side: 'iw' | 'ih', limit: number) =>
    `max(1\\,min(${limit}\\,round(${side}*min(${box.width}/iw\\,${box.height}/ih))))`;
  const graph =
    `[0:v]${scale ? `${scale},` : ''}split=2[frame][small];` +
    `[small]scale=w=${fit('iw', box.width)}:h=${fit('ih', box.height)}:flags=area:in_color_matrix=bt601,` +
    `format=rgb24[picture]`;
  // The picture's output first: ffmpeg writes each frame's picture before the frame itself.
  args.push('-filter_complex', graph);
  args.push('-map', '[picture]', ...timing, '-f', 'rawvideo', `pipe:${DETECTOR_PICTURE_FD}`);
  args.push('-map', '[frame]', ...timing, ...frames);
  return args;
}

function inputArgs(input: CameraInput, platform: NodeJS.Platform): string[] {
  switch (input.kind) {
    case 'file': {
      const out: string[] = [];
      if (input.realtime) out.push('-re');
      if (input.loop) out.push('-stream_loop', '-1');
      return out;
    }
    case 'rtsp': {
      const transport = input.transport ?? 'tcp';
      if (transport !== 'tcp' && transport !== 'udp') {
        throw new CameraError(`transport must be 'tcp' or 'udp', got '${String(transport)}'`);
      }
      // Audio is never decoded, so it need not be set up and sent either.
      return ['-rtsp_transport', transport, '-allowed_media_types', 'video'];
    }
    case 'device': {
      if (platform !== 'linux') {
        throw new CameraError(`camera devices are read with V4L2, which needs Linux (this is ${platform})`);
      }
      const out = ['-f', 'v4l2'];
      if (input.inputFormat !== undefined) {
        if (!/^[a-z0-9_]+$/i.test(input.inputFormat)) {
          throw new CameraError(
            `inputFormat must be a pixel or codec name such as mjpeg, got '${input.inputFormat}'`,
          );
        }
        out.push('-input_format', input.inputFormat);
      }
      if (input.captureSize !== undefined) {
        if (!/^[1-9]\d{0,4}x[1-9]\d{0,4}$/.test(input.captureSize)) {
          throw new CameraError(`captureSize must look like 1280x720, got '${input.captureSize}'`);
        }
        out.push('-video_size', input.captureSize);
      }
      if (input.framerate !== undefined) {
        if (!(Number.isFinite(input.framerate) && input.framerate > 0)) {
          throw new CameraError(`framerate must be a positive number, got ${String(input.framerate)}`);
        }
        out.push('-framerate', String(input.framerate));
      }
      return out;
    }
    default:
      throw new CameraError(`unknown input kind '${(input as { kind: unknown }).kind}'`);
  }
}

function inputTarget(input: CameraInput): string {
  switch (input.kind) {
    case 'file':
      if (typeof input.path !== 'string' || input.path === '') throw new CameraError('file path is empty');
      // The file: prefix stops ffmpeg reading a name like "a:b.mp4" or "pipe:x" as a protocol.
      return `file:${path.resolve(input.path)}`;
    case 'rtsp':
      if (typeof input.url !== 'string' || !/^rtsps?:\/\/[^/]/i.test(input.url)) {
        throw new CameraError(`not an rtsp:// URL: '${maskUrl(String(input.url))}'`);
      }
      return input.url;
    case 'device':
      if (typeof input.device !== 'string' || !input.device.startsWith('/')) {
        throw new CameraError(
          `device must be an absolute path such as /dev/video0, got '${String(input.device)}'`,
        );
      }
      return input.device;
  }
}

function optionalSize(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 2 || value > 16384) {
    throw new CameraError(`${name} must be a whole number of pixels from 2 to 16384, got ${String(value)}`);
  }
  return value;
}
