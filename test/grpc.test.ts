import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fs, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import sharp, { type Region } from 'sharp';

import { samplePhotosDir } from '../src/demo/sampleMedia';
import { FaceFlow } from '../src/faceflow';
import { Gallery } from '../src/gallery/gallery';
import { GalleryFile } from '../src/gallery/galleryFile';
import { ExactIndex } from '../src/gallery/exactIndex';
import { startFaceService, type FaceService } from '../src/grpc/server';
import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

/**
 * The FaceRecognition gRPC service end to end: a real @grpc/grpc-js client, generated at run time from the
 * package's proto/faceflow.proto with options of its own (snake_case fields, 64-bit ids as strings) so that only
 * the wire format is shared with the server, against the real default models and a gallery file on disk.
 */

const PROTO = path.join(PROJECT_ROOT, 'proto', 'faceflow.proto');
const TOKEN = 'test-token-1234';
/** Test-only certificates (see their README). */
const TLS_FIXTURES = path.join(PROJECT_ROOT, 'test', 'fixtures', 'tls');

type Reply = Record<string, unknown> & {
  faces?: {
    box: Record<string, number>;
    score: number;
    name: string;
    similarity: number;
    passed: boolean;
    reasons: string[];
    quality: Record<string, number>;
    ambiguous: boolean;
    candidates: { name: string; similarity: number }[];
  }[];
};

interface Client {
  call(method: string, request: object, token?: string | null): Promise<Reply>;
  close(): void;
}

const ClientCtor = (() => {
  const definition = protoLoader.loadSync(PROTO, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    faceflow: { v1: { FaceRecognition: grpc.ServiceClientConstructor } };
  };
  return pkg.faceflow.v1.FaceRecognition;
})();

/** A client of the service on `port`; calls send `token` unless given another (null: none). */
function connect(
  port: number,
  token?: string,
  channel: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): Client {
  // The test certificate names localhost (and 127.0.0.1); TLS must not be asked for an IP address as server name.
  const client = new ClientCtor(`127.0.0.1:${port}`, channel, {
    'grpc.ssl_target_name_override': 'localhost',
  });
  return {
    call: (method, request, override) =>
      new Promise((resolve, reject) => {
        const metadata = new grpc.Metadata();
        const t = override === undefined ? token : override;
        if (t) metadata.set('authorization', `Bearer ${t}`);
        const fn = client[method] as (
          req: object,
          md: grpc.Metadata,
          opts: grpc.CallOptions,
          cb: (err: grpc.ServiceError | null, res: Reply) => void,
        ) => void;
        fn.call(client, request, metadata, { deadline: Date.now() + 60_000 }, (err, res) =>
          err ? reject(err) : resolve(res),
        );
      }),
    close: () => client.close(),
  };
}

/** examples/scripts/grpc-client.ts run against the service on `port` with sample1.jpg, `env` added. */
function runClientScript(
  port: number,
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = path.join(PROJECT_ROOT, 'dist', 'examples', 'scripts', 'grpc-client.js');
  const photo = path.join(samplePhotosDir(), 'sample1.jpg');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [script, `127.0.0.1:${port}`, photo],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
    );
  });
}

/** Asserts that `promise` fails with `code` and a message matching `details`; returns the error. */
async function failsWith(
  promise: Promise<unknown>,
  code: grpc.status,
  details: RegExp,
): Promise<grpc.ServiceError> {
  let error: grpc.ServiceError | undefined;
  try {
    await promise;
  } catch (err) {
    error = err as grpc.ServiceError;
  }
  assert.ok(error, `expected ${grpc.status[code]}, but the call succeeded`);
  assert.equal(grpc.status[error.code], grpc.status[code], `status of: ${error.details}`);
  assert.match(error.details, details);
  return error;
}

/** Whether something can listen on 127.0.0.1:port now. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Photos from the face-api package (see src/demo/sampleMedia.ts): the same woman ("Sam") in the middle of
 * sample3.jpg and on the right of sample1.jpg (similarity about 0.67 with the default pack), another woman on the
 * right of sample2.jpg (about 0.33 to Sam).
 */
async function samplePhotos() {
  const dir = samplePhotosDir();
  const crop = (file: string, region: Region) =>
    sharp(path.join(dir, file)).extract(region).jpeg({ quality: 92 }).toBuffer();
  const sam = await crop('sample3.jpg', { left: 960, top: 120, width: 480, height: 580 });
  return {
    sam,
    samAgain: await crop('sample1.jpg', { left: 1380, top: 150, width: 380, height: 400 }),
    other: await crop('sample2.jpg', { left: 1350, top: 80, width: 400, height: 420 }),
    /** The whole of sample1.jpg: three people, Sam on the right. */
    group: await fs.readFile(path.join(dir, 'sample1.jpg')),
    /** Sam's photo blurred: the face is still found but fails the sharpness limit. */
    blurred: await sharp(sam).blur(5).jpeg().toBuffer(),
    /** Plain grey: a readable image without a face. */
    noFace: await sharp({
      create: { width: 200, height: 200, channels: 3, background: { r: 120, g: 120, b: 120 } },
    })
      .jpeg()
      .toBuffer(),
    /** 302 KB, over twice the 100 KB limit used below. */
    large: await fs.readFile(path.join(dir, 'sample6.jpg')),
  };
}

