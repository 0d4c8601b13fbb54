import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { of, share, Subscription } from 'rxjs';

import type { FaceFlow } from '../../faceflow';
import { GalleryFile } from '../../gallery/galleryFile';
import { CameraLog } from '../../io/cameraLog';
import { CameraSource, type CameraEvent } from '../../io/cameraSource';
import type { CameraInput } from '../../io/ffmpegArgs';
import { MjpegServer } from '../../io/mjpegServer';
import { faceEvents } from '../../pipeline/events';
import { recognizeFrames } from '../../pipeline/live';
import { collectUnknowns, type Matcher } from '../../pipeline/operators';
import { assessQuality } from '../../quality/assess';
import { enrollInMemory } from '../enroll';
import { UsageError } from '../errors';
import type { CommandIO } from '../io';
import { MODEL_HELP, MODEL_OPTIONS, openFaceFlow, parseNumber } from '../options';

export const WATCH_HELP = `Usage: faceflow watch SOURCE (--enroll DIR | --gallery FILE) [options]

Recognises people in a video stream and prints one JSON line per event on stdout:
{"type":"recognized"|"unknown","camera","name","similarity","trackId","box","ts"}
once per track and person, again only after the person was out of sight for the cooldown.
Camera events (up, stalled, dropped frames) go to stderr; a camera that keeps failing is reported
when it starts, when the reason changes, after 1 and 10 minutes, hourly, and when it works again
(FACEFLOW_DEBUG=1 prints every attempt). Ctrl-C stops it.

SOURCE is a video file, an rtsp:// URL (TCP; credentials are never printed) or a V4L2 device
such as /dev/video0.

Options:
  --enroll DIR          the people to recognise: DIR/<person>/<photos> (enrolment's rules)
  --gallery FILE        or a gallery file ('faceflow gallery'); its calibrated threshold is used
  --key-file FILE       the gallery's key (default: $FACEFLOW_GALLERY_KEY)
  --collect-unknowns    keep unknown faces in the gallery file, for 'faceflow gallery cluster'
  --mjpeg PORT          serve the annotated live view at http://HOST:PORT/stream.mjpg
  --mjpeg-host HOST     address to serve it on (default 127.0.0.1)
  --detect-every N      detect on every Nth frame, track in between (default 1)
  --no-skip-still       detect on still frames of an empty scene too (default: skipped, one a second)
  --fps N               at most N frames per second from the source (default: the source's)
  --width N             scale frames to this width (default: the source's)
  --camera ID           camera name in events (default: from the source)
  --cooldown S          seconds out of sight before a person is announced again (default 30)
  --quality             embed only faces that pass the quality gate (size, sharpness, light, pose)
  --snapshot            add a base64 JPEG of the face to each event
  --loop                play a file source again and again
  --no-realtime         read a file as fast as possible (frames that cannot be processed in time are dropped)
  --udp                 RTSP over UDP instead of TCP
  --decoder-threads N   threads ffmpeg decodes with (default 1; 0: ffmpeg's choice, for one 4K camera)
  --ffmpeg PATH|system  ffmpeg to use (default: the one installed with faceflow; $FACEFLOW_FFMPEG)
  --max-frames N        stop after N processed frames
${MODEL_HELP}`;

const OPTIONS = {
  ...MODEL_OPTIONS,
  enroll: { type: 'string' },
  gallery: { type: 'string' },
  'key-file': { type: 'string' },
  'collect-unknowns': { type: 'boolean' },
  mjpeg: { type: 'string' },
  'mjpeg-host': { type: 'string' },
  'detect-every': { type: 'string' },
  'no-skip-still': { type: 'boolean' },
  fps: { type: 'string' },
  width: { type: 'string' },
  camera: { type: 'string' },
  cooldown: { type: 'string' },
  quality: { type: 'boolean' },
  snapshot: { type: 'boolean' },
  loop: { type: 'boolean' },
  'no-realtime': { type: 'boolean' },
  udp: { type: 'boolean' },
  'decoder-threads': { type: 'string' },
  ffmpeg: { type: 'string' },
  'max-frames': { type: 'string' },
} as const;

