/**
 * Releasing models while work is under way, as a Node-RED redeploy does with frames in flight: the work
 * asked before finishes as if nothing happened, the work asked after is refused with a clear error.
 * Real default-pack models on a sample photo that ships in an npm package (no ../shared needed).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';

import { samplePhotosDir } from '../src/demo/sampleMedia';
import { FaceFlow } from '../src/faceflow';
import { decodeImage } from '../src/image/decode';
import { ModelReleasedError, openSession } from '../src/models/session';
import type { Frame } from '../src/types';
import { identityOnnx } from './helpers/tinyOnnx';

describe('models: released while work is under way', function () {
  this.timeout(60_000);
  let frame: Frame;
  let expected: number;

  before(async () => {
    frame = await decodeImage(path.join(samplePhotosDir(), 'sample1.jpg'));
    const flow = await FaceFlow.open();
    expected = (await flow.analyze(frame)).length;
    await flow.dispose();
    assert.ok(expected >= 2, `sample1.jpg shows several people, found ${expected}`);
  });

  it('finishes every analysis asked before dispose(), with its faces embedded, then refuses new ones', async () => {
    const flow = await FaceFlow.open();
    const asked = Array.from({ length: 4 }, () => flow.analyze(frame));
    const portrait = flow.embedFaces(frame, await flow.detect(frame));
    const disposed = flow.dispose();
    const results = await Promise.all([...asked, portrait]);
    for (const faces of results) {
      assert.equal(faces.length, expected);
      assert.ok(faces.every((f) => f.embedding && f.embedding.length === flow.embedder.dimension));
    }
    await disposed;
    await assert.rejects(flow.analyze(frame), (err: Error) => {
      assert.ok(err instanceof ModelReleasedError, String(err));
      assert.match(
        err.message,
        /human-blazeface \+ faceapi-recognition: released.*stopped or was redeployed/,
      );
      return true;
    });
    await assert.rejects(flow.singleFace(frame, 'x.jpg'), ModelReleasedError);
    assert.equal(flow.dispose(), disposed, 'disposing twice is the same release');
  });

  it('refuses a model used directly after release with the model named, not a bare ONNX Runtime error', async () => {
    const flow = await FaceFlow.open();
    await flow.dispose();
    await assert.rejects(flow.detector.detect(frame), (err: Error) => {
      assert.ok(err instanceof ModelReleasedError, String(err));
      assert.match(err.message, /^the model .*human-blazeface\.onnx: released/);
      return true;
    });
    await assert.rejects(
      flow.embedder.embed([Buffer.alloc(flow.embedder.inputSize ** 2 * 3)]),
      /faceapi-recognition\.onnx: released/,
    );
  });

  it('lets a run already inside ONNX Runtime finish before the session is freed', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'faceflow-release-'));
    try {
      const file = path.join(dir, 'identity.onnx');
      writeFileSync(file, identityOnnx([1, 3, 512, 512]));
      const session = await openSession(file);
      const input = new Float32Array(3 * 512 * 512).map((_, i) => i % 251);
      const runs = Array.from({ length: 3 }, () =>
        session.run({ x: new ort.Tensor('float32', input, [1, 3, 512, 512]) }),
      );
      const released = session.release();
      assert.ok(session.released);
      for (const out of await Promise.all(runs)) assert.deepEqual(out.y.data, input);
      await released;
      await assert.rejects(
        session.run({ x: new ort.Tensor('float32', input, [1, 3, 512, 512]) }),
        /identity\.onnx: released/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
