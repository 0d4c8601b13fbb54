/**
 * Which ffmpeg binary runs, and what it can do.
 *
 * The default is the static build shipped by `@ffmpeg-installer/ffmpeg` (an npm dependency, so
 * `npm install` alone gives a working ffmpeg: a 2018 git snapshot, libavcodec 58, with the RTSP,
 * h264, hevc and mjpeg code that cameras need). A newer system ffmpeg (Debian 12 ships 5.1) can be
 * chosen instead, for hardware decoders or codecs the snapshot predates: `FACEFLOW_FFMPEG=system`
 * (the `ffmpeg` on PATH), or an absolute path, in the environment or as the `ffmpeg` option.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import * as path from 'node:path';

/** Raised for anything about a camera or video input; messages never contain a password. */
export class CameraError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CameraError';
  }
}

export interface FfmpegChoice {
  /** `bundled` (default), `system` (the `ffmpeg` on PATH), a command name, or a path. */
  ffmpeg?: string;
}

export const FFMPEG_ENV = 'FACEFLOW_FFMPEG';

/** The ffmpeg binary to run: the option, else `$FACEFLOW_FFMPEG`, else the bundled one. */
export function ffmpegPath(options: FfmpegChoice = {}): string {
  const choice = (options.ffmpeg ?? process.env[FFMPEG_ENV] ?? '').trim() || 'bundled';
  const origin = options.ffmpeg !== undefined ? 'the ffmpeg option' : `${FFMPEG_ENV}`;
  if (choice === 'bundled') return bundledFfmpeg();
  if (choice === 'system') return findOnPath('ffmpeg', origin);
  if (!choice.includes('/') && !choice.includes(path.sep)) return findOnPath(choice, origin);
  const resolved = path.resolve(choice);
  if (!isExecutableFile(resolved)) {
    throw new CameraError(`ffmpeg not found or not executable at ${resolved} (from ${origin})`);
  }
  return resolved;
}

function bundledFfmpeg(): string {
  let why: string;
  try {
    // The package resolves its platform sub-package when loaded, and throws a bare string (not
    // an Error) when the platform has none.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const found = require('@ffmpeg-installer/ffmpeg') as { path: string };
    if (isExecutableFile(found.path)) return found.path;
    why = `${found.path} is not executable`;
  } catch (err) {
    why = typeof err === 'string' ? err : String((err as Error)?.message ?? err).split('\n')[0];
  }
  throw new CameraError(
    `the bundled ffmpeg (@ffmpeg-installer/ffmpeg) is not usable on ${process.platform}-${process.arch}: ${why}; ` +
      `install ffmpeg and set ${FFMPEG_ENV}=system, or ${FFMPEG_ENV}=/path/to/ffmpeg`,
  );
}

function findOnPath(name: string, origin: string): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new CameraError(
    `${name} not found on PATH (asked for by ${origin}); install ffmpeg or give its path`,
  );
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface FfmpegVersion {
  /** The first line of `ffmpeg -version`, e.g. `ffmpeg version 5.1.9-0+deb12u1`. */
  banner: string;
  /** libavcodec's [major, minor]: release numbers are absent from git snapshots such as the bundled one. */
  libavcodec: [number, number];
}

const versions = new Map<string, Promise<FfmpegVersion>>();

/** `ffmpeg -version`, parsed and cached per binary. */
export function ffmpegVersion(binary: string): Promise<FfmpegVersion> {
  let pending = versions.get(binary);
  if (!pending) {
    pending = new Promise<FfmpegVersion>((resolve, reject) => {
      execFile(binary, ['-hide_banner', '-version'], { timeout: 10_000 }, (err, stdout) => {
        if (err) {
          reject(new CameraError(`cannot run ${binary} -version: ${err.message.split('\n')[0]}`));
          return;
        }
        const banner = stdout.split('\n')[0].trim();
        const lavc = /libavcodec\s+(\d+)\.\s*(\d+)/.exec(stdout);
        resolve({ banner, libavcodec: lavc ? [Number(lavc[1]), Number(lavc[2])] : [0, 0] });
      });
    });
    // A failure is not cached: the binary may be installed a moment later.
    pending.catch(() => versions.delete(binary));
    versions.set(binary, pending);
  }
  return pending;
}

/**
 * ffmpeg 5.1 (libavcodec 59.37) renamed `-vsync` to `-fps_mode` and warns on the old name; the
 * bundled 2018 build knows only the old one.
 */
export function hasFpsMode(version: FfmpegVersion): boolean {
  const [major, minor] = version.libavcodec;
  return major > 59 || (major === 59 && minor >= 37);
}
