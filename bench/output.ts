/**
 * Timings of what faceflow does for people watching, on one 1280×720 frame made from a real group
 * photo with its four faces (found by the default pack) labelled: drawing, JPEG encoding, the whole
 * `annotateFrame`, the SVG-overlay alternative it was chosen over, the quality gate per face, and a
 * frame's trip through the MJPEG server to a loopback viewer.
 *
 *   node dist/bench/output.js [--runs N] [--json]
 *
 * Like bench/stages.ts: medians and p90s after warm-up, each also as a ratio to the same plain-JS
 * reference workload (10×1000 128-d dot products) measured in the same run, and the share of the
 * cores other processes used while a row ran. Prints numbers, asserts nothing; needs ../shared/data
 * and exits 0 with a note without it.
 */

import { existsSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { FaceFlow } from '../src/faceflow';
import { decodeImage } from '../src/image/decode';
import { MjpegServer } from '../src/io/mjpegServer';
import { annotateFrame, colourOf, drawAnnotations, escapeXml, labelOf } from '../src/output/annotate';
import { assessQuality } from '../src/quality';
import { UNKNOWN, type Face, type FaceFrame, type Frame } from '../src/types';
import {
  cpuMark,
  machineInfo,
  makeReference,
  othersShare,
  positiveInt,
  quantile,
  referenceSink,
  SHARED_DATA,
} from './common';

const USAGE = 'usage: node dist/bench/output.js [--runs N] [--json]';
const PHOTO = path.join(SHARED_DATA, 'bbt', 'group', 'bbt1.jpg');
const W = 1280;
const H = 720;
const THRESHOLD = 0.52;
/** The budget of docs/ARCHITECTURE.md ("Running live"): annotate + JPEG ≤ 8 ms per 720p frame, only when someone watches. */
const BUDGET_MS = 8;

interface Row {
  name: string;
  p50: number;
  p90: number;
  ratio: number;
  othersBusy?: number;
  note?: string;
}

function parseArgs(argv: string[]): { runs: number; json: boolean } {
  const options = { runs: 60, json: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runs') options.runs = positiveInt('--runs', argv[++i], USAGE);
    else if (argv[i] === '--json') options.json = true;
    else if (argv[i] === '--help' || argv[i] === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument '${argv[i]}'\n${USAGE}`);
  }
  return options;
}

async function sample(fn: () => unknown, runs: number): Promise<{ ms: number[]; othersBusy?: number }> {
  const start = cpuMark();
  for (let i = 0; i < 5 || performance.now() - start.wall < 250; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    await fn();
    ms.push(performance.now() - s);
  }
  return { ms: ms.sort((a, b) => a - b), othersBusy: othersShare(start, cpuMark()) };
}

/** What annotateFrame was chosen over: the same boxes and labels as one SVG, composited by sharp. */
function svgOverlay(item: FaceFrame): Buffer {
  const size = Math.round(H / 45);
  const parts = item.faces.map((f) => {
    const [x1, y1, x2, y2] = f.box.map(Math.round);
    const [r, g, b] = colourOf(f, { threshold: THRESHOLD });
    const text = escapeXml(labelOf(f).text);
    const w = Math.ceil(text.length * size * 0.61) + 6;
    return (
      `<rect x="${x1}" y="${y1}" width="${x2 - x1}" height="${y2 - y1}" fill="none" stroke="rgb(${r},${g},${b})" stroke-width="2"/>` +
      `<rect x="${x1}" y="${y1 - size - 6}" width="${w}" height="${size + 6}" fill="rgb(${r},${g},${b})"/>` +
      `<text x="${x1 + 3}" y="${y1 - 5}" font-family="DejaVu Sans Mono" font-size="${size}">${text}</text>`
    );
  });
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">${parts.join('')}</svg>`,
  );
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(PHOTO)) {
    console.log(`skipped: needs the real photos of ../shared/data (${PHOTO} not found)`);
    return;
  }
  const photo = await decodeImage(PHOTO);
  const rgb = await sharp(photo.rgb, { raw: { width: photo.width, height: photo.height, channels: 3 } })
    .resize(W, H, { fit: 'fill' })
    .raw()
    .toBuffer();
  const frame: Frame = { cameraId: 'living-room', seq: 1, ts: Date.now(), width: W, height: H, rgb };
  const flow = await FaceFlow.open({ threads: 2 });
  const detected = await flow.detect(frame);
  await flow.dispose();
  // One face per colour band, so that every kind of label is drawn.
  const identities: [string, number][] = [
    ['sheldon', 0.71],
    ['leonard', 0.58],
    ['Howard Joel Wolowitz', 0.53],
    [UNKNOWN, 0.31],
  ];
  const faces: Face[] = detected.slice(0, 4).map((f, i) => ({
    ...f,
    trackId: 10 + i,
    identity: { name: identities[i % 4][0], similarity: identities[i % 4][1], margin: 0.1, topK: [] },
  }));
  const item: FaceFrame = { frame, faces };
  const annotateOptions = { threshold: THRESHOLD, fps: 15 };
  const drawn = await drawAnnotations(item, annotateOptions);
  const raw = () => sharp(drawn, { raw: { width: W, height: H, channels: 3 } });

  const ref = await sample(makeReference(), options.runs);
  const refP50 = quantile(ref.ms, 0.5);
  const rows: Row[] = [];
  const add = async (name: string, fn: () => unknown, note?: string, per = 1) => {
    const s = await sample(fn, options.runs);
    const p50 = quantile(s.ms, 0.5) / per;
    rows.push({
      name,
      p50,
      p90: quantile(s.ms, 0.9) / per,
      ratio: p50 / refP50,
      othersBusy: s.othersBusy,
      note,
    });
  };

  await add('copy frame (Buffer.from, 2.7 MB)', () => Buffer.from(rgb));
  await add(
    'draw 4 boxes + labels (incl. copy)',
    () => drawAnnotations(item, annotateOptions),
    'drawAnnotations: a new buffer per call',
  );
  await add(
    'JPEG q80, optimiseCoding off',
    () => raw().jpeg({ quality: 80, optimiseCoding: false }).toBuffer(),
    'what annotateFrame uses',
  );
  await add(
    'JPEG q80, sharp defaults',
    () => raw().jpeg({ quality: 80 }).toBuffer(),
    'Huffman optimisation on: +5 ms, −1% size',
  );
  await add(
    'annotateFrame (draw + JPEG)',
    () => annotateFrame(item, annotateOptions),
    `budget ${BUDGET_MS} ms`,
  );
  await add(
    'SVG overlay composite + JPEG',
    () =>
      sharp(rgb, { raw: { width: W, height: H, channels: 3 } })
        .composite([{ input: svgOverlay(item) }])
        .jpeg({ quality: 80, optimiseCoding: false })
        .toBuffer(),
    'the alternative, same JPEG settings',
  );
  await add(
    'assessQuality, per face',
    () => faces.forEach((f) => assessQuality(frame, f)),
    'the quality gate',
    faces.length,
  );

  // One frame from push to a loopback viewer's last byte: encode + write + read.
  const server = new MjpegServer({ maxFps: 1000, annotate: annotateOptions });
  const port = await server.listen(0);
  let received = 0;
  let onPart: (() => void) | undefined;
  await new Promise<void>((resolve) => {
    http.get({ host: '127.0.0.1', port, path: '/stream.mjpg', agent: false }, (res) => {
      let pending = Buffer.alloc(0);
      res.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        // Count whole parts: a JPEG ends with FFD9 followed by the part's CRLF.
        for (
          let i = pending.indexOf('\xff\xd9\r\n', 0, 'latin1');
          i >= 0;
          i = pending.indexOf('\xff\xd9\r\n', 0, 'latin1')
        ) {
          pending = pending.subarray(i + 4);
          received++;
          onPart?.();
        }
      });
      resolve();
    });
  });
  while (server.clientCount === 0) await new Promise((r) => setTimeout(r, 5));
  let seq = 0;
  await add(
    'MJPEG push → received, 1 viewer',
    async () => {
      const want = received + 1;
      const done = new Promise<void>((resolve) => (onPart = () => received >= want && resolve()));
      server.push({ ...item, frame: { ...frame, seq: ++seq } });
      await done;
    },
    'annotateFrame + HTTP over loopback',
  );
  await server.close();

  const m = machineInfo();
  const machine = {
    cpu: m.cpu,
    cores: m.cores,
    node: m.node,
    sharp: sharp.versions.sharp ?? 'unknown',
    libvips: sharp.versions.vips,
    date: m.date,
    referenceMs: refP50,
    faces: faces.length,
    frame: `${W}×${H}`,
    runs: options.runs,
  };
  if (options.json) {
    console.log(JSON.stringify({ machine, rows }, null, 2));
    return;
  }
  console.log(
    `${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, sharp ${machine.sharp} (libvips ${machine.libvips}), ${machine.date}`,
  );
  console.log(
    `${machine.frame} frame from bbt/group/bbt1.jpg, ${faces.length} faces, ${options.runs} runs; reference ${refP50.toFixed(2)} ms\n`,
  );
  const fmt = (v: number) => (v >= 10 ? v.toFixed(1) : v.toFixed(2));
  console.log('| stage | p50 ms | p90 ms | × ref | others busy | note |');
  console.log('| --- | ---: | ---: | ---: | ---: | --- |');
  for (const r of rows) {
    const busy =
      r.othersBusy === undefined
        ? '?'
        : `${Math.round(r.othersBusy * 100)}%${r.othersBusy > 0.1 ? ' ⚠' : ''}`;
    console.log(
      `| ${r.name} | ${fmt(r.p50)} | ${fmt(r.p90)} | ${r.ratio.toFixed(2)} | ${busy} | ${r.note ?? ''} |`,
    );
  }
  if (referenceSink() === 42) console.log('');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