/** What SOURCE names: an RTSP URL, a V4L2 device or a file. */
export function cameraInput(
  source: string,
  options: { loop?: boolean; realtime?: boolean; udp?: boolean },
): CameraInput {
  if (/^rtsps?:\/\//i.test(source))
    return { kind: 'rtsp', url: source, transport: options.udp ? 'udp' : 'tcp' };
  if (source.startsWith('/dev/')) return { kind: 'device', device: source };
  if (!existsSync(source))
    throw new UsageError(`${source}: no such file (expected a video file, rtsp:// URL or /dev/video*)`);
  return { kind: 'file', path: source, loop: options.loop, realtime: options.realtime };
}

export async function watchCommand(
  argv: string[],
  io: CommandIO,
  signals: NodeJS.EventEmitter = process,
): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  if (positionals.length !== 1) throw new UsageError('watch needs exactly one SOURCE');
  if (!values.enroll === !values.gallery)
    throw new UsageError('watch needs --enroll DIR or --gallery FILE (one of them)');
  if (values['collect-unknowns'] && !values.gallery)
    throw new UsageError('--collect-unknowns needs --gallery FILE');
  const detectEvery = parseNumber('detect-every', values['detect-every'], 1, 1000) ?? 1;
  if (!Number.isInteger(detectEvery)) throw new UsageError('--detect-every must be a whole number');
  const fps = parseNumber('fps', values.fps, 0.1, 240);
  const width = parseNumber('width', values.width, 16, 8192);
  const cooldownMs = (parseNumber('cooldown', values.cooldown, 0, 86_400) ?? 30) * 1000;
  const maxFrames = parseNumber('max-frames', values['max-frames'], 1, Number.MAX_SAFE_INTEGER);
  const mjpegPort = parseNumber('mjpeg', values.mjpeg, 0, 65_535);
  const decoderThreads = parseNumber('decoder-threads', values['decoder-threads'], 0, 64);
  if (decoderThreads !== undefined && !Number.isInteger(decoderThreads))
    throw new UsageError('--decoder-threads must be a whole number');
  const input = cameraInput(positionals[0], {
    loop: values.loop,
    realtime: !values['no-realtime'],
    udp: values.udp,
  });

  const flow = await openFaceFlow(values);
  let galleryFile: GalleryFile | undefined;
  let mjpeg: MjpegServer | undefined;
  try {
    let gallery: Matcher & { unknowns?: GalleryFile['gallery']['unknowns'] };
    if (values.gallery) {
      const key = process.env.FACEFLOW_GALLERY_KEY || undefined;
      galleryFile = await GalleryFile.open(values.gallery, {
        modelId: flow.embedder.id,
        dimension: flow.embedder.dimension,
        key: values['key-file'] ? readFileSync(values['key-file'], 'utf8').replace(/\r?\n$/, '') : key,
        writer: 'faceflow watch --collect-unknowns',
      });
      for (const problem of galleryFile.problems) io.err(`warning: ${problem}`);
      if (galleryFile.gallery.embeddingCount === 0)
        throw new Error(`${values.gallery}: the gallery is empty; enrol people first`);
      gallery = galleryFile.gallery;
    } else {
      gallery = await enrollInMemory(flow, values.enroll as string, io);
    }
    const threshold =
      parseNumber('threshold', values.threshold, -1, 1) ?? gallery.threshold ?? flow.threshold;

    const source = new CameraSource(input, {
      ffmpeg: values.ffmpeg,
      cameraId: values.camera,
      fps,
      width,
      decoderThreads,
      // ffmpeg shrinks each frame for the detector too, off Node's thread.
      detectorInput: flow.detector.inputBox,
      onEvent: cameraReporter(io, input.kind !== 'file'),
    });
    io.err(`watching ${source.label} as '${source.cameraId}'; threshold ${threshold}`);
    if (mjpegPort !== undefined) {
      mjpeg = new MjpegServer({ annotate: { threshold } });
      const port = await mjpeg.listen(mjpegPort, values['mjpeg-host'] ?? '127.0.0.1');
      io.err(`live view: http://${values['mjpeg-host'] ?? '127.0.0.1'}:${port}/stream.mjpg`);
    }
    return await run(flow, gallery, source, {
      io,
      signals,
      threshold,
      detectEvery,
      skipStill: values['no-skip-still'] !== true,
      cooldownMs,
      maxFrames,
      mjpeg,
      quality: values.quality === true,
      snapshot: values.snapshot === true,
      collect: values['collect-unknowns'] === true ? galleryFile : undefined,
    });
  } finally {
    await mjpeg?.close();
    await flow.dispose();
  }
}

