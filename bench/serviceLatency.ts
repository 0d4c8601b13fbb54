/**
 * What serving recognition over gRPC costs (issue 8): latency of `Recognize` and `Verify` calls
 * from a real @grpc/grpc-js client on loopback, against the same work called directly in the same
 * process (decode + detect + align + embed + gallery match): the difference is the service's own
 * overhead (protobuf, HTTP/2, the image copy).
 *
 *   node dist/bench/serviceLatency.js [--runs 30] [--no-wait]
 *
 * Photos: the face-api sample1 (1920×1280, 3 faces) and a 640×427 copy. One person (from
 * sample3) is enrolled. Sequential calls, after 3 warm-up calls each. Prints figures; asserts nothing.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import sharp from 'sharp';

import { DEMO_PERSON, makeEnrolmentPhoto, samplePhotosDir } from '../src/demo/sampleMedia';
import { FaceFlow } from '../src/faceflow';
import { GalleryFile } from '../src/gallery/galleryFile';
import { loadFaceService, startFaceService } from '../src/grpc';
import { decodeImage } from '../src/image/decode';
import { dist, fmt, machineLine, positiveInt, waitForQuiet } from './common';

const USAGE = 'usage: node dist/bench/serviceLatency.js [--runs N] [--no-wait]';

type Call = (method: string, request: object) => Promise<unknown>;

function client(address: string): { call: Call; close(): void } {
  const Service = loadFaceService();
  const c = new Service(address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 32 * 1024 * 1024,
  });
  const call: Call = (method, request) =>
    new Promise((resolve, reject) => {
      (c as unknown as Record<string, (r: object, cb: (e: Error | null, v: unknown) => void) => void>)[
        method
      ](request, (err, value) => (err ? reject(err) : resolve(value)));
    });
  return { call, close: () => c.close() };
}

async function time(runs: number, work: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 3; i++) await work();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await work();
    ms.push(performance.now() - t);
  }
  return ms;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let runs = 30;
  let wait = true;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--runs') runs = positiveInt('--runs', args[++i], USAGE);
    else if (args[i] === '--no-wait') wait = false;
    else throw new Error(USAGE);
  }
  const quiet = await waitForQuiet(wait, (s) => console.log(`[service] ${s}`));
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-bench-service-'));
  const flow = await FaceFlow.open();
  const file = await GalleryFile.open(path.join(dir, 'g.fgal'), {
    modelId: flow.embedder.id,
    dimension: flow.embedder.dimension,
    backend: 'exact',
  });
  const service = await startFaceService({ flow, gallery: file, port: 0 });
  const { call, close } = client(service.address);
  try {
    const enrolment = path.join(dir, 'sam.jpg');
    await makeEnrolmentPhoto(enrolment);
    await call('Enroll', { name: DEMO_PERSON, image: await fs.readFile(enrolment) });
    const big = await fs.readFile(path.join(samplePhotosDir(), 'sample1.jpg'));
    const small = await sharp(big).resize(640).jpeg({ quality: 90 }).toBuffer();
    const threshold = flow.threshold;
    const direct = async (image: Buffer) => {
      const faces = await flow.analyze(await decodeImage(image));
      return faces.map((f) => file.gallery.match(f.embedding as Float32Array, { threshold, topK: 1 }));
    };
    const rows: [string, number[], number[]][] = [];
    for (const [label, image] of [
      ['1920×1280, 3 faces', big],
      ['640×427, 3 faces', small],
    ] as const) {
      rows.push([
        `Recognize ${label}`,
        await time(runs, () => direct(image)),
        await time(runs, () => call('Recognize', { image })),
      ]);
    }
    rows.push([
      'Verify 640×427 vs enrolment photo',
      await time(runs, async () => {
        const a = await flow.analyze(await decodeImage(small));
        const b = await flow.analyzePortrait(await decodeImage(enrolment));
        return [a, b];
      }),
      await time(runs, async () => call('Verify', { a: small, b: await fs.readFile(enrolment) })),
    ]);
    console.log(
      `\n${machineLine()}; 1-min load at start ${quiet.load1.toFixed(2)}${quiet.quiet ? '' : ' (NOT quiet)'}`,
    );
    console.log(`${runs} sequential calls each after 3 warm-up calls; ms\n`);
    console.log('| call | direct p50 | direct p95 | gRPC p50 | gRPC p95 | gRPC / direct (p50) |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const [label, d, g] of rows) {
      const a = dist(d);
      const b = dist(g);
      console.log(
        `| ${label} | ${fmt(a.p50)} | ${fmt(a.p95)} | ${fmt(b.p50)} | ${fmt(b.p95)} | ${(b.p50 / a.p50).toFixed(2)} |`,
      );
    }
  } finally {
    close();
    await service.close();
    await flow.dispose();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