describe('gRPC service (src/grpc, real models, real client)', function () {
  this.timeout(120_000);
  let flow: FaceFlow;
  let photos: Awaited<ReturnType<typeof samplePhotos>>;
  let dir: string;

  before(async () => {
    flow = await FaceFlow.open();
    photos = await samplePhotos();
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-grpc-'));
  });
  after(async () => {
    await flow?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const openGallery = (file: string) =>
    GalleryFile.open(file, {
      modelId: flow.embedder.id,
      dimension: flow.embedder.dimension,
      backend: 'exact',
    });

  describe('the operations, with a token and a gallery file', () => {
    let service: FaceService;
    let client: Client;
    let file: string;

    before(async () => {
      file = path.join(dir, 'people.fgal');
      service = await startFaceService({ flow, gallery: await openGallery(file), port: 0, token: TOKEN });
      client = connect(service.port, TOKEN);
    });
    after(async () => {
      client?.close();
      await service?.close();
    });

    it('binds 127.0.0.1 by default and reports its models in Status', async () => {
      assert.equal(service.address, `127.0.0.1:${service.port}`);
      const status = await client.call('Status', {});
      assert.equal(status.status, 'SERVING');
      assert.equal(status.embedder, flow.embedder.id);
      assert.equal(status.detector, flow.detector.id);
      assert.equal(status.dimension, flow.embedder.dimension);
      assert.equal(status.has_gallery, true);
      assert.equal(status.people, 0);
      assert.equal(status.max_image_bytes, 5 * 1024 * 1024);
      assert.ok(Math.abs((status.threshold as number) - flow.threshold) < 1e-6);
    });

    it('enrols a person, saves the file, and recognises her in another photo', async () => {
      const before = await client.call('Recognize', { image: photos.group });
      assert.equal(before.faces?.length, 3);
      assert.ok(
        before.faces?.every((f) => f.name === 'Unknown'),
        'nobody is enrolled yet',
      );

      const enrolled = await client.call('Enroll', { name: '  Sam ', image: photos.sam });
      assert.equal(enrolled.name, 'Sam');
      assert.equal(enrolled.embeddings, 1);
      assert.match(String(enrolled.embedding_id), /^[1-9][0-9]*$/);

      // Saved before the answer: a second reader of the file sees her.
      const reopened = await openGallery(file);
      assert.deepEqual(
        reopened.gallery.list().items.map((p) => [p.name, p.embeddings]),
        [['Sam', 1]],
      );

      const after = await client.call('Recognize', { image: photos.group });
      assert.equal(after.width, 1920);
      assert.equal(after.height, 1280);
      const named = after.faces?.filter((f) => f.name === 'Sam') ?? [];
      assert.equal(named.length, 1, JSON.stringify(after.faces));
      // She stands on the right of sample1.jpg.
      assert.ok(named[0].box.x1 > 1400 && named[0].box.x2 < 1700, JSON.stringify(named[0].box));
      assert.ok(named[0].similarity >= (after.threshold as number));
      assert.ok(named[0].score > 0.5);
      const others = after.faces?.filter((f) => f.name !== 'Sam') ?? [];
      assert.ok(others.every((f) => f.name === 'Unknown' && f.similarity < (after.threshold as number)));
    });

    it('verifies the same person and tells two people apart', async () => {
      const same = await client.call('Verify', { a: photos.sam, b: photos.samAgain });
      assert.equal(same.same, true);
      // Clear of the threshold both ways, on the scale of whichever model the default pack holds.
      assert.ok((same.similarity as number) > flow.threshold + 0.01, String(same.similarity));
      assert.ok(Math.abs((same.threshold as number) - flow.threshold) < 1e-6);
      const a = same.a as { box: Record<string, number>; score: number };
      assert.ok(a.box.x2 - a.box.x1 > 150 && a.score > 0.5, JSON.stringify(a));

      const different = await client.call('Verify', { a: photos.sam, b: photos.other });
      assert.equal(different.same, false);
      assert.ok((different.similarity as number) < flow.threshold - 0.03, String(different.similarity));
    });

    it('lists people a page at a time, deletes one, and answers NOT_FOUND the second time', async () => {
      await client.call('Enroll', { name: 'Other', image: photos.other });
      const all = await client.call('ListPeople', {});
      assert.equal(all.total, 2);
      assert.equal(all.limit, 100);
      assert.deepEqual(
        (all.people as { name: string; embeddings: number }[]).map((p) => [p.name, p.embeddings]),
        [
          ['Other', 1],
          ['Sam', 1],
        ],
      );
      const page = await client.call('ListPeople', { offset: 1, limit: 5000 });
      assert.equal(page.limit, 1000);
      assert.deepEqual(
        (page.people as { name: string }[]).map((p) => p.name),
        ['Sam'],
      );

      const deleted = await client.call('DeletePerson', { name: 'Other' });
      assert.deepEqual(deleted, { deleted: 'Other', embeddings: 1 });
      assert.deepEqual(
        (await openGallery(file)).gallery.list().items.map((p) => p.name),
        ['Sam'],
      );
      await failsWith(
        client.call('DeletePerson', { name: 'Other' }),
        grpc.status.NOT_FOUND,
        /no identity named 'Other'/,
      );
      const status = await client.call('Status', {});
      assert.equal(status.people, 1);
    });

    it('says which faces pass the quality check and why the others do not', async () => {
      const good = await client.call('Quality', { image: photos.sam });
      assert.equal(good.faces?.length, 1);
      assert.equal(good.faces?.[0].passed, true, JSON.stringify(good.faces));
      assert.deepEqual(good.faces?.[0].reasons, []);
      assert.ok(good.faces?.[0].quality.sharpness > 30);
      assert.equal((good.thresholds as Record<string, number>).min_sharpness, 30);

      const blurred = await client.call('Quality', { image: photos.blurred });
      assert.equal(blurred.faces?.length, 1);
      assert.equal(blurred.faces?.[0].passed, false);
      assert.deepEqual(blurred.faces?.[0].reasons, ['too-blurry']);
      assert.ok(blurred.faces?.[0].quality.sharpness < 30);

      const none = await client.call('Quality', { image: photos.noFace });
      assert.deepEqual(none.faces, []);
    });

    it('answers INVALID_ARGUMENT for bad bytes, an empty image, no face and a bad name', async () => {
      await failsWith(
        client.call('Recognize', { image: Buffer.from('this is not an image') }),
        grpc.status.INVALID_ARGUMENT,
        /^image: not a readable image \(expected JPEG, PNG or WebP\)$/,
      );
      await failsWith(
        client.call('Recognize', { image: photos.sam.subarray(0, 2000) }),
        grpc.status.INVALID_ARGUMENT,
        /^image: corrupt or truncated image/,
      );
      await failsWith(client.call('Recognize', {}), grpc.status.INVALID_ARGUMENT, /^image is empty/);
      await failsWith(client.call('Quality', {}), grpc.status.INVALID_ARGUMENT, /QualityRequest\.image/);

      const noFaceB = await failsWith(
        client.call('Verify', { a: photos.sam, b: photos.noFace }),
        grpc.status.INVALID_ARGUMENT,
        /^no face found in image b$/,
      );
      assert.deepEqual(noFaceB.metadata.get('faceflow-image'), ['b']);
      const badA = await failsWith(
        client.call('Verify', { a: Buffer.from('garbage'), b: photos.sam }),
        grpc.status.INVALID_ARGUMENT,
        /^image a: not a readable image/,
      );
      assert.deepEqual(badA.metadata.get('faceflow-image'), ['a']);
      await failsWith(
        client.call('Verify', { a: photos.sam }),
        grpc.status.INVALID_ARGUMENT,
        /^image b is empty/,
      );

      const noFace = await failsWith(
        client.call('Enroll', { name: 'Nobody', image: photos.noFace }),
        grpc.status.INVALID_ARGUMENT,
        /^nothing enrolled for 'Nobody': image: no face found$/,
      );
      assert.deepEqual(noFace.metadata.get('faceflow-problem'), ['no-face']);
      const unreadable = await failsWith(
        client.call('Enroll', { name: 'Nobody', image: Buffer.from('garbage') }),
        grpc.status.INVALID_ARGUMENT,
        /^nothing enrolled for 'Nobody': image: not a readable image/,
      );
      assert.deepEqual(unreadable.metadata.get('faceflow-problem'), ['unreadable']);
      await failsWith(
        client.call('Enroll', { name: '   ', image: photos.sam }),
        grpc.status.INVALID_ARGUMENT,
        /^name the person/,
      );
      await failsWith(
        client.call('Enroll', { name: 'Unknown', image: photos.sam }),
        grpc.status.INVALID_ARGUMENT,
        /'Unknown' is reserved/,
      );
      await failsWith(
        client.call('Enroll', { name: 'x'.repeat(201), image: photos.sam }),
        grpc.status.INVALID_ARGUMENT,
        /longer than 200 characters/,
      );
      await failsWith(
        client.call('DeletePerson', { name: '' }),
        grpc.status.INVALID_ARGUMENT,
        /name the person/,
      );
      // Control characters: the admin API's rule, now the gRPC service's too (a NUL once stalled the MQTT publisher).
      for (const name of ['Ann\u0000', 'Ann\nAdmin', 'Ann\u001b[2J']) {
        await failsWith(
          client.call('Enroll', { name, image: photos.sam }),
          grpc.status.INVALID_ARGUMENT,
          /must not contain control characters/,
        );
        await failsWith(
          client.call('DeletePerson', { name }),
          grpc.status.INVALID_ARGUMENT,
          /must not contain control characters/,
        );
      }
      // None of it changed the gallery.
      assert.deepEqual(
        (await openGallery(file)).gallery.list().items.map((p) => p.name),
        ['Sam'],
      );
    });

    it('answers ALREADY_EXISTS for a photo enrolled already', async () => {
      const dup = await failsWith(
        client.call('Enroll', { name: 'Sam', image: photos.sam }),
        grpc.status.ALREADY_EXISTS,
        /^nothing enrolled for 'Sam': image: already enrolled/,
      );
      assert.deepEqual(dup.metadata.get('faceflow-problem'), ['duplicate']);
    });

    it('answers FAILED_PRECONDITION for another photo of Sam under another name, naming her', async () => {
      const lookalike = await failsWith(
        client.call('Enroll', { name: 'Samantha', image: photos.samAgain }),
        grpc.status.FAILED_PRECONDITION,
        /^nothing enrolled for 'Samantha': image: face matches 'Sam' /,
      );
      assert.deepEqual(lookalike.metadata.get('faceflow-problem'), ['looks-like-another']);
    });

    it('enrols a look-alike when asked, and then names neither of the two: ambiguous, with both', async () => {
      // Sam's own photo again, re-encoded (the same file is refused as a duplicate): two equal matches.
      const image = await sharp(photos.sam).jpeg({ quality: 95 }).toBuffer();
      await failsWith(
        client.call('Enroll', { name: 'Samantha', image }),
        grpc.status.FAILED_PRECONDITION,
        /face matches 'Sam'/,
      );
      const twin = await client.call('Enroll', { name: 'Samantha', image, allow_lookalike: true });
      assert.equal(twin.name, 'Samantha');
      const answer = await client.call('Recognize', { image: photos.group });
      const faces = answer.faces ?? [];
      const sam = faces.filter((f) => f.ambiguous);
      assert.equal(sam.length, 1, JSON.stringify(faces));
      assert.equal(sam[0].name, 'Unknown');
      assert.deepEqual(sam[0].candidates.map((c) => c.name).sort(), ['Sam', 'Samantha']);
      assert.ok(faces.every((f) => f.name === 'Unknown'));
      await client.call('DeletePerson', { name: 'Samantha' });
    });

    it('is called by the example client script (examples/scripts/grpc-client.ts)', async () => {
      const run = (env: Record<string, string>) => runClientScript(service.port, env);
      const ok = await run({ FACEFLOW_GRPC_TOKEN: TOKEN });
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /sample1\.jpg: 3 face\(s\): .*Sam \(0\.\d\d\) at 14\d\d,/);
      assert.match(ok.stderr, /SERVING, .*, 1 people enrolled/);
      const refused = await run({ FACEFLOW_GRPC_TOKEN: '' });
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /UNAUTHENTICATED: missing or wrong API token/);
    });

    it('answers UNAUTHENTICATED without the token or with another one, for every call', async () => {
      for (const token of [null, 'wrong-token', `${TOKEN}x`]) {
        await failsWith(
          client.call('Recognize', { image: photos.sam }, token),
          grpc.status.UNAUTHENTICATED,
          /missing or wrong API token/,
        );
        await failsWith(
          client.call('Status', {}, token),
          grpc.status.UNAUTHENTICATED,
          /authorization: Bearer/,
        );
        await failsWith(
          client.call('DeletePerson', { name: 'Sam' }, token),
          grpc.status.UNAUTHENTICATED,
          /missing or wrong API token/,
        );
      }
      // Nothing was deleted by the refused call.
      assert.equal((await client.call('Status', {})).people, 1);
    });
  });

  describe('gallery writes', () => {
    it('runs enrolments and deletions one at a time, each saved before the next changes the gallery', async () => {
      const gallery = new Gallery(
        flow.embedder.id,
        flow.embedder.dimension,
        new ExactIndex(flow.embedder.dimension),
      );
      let saving = false;
      const saves: number[] = [];
      const overlaps: string[] = [];
      const save = async () => {
        if (saving) overlaps.push('two saves at once');
        saving = true;
        const count = gallery.embeddingCount;
        await new Promise((resolve) => setTimeout(resolve, 150));
        if (gallery.embeddingCount !== count)
          overlaps.push(`the gallery changed during a save (${count} → ${gallery.embeddingCount})`);
        saves.push(gallery.embeddingCount);
        saving = false;
      };
      const service = await startFaceService({ flow, gallery: { gallery, save }, port: 0 });
      const client = connect(service.port);
      try {
        await client.call('Enroll', { name: 'Other', image: photos.other });
        // Sent together; the small DeletePerson message usually arrives first, the order between them is the network's.
        const answers = await Promise.all([
          client.call('Enroll', { name: 'Sam', image: photos.sam }),
          // Her second photo under her own name: under another one it would be refused as her look-alike.
          client.call('Enroll', { name: 'Sam', image: photos.samAgain }),
          client.call('DeletePerson', { name: 'Other' }),
        ]);
        assert.deepEqual(overlaps, []);
        assert.equal(saves.length, 4, JSON.stringify(saves));
        assert.deepEqual(answers[2], { deleted: 'Other', embeddings: 1 });
        assert.deepEqual(
          gallery.list().items.map((p) => [p.name, p.embeddings]),
          [['Sam', 2]],
        );
        assert.equal(saves[3], 2, 'the last save holds the final gallery');
      } finally {
        client.close();
        await service.close();
      }
    });
  });

  describe('limits, loading and the port', () => {
    it('answers RESOURCE_EXHAUSTED for an image over the limit, and for a message over the transport limit', async () => {
      const service = await startFaceService({ flow, port: 0, maxImageBytes: 100_000 });
      const client = connect(service.port);
      try {
        assert.ok(photos.group.length > 100_000 && photos.group.length < 200_000);
        await failsWith(
          client.call('Recognize', { image: photos.group }),
          grpc.status.RESOURCE_EXHAUSTED,
          new RegExp(`^image is ${photos.group.length} bytes: images up to 97.7 KB \\(maxImageBytes\\)$`),
        );
        await failsWith(
          client.call('Verify', { a: photos.sam, b: photos.group }),
          grpc.status.RESOURCE_EXHAUSTED,
          /^image b is \d+ bytes: images up to 97\.7 KB/,
        );
        // Over 2 × 100 KB + 64 KB: refused by the transport before the handler sees it.
        assert.ok(photos.large.length > 2 * 100_000 + 64 * 1024);
        await failsWith(
          client.call('Quality', { image: photos.large }),
          grpc.status.RESOURCE_EXHAUSTED,
          /larger than max/i,
        );
        // Under the limit it works (the limit is not simply "everything").
        const ok = await client.call('Quality', { image: photos.sam });
        assert.equal(ok.faces?.length, 1);
        assert.equal((await client.call('Status', {})).max_image_bytes, 100_000);
      } finally {
        client.close();
        await service.close();
      }
    });

    it('answers RESOURCE_EXHAUSTED for an image of more pixels than maxPixels, read from its header', async () => {
      const service = await startFaceService({ flow, port: 0, maxPixels: 10_000 });
      const client = connect(service.port);
      try {
        const { width, height } = await sharp(photos.sam).metadata();
        assert.ok((width ?? 0) * (height ?? 0) > 10_000);
        await failsWith(
          client.call('Recognize', { image: photos.sam }),
          grpc.status.RESOURCE_EXHAUSTED,
          /^image: \d+×\d+ image has \d+ pixels, above the limit of 10000 \(maxPixels\)$/,
        );
        const small = await sharp(photos.sam).resize(90).jpeg().toBuffer();
        assert.equal((await client.call('Quality', { image: small })).width, 90);
      } finally {
        client.close();
        await service.close();
      }
    });

    it('answers UNAVAILABLE while the models load, and serves once they are there', async () => {
      let resolveFlow: (f: FaceFlow) => void = () => undefined;
      const loading = new Promise<FaceFlow>((resolve) => (resolveFlow = resolve));
      const service = await startFaceService({ flow: loading, port: 0 });
      const client = connect(service.port);
      try {
        await failsWith(
          client.call('Recognize', { image: photos.sam }),
          grpc.status.UNAVAILABLE,
          /^the models are still loading; try again shortly$/,
        );
        await failsWith(
          client.call('Verify', { a: photos.sam, b: photos.sam }),
          grpc.status.UNAVAILABLE,
          /loading/,
        );
        const status = await client.call('Status', {});
        assert.equal(status.status, 'LOADING');
        assert.equal(status.embedder, '');
        resolveFlow(flow);
        await loading;
        assert.equal((await client.call('Status', {})).status, 'SERVING');
        const answer = await client.call('Recognize', { image: photos.sam });
        assert.equal(answer.faces?.length, 1);
        // No gallery: faces are found but nobody is named, and gallery calls say why they cannot work.
        assert.equal(answer.faces?.[0].name, 'Unknown');
        assert.equal((await client.call('Status', {})).has_gallery, false);
        await failsWith(
          client.call('Enroll', { name: 'Sam', image: photos.sam }),
          grpc.status.FAILED_PRECONDITION,
          /without a gallery/,
        );
        await failsWith(client.call('ListPeople', {}), grpc.status.FAILED_PRECONDITION, /without a gallery/);
      } finally {
        client.close();
        await service.close();
      }
    });

    it('reports a failed load, and loads again on the next call', async () => {
      let attempts = 0;
      const service = await startFaceService({
        flow: async () => {
          attempts++;
          if (attempts === 1) throw new Error('models not built yet');
          return flow;
        },
        port: 0,
      });
      const client = connect(service.port);
      try {
        const status = await client.call('Status', {});
        assert.equal(status.status, 'FAILED');
        assert.equal(status.error, 'models not built yet');
        assert.equal(attempts, 2, 'Status started a second try');
        // The second try has resolved by now.
        assert.equal((await client.call('Status', {})).status, 'SERVING');
        assert.equal((await client.call('Quality', { image: photos.sam })).faces?.length, 1);
      } finally {
        client.close();
        await service.close();
      }
    });

    it('refuses the failed load with UNAVAILABLE and its reason', async () => {
      const service = await startFaceService({
        flow: Promise.reject(new Error('no such model pack')),
        port: 0,
      });
      const client = connect(service.port);
      try {
        await failsWith(
          client.call('Recognize', { image: photos.sam }),
          grpc.status.UNAVAILABLE,
          /^the models could not be loaded: no such model pack$/,
        );
      } finally {
        client.close();
        await service.close();
      }
    });

    it('close() frees the port: the same port can be bound again at once', async () => {
      const port = await freePort();
      const first = await startFaceService({ flow, port });
      assert.equal(first.port, port);
      const client = connect(port);
      assert.equal((await client.call('Status', {})).status, 'SERVING');
      assert.equal(await portIsFree(port), false, 'the service holds the port');
      // A second service on the same port cannot start while the first runs.
      await assert.rejects(
        startFaceService({ flow, port }),
        /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/,
      );

      await first.close();
      assert.equal(await portIsFree(port), true, 'the port is free after close()');
      await failsWith(client.call('Status', {}), grpc.status.UNAVAILABLE, /./);
      client.close();

      const second = await startFaceService({ flow, port });
      const again = connect(port);
      try {
        assert.equal((await again.call('Status', {})).status, 'SERVING');
      } finally {
        again.close();
        await second.close();
      }
    });

    it('close() waits for a call in progress, then frees the port', async () => {
      const service = await startFaceService({ flow, port: 0 });
      const client = connect(service.port);
      try {
        const answer = client.call('Recognize', { image: photos.group });
        await new Promise((resolve) => setTimeout(resolve, 20));
        await service.close();
        assert.equal((await answer).faces?.length, 3);
        assert.equal(await portIsFree(service.port), true);
      } finally {
        client.close();
      }
    });
  });

  describe('with the real photos of ../shared/data', () => {
    let service: FaceService;
    let client: Client;
    const train = (...parts: string[]) => shared('face_recognition_examples', 'knn', 'train', ...parts);

    before(async function () {
      requireSharedData(this);
      service = await startFaceService({
        flow,
        gallery: await openGallery(path.join(dir, 'shared.fgal')),
        port: 0,
      });
      client = connect(service.port);
    });
    after(async () => {
      client?.close();
      await service?.close();
    });

    it('enrols Obama and Biden and names both in a photo of the two', async () => {
      for (const [name, file] of [
        ['obama', train('obama', 'obama.jpg')],
        ['biden', train('biden', 'biden.jpg')],
      ]) {
        const answer = await client.call('Enroll', { name, image: await fs.readFile(file) });
        assert.equal(answer.name, name);
      }
      const both = await client.call('Recognize', {
        image: await fs.readFile(shared('face_recognition_examples', 'knn', 'test', 'obama_and_biden.jpg')),
      });
      const names = (both.faces ?? []).map((f) => f.name).filter((n) => n !== 'Unknown');
      assert.deepEqual(names.sort(), ['biden', 'obama'], JSON.stringify(both.faces));
    });

    it('verifies two photos of Obama as the same person, and Obama and Biden as two', async () => {
      const obama = await fs.readFile(train('obama', 'obama.jpg'));
      const same = await client.call('Verify', {
        a: obama,
        b: await fs.readFile(train('obama', 'obama2.jpg')),
      });
      assert.equal(same.same, true, String(same.similarity));
      // biden.jpg, not biden2.jpg: FaceRes (0.1's default) put obama.jpg and biden2.jpg at 0.53, just over its 0.52.
      const different = await client.call('Verify', {
        a: obama,
        b: await fs.readFile(train('biden', 'biden.jpg')),
      });
      assert.equal(different.same, false, String(different.similarity));
      assert.ok((same.similarity as number) > (different.similarity as number) + 0.1);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The faceflow-grpc config node in a real Node-RED runtime.

// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper');
const nodeFile = (name: string) => path.join(PROJECT_ROOT, 'dist', 'nodes', `${name}.js`);

describe('node: faceflow-grpc (real Node-RED runtime, real client)', function () {
  this.timeout(120_000);
  let dir: string;
  let photos: Awaited<ReturnType<typeof samplePhotos>>;
  /* eslint-disable @typescript-eslint/no-require-imports */
  const NODES = () => [
    require(nodeFile('faceflow-models')),
    require(nodeFile('faceflow-gallery')),
    require(nodeFile('faceflow-grpc')),
    require(path.join(PROJECT_ROOT, 'node_modules', '@node-red', 'nodes', 'core', 'network', '05-tls.js')),
  ];
  /* eslint-enable @typescript-eslint/no-require-imports */

  before(function (done) {
    helper.init(require.resolve('node-red'));
    samplePhotos().then((p) => {
      photos = p;
      helper.startServer(done);
    }, done);
  });
  after((done) => {
    helper.stopServer(done);
  });
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-grpc-node-'));
  });
  afterEach(async () => {
    await helper.unload();
    rmSync(dir, { recursive: true, force: true });
  });

  /** No flow node uses the gRPC node: Node-RED starts deployed config nodes anyway. */
  const flowFor = (port: number, extra: Record<string, unknown> = {}) => [
    { id: 'f1', type: 'tab' },
    { id: 'm1', type: 'faceflow-models', pack: 'default' },
    {
      id: 'g1',
      type: 'faceflow-gallery',
      models: 'm1',
      path: path.join(dir, 'people.fgal'),
      backend: 'exact',
    },
    {
      id: 'rpc',
      type: 'faceflow-grpc',
      host: '127.0.0.1',
      port: String(port),
      models: 'm1',
      gallery: 'g1',
      ...extra,
    },
  ];

  /** Status until the models and gallery are open (a deploy answers UNAVAILABLE until then, or before the bind). */
  async function whenServing(client: Client): Promise<Reply> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const status = await client.call('Status', {});
        if (status.status === 'SERVING') return status;
        if (status.status === 'FAILED') throw new Error(`service failed: ${status.error}`);
      } catch (err) {
        if ((err as grpc.ServiceError).code !== grpc.status.UNAVAILABLE || Date.now() > deadline) throw err;
      }
      if (Date.now() > deadline) throw new Error('service never reached SERVING');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('starts on deploy, serves a client, and serves again on the same port after a redeploy', async () => {
    const port = await freePort();
    const credentials = { rpc: { token: TOKEN } };
    await helper.load(NODES(), flowFor(port), credentials);
    let client = connect(port, TOKEN);
    try {
      const status = await whenServing(client);
      assert.equal(status.has_gallery, true);
      assert.equal(status.people, 0);
      await failsWith(
        client.call('Status', {}, null),
        grpc.status.UNAUTHENTICATED,
        /missing or wrong API token/,
      );

      const enrolled = await client.call('Enroll', { name: 'Sam', image: photos.sam });
      assert.equal(enrolled.name, 'Sam');
      const first = await client.call('Recognize', { image: photos.group });
      assert.deepEqual(first.faces?.filter((f) => f.name === 'Sam').length, 1, JSON.stringify(first.faces));

      // A full redeploy closes this service and starts a new one on the same port, with the gallery read back.
      // The token changes with it, so only the new service can answer the new one.
      const TOKEN2 = 'second-token-5678';
      await helper.setFlows(flowFor(port, { name: 'redeployed' }), 'full', { rpc: { token: TOKEN2 } });
      client.close();
      client = connect(port, TOKEN2);
      const again = await whenServing(client);
      await failsWith(
        client.call('Status', {}, TOKEN),
        grpc.status.UNAUTHENTICATED,
        /missing or wrong API token/,
      );
      assert.equal(again.people, 1, 'the enrolled person was saved and read back');
      const second = await client.call('Recognize', { image: photos.group });
      assert.deepEqual(second.faces?.filter((f) => f.name === 'Sam').length, 1, JSON.stringify(second.faces));
      const listed = await client.call('ListPeople', {});
      assert.deepEqual(
        (listed.people as { name: string }[]).map((p) => p.name),
        ['Sam'],
      );
    } finally {
      client.close();
    }
    const log = helper.log();
    const errors = log.args.filter((a: [{ level: number }]) => a[0].level === log.ERROR);
    assert.deepEqual(errors, [], 'no node error (a port still held would be one)');
    await helper.unload();
    assert.equal(await portIsFree(port), true, 'stopping the flows freed the port');
  });

  /** After a moment: nothing listens on `port`; what the gRPC node logged. */
  async function notStarted(port: number): Promise<string[]> {
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(await portIsFree(port), true, 'nothing listens');
    return helper
      .log()
      .args.filter((a: { level: number; id?: string }[]) => a[0]?.id === 'rpc')
      .map((a: { msg: unknown }[]) => String(a[0].msg));
  }

  it('does not start without a models configuration, and says why in the log', async () => {
    const port = await freePort();
    const flow = flowFor(port, { models: 'missing' });
    await helper.load(NODES(), flow);
    const rpc = helper.getNode('rpc');
    assert.ok(rpc, 'the config node was created');
    const logged = await notStarted(port);
    assert.ok(
      logged.some((m: string) => /gRPC service not started: choose a faceflow-models configuration/.test(m)),
      JSON.stringify(logged),
    );
  });

  /** Node-RED's own TLS configuration node, with the test certificates of test/fixtures/tls by path. */
  const tlsNode = (files: { cert: string; key: string; ca?: string }) => ({
    id: 'tls1',
    type: 'tls-config',
    cert: path.join(TLS_FIXTURES, files.cert),
    key: path.join(TLS_FIXTURES, files.key),
    ca: files.ca ? path.join(TLS_FIXTURES, files.ca) : '',
    certname: '',
    keyname: '',
    caname: '',
    servername: '',
    verifyservercert: true,
    alpnprotocol: '',
  });

  /** A client the TLS handshake turns away: its call fails with UNAVAILABLE. */
  async function refusedAtConnection(client: Client, why: string): Promise<void> {
    const refused = await client.call('Status', {}).then(
      () => undefined,
      (err: grpc.ServiceError) => err,
    );
    assert.ok(refused, why);
    assert.equal(grpc.status[refused.code], 'UNAVAILABLE', refused.details);
  }

  it('serves over TLS with the certificate of a tls-config node (encrypted key), and refuses plaintext clients', async () => {
    const port = await freePort();
    const flow = [
      ...flowFor(port, { tls: 'tls1' }),
      tlsNode({ cert: 'server.crt', key: 'server-encrypted.key' }),
    ];
    await helper.load(NODES(), flow, { rpc: { token: TOKEN }, tls1: { passphrase: 'test-passphrase' } });
    const ca = await fs.readFile(path.join(TLS_FIXTURES, 'ca.crt'));
    const client = connect(port, TOKEN, grpc.credentials.createSsl(ca));
    const plain = connect(port, TOKEN);
    try {
      const status = await whenServing(client);
      assert.equal(status.has_gallery, true);
      const recognised = await client.call('Recognize', { image: photos.group });
      assert.ok((recognised.faces as unknown[]).length >= 2, 'faces found over TLS');
      await refusedAtConnection(plain, 'a plaintext client gets no answer from a TLS server');
    } finally {
      client.close();
      plain.close();
    }
    // The example client script, told the CA.
    const overTls = await runClientScript(port, {
      FACEFLOW_GRPC_TOKEN: TOKEN,
      FACEFLOW_GRPC_CA: path.join(TLS_FIXTURES, 'ca.crt'),
    });
    assert.equal(overTls.code, 0, overTls.stderr);
    assert.match(overTls.stdout, /sample1\.jpg: 3 face\(s\)/);
    const logged = helper.log().args.map((a: { msg: unknown }[]) => String(a[0]?.msg));
    assert.ok(
      logged.some((m: string) => /gRPC FaceRecognition service on 127\.0\.0\.1:\d+ \(TLS\)/.test(m)),
      JSON.stringify(logged),
    );
  });

  it('with a CA in the tls-config node, serves only clients whose certificate it signed', async () => {
    const port = await freePort();
    const flow = [
      ...flowFor(port, { tls: 'tls1' }),
      tlsNode({ cert: 'server.crt', key: 'server.key', ca: 'ca.crt' }),
    ];
    await helper.load(NODES(), flow);
    const read = (f: string) => fs.readFile(path.join(TLS_FIXTURES, f));
    const ca = await read('ca.crt');
    const withCert = connect(
      port,
      undefined,
      grpc.credentials.createSsl(ca, await read('client.key'), await read('client.crt')),
    );
    const withoutCert = connect(port, undefined, grpc.credentials.createSsl(ca));
    try {
      await whenServing(withCert);
      await refusedAtConnection(withoutCert, 'a client without a certificate is refused');
    } finally {
      withCert.close();
      withoutCert.close();
    }
  });

  for (const [what, files, credentials, reason] of [
    [
      'a key of another certificate',
      { cert: 'server.crt', key: 'client.key' },
      {},
      /the private key does not belong to the server certificate/,
    ],
    [
      'an encrypted key without its passphrase',
      { cert: 'server.crt', key: 'server-encrypted.key' },
      {},
      /the private key is encrypted: give its passphrase/,
    ],
    [
      'a wrong passphrase',
      { cert: 'server.crt', key: 'server-encrypted.key' },
      { passphrase: 'nope' },
      /cannot be decrypted with this passphrase/,
    ],
    [
      'a key file as the certificate',
      { cert: 'server.key', key: 'server.key' },
      {},
      /the server certificate is not a PEM certificate/,
    ],
    [
      'a certificate file that is not there',
      { cert: 'missing.crt', key: 'server.key' },
      {},
      /TLS: its configuration is not usable/,
    ],
  ] as const) {
    it(`does not start with ${what}, says why in the log, and leaves the port free`, async () => {
      const port = await freePort();
      const flow = [...flowFor(port, { tls: 'tls1' }), tlsNode(files)];
      await helper.load(NODES(), flow, { tls1: credentials });
      const logged = await notStarted(port);
      assert.ok(
        logged.some((m: string) => /^gRPC service not started: TLS: /.test(m) && reason.test(m)),
        JSON.stringify(logged),
      );
      assert.ok(!logged.some((m: string) => m.includes('PRIVATE KEY')), 'no key material in the log');
    });
  }

  it('is in the package: the .proto, the editor file and the help are where Node-RED and clients look', () => {
    for (const file of [
      path.join(PROJECT_ROOT, 'proto', 'faceflow.proto'),
      path.join(PROJECT_ROOT, 'dist', 'nodes', 'faceflow-grpc.html'),
      path.join(PROJECT_ROOT, 'dist', 'nodes', 'locales', 'en-US', 'faceflow-grpc.html'),
    ]) {
      assert.ok(existsSync(file), `${file} is missing`);
    }
  });
});