interface RunOptions {
  io: CommandIO;
  signals: NodeJS.EventEmitter;
  threshold: number;
  detectEvery: number;
  skipStill: boolean;
  cooldownMs: number;
  maxFrames?: number;
  mjpeg?: MjpegServer;
  quality: boolean;
  snapshot: boolean;
  collect?: GalleryFile;
}

/** Runs the chain until the source ends, a signal, or `maxFrames`; resolves to the exit code. */
function run(flow: FaceFlow, gallery: Matcher, source: CameraSource, o: RunOptions): Promise<number> {
  const recognise = recognizeFrames(flow, gallery, {
    threshold: o.threshold,
    detectEvery: o.detectEvery,
    stillScenes: o.skipStill ? undefined : false,
    accept: o.quality ? (face, frame) => assessQuality(frame, face).passed : undefined,
  });
  const collect = o.collect ? collectUnknowns(o.collect.gallery) : undefined;
  let processed = 0;
  const started = Date.now();
  return new Promise<number>((resolve) => {
    const subscription = new Subscription();
    let saving: Promise<void> = Promise.resolve();
    const saveEvery = setInterval(() => {
      if (o.collect)
        saving = saving
          .then(() => o.collect?.save())
          .catch((err: Error) => o.io.err(`warning: ${err.message}`));
    }, 60_000);
    const finish = (code: number) => {
      clearInterval(saveEvery);
      subscription.unsubscribe();
      for (const signal of ['SIGINT', 'SIGTERM'] as const) o.signals.off(signal, stop);
      const seconds = (Date.now() - started) / 1000;
      o.io.err(
        `${processed} frames in ${seconds.toFixed(1)} s (${(processed / Math.max(seconds, 1e-3)).toFixed(1)} fps)`,
      );
      saving
        .then(() => o.collect?.save())
        .then(
          () => resolve(code),
          (err: Error) => {
            o.io.err(`faceflow watch: could not save the unknown faces: ${err.message}`);
            resolve(1);
          },
        );
    };
    const stop = () => finish(0);
    for (const signal of ['SIGINT', 'SIGTERM'] as const) o.signals.once(signal, stop);

    const named$ = source
      .processLatest((frame) => {
        const item$ = of(frame).pipe(recognise);
        return collect ? item$.pipe(collect) : item$;
      })
      .pipe(share());
    subscription.add(
      named$.subscribe({
        next: (item) => {
          processed++;
          o.mjpeg?.push(item);
          if (o.maxFrames !== undefined && processed >= o.maxFrames) setImmediate(() => finish(0));
        },
        error: (err: Error) => {
          o.io.err(`faceflow watch: ${err.message}`);
          finish(1);
        },
        complete: () => finish(0),
      }),
    );
    subscription.add(
      named$.pipe(faceEvents({ cooldownMs: o.cooldownMs, snapshot: o.snapshot })).subscribe({
        next: (event) => o.io.out(JSON.stringify(event)),
      }),
    );
  });
}

/**
 * Camera events as lines on stderr. A camera that keeps failing is retried for ever, so its
 * connecting, down and reconnecting events are not printed one by one: CameraLog lets through the
 * first failure, each change of reason, reminders after 1 and 10 minutes and then hourly, and the
 * recovery. FACEFLOW_DEBUG prints every event, ffmpeg's own log lines included.
 */
function cameraReporter(io: CommandIO, live: boolean): (event: CameraEvent) => void {
  // A file is not retried: each of its few events is news.
  const everyEvent = Boolean(process.env.FACEFLOW_DEBUG) || !live;
  let health: CameraLog | undefined;
  return (event) => {
    health ??= new CameraLog(event.cameraId);
    const line = health.note(event);
    if (line) io.err(line.text);
    if (event.type === 'log' && !process.env.FACEFLOW_DEBUG) return;
    const quiet =
      event.type === 'down' ||
      event.type === 'reconnecting' ||
      (event.type === 'connecting' && event.attempt > 0);
    if (quiet && !everyEvent) return;
    const details = Object.entries(event).filter(([k]) => !['type', 'cameraId', 'source', 'ts'].includes(k));
    const rest = details.length > 0 ? ` ${JSON.stringify(Object.fromEntries(details))}` : '';
    io.err(`camera ${event.cameraId}: ${event.type}${rest}`);
  };
}
