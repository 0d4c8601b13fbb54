import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FaceFlow } from '../src/faceflow';
import { decodeImage } from '../src/image/decode';
import { cosine, l2Normalize } from '../src/models/embedder';
import { loadManifests, parseManifest } from '../src/models/manifest';
import { classifySignature, loadModel, loadModelDir } from '../src/models/registry';
import type { Embedder } from '../src/models/roles';
import { ModelLoadError } from '../src/models/session';
import { MODELS, requireSharedData, SHARED_DATA, shared } from './helpers/shared';
import { identityOnnx } from './helpers/tinyOnnx';
import { MemoryGallery } from '../src/gallery/memoryGallery';
import { similarityScaleOf } from '../src/models/similarityScale';
import { UNKNOWN } from '../src/types';

describe('models/registry: signatures', () => {
  it('tells an SCRFD detector and an embedder apart by their tensors alone', () => {
    const scrfd = {
      inputs: [{ name: 'input.1', shape: [1, 3, '?', '?'] }],
      outputs: [1, 1, 1, 4, 4, 4, 10, 10, 10].map((w, i) => ({ name: String(i), shape: ['', w] })),
    };
    const embedder = {
      inputs: [{ name: 'x', shape: ['batch', 3, 112, 112] }],
      outputs: [{ name: 'y', shape: ['batch', 512] }],
    };
    const classifier = {
      inputs: [{ name: 'x', shape: [1, 3, 224, 224] }],
      outputs: [{ name: 'y', shape: [1, 1000, 1, 1] }],
    };
    const noKeypoints = { ...scrfd, outputs: scrfd.outputs.slice(0, 6) };
    assert.equal(classifySignature(scrfd), 'scrfd');
    assert.equal(classifySignature(embedder), 'arcface');
    assert.equal(classifySignature(classifier), undefined);
    assert.equal(classifySignature(noKeypoints), undefined);
  });

  it('ships a valid manifest for each model in shared/data/models', () => {
    const manifests = loadManifests();
    assert.deepEqual(manifests.map((m) => m.id).sort(), [
      'mobilefacenet_128_a',
      'mobilefacenet_128_b',
      'scrfd_2.5g_bnkps',
      'scrfd_500m_bnkps',
    ]);
    for (const m of manifests) assert.match(m.sha256 ?? '', /^[0-9a-f]{64}$/);
  });

  it('rejects malformed manifests with the reason', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-manifest-'));
    try {
      const write = (name: string, body: string) => {
        writeFileSync(path.join(dir, name), body);
        return path.join(dir, name);
      };
      assert.throws(() => parseManifest(write('a.json', '{')), /not a valid JSON manifest/);
      assert.throws(() => parseManifest(write('b.json', '{"id":"x","role":"cook"}')), /"role" must be/);
      assert.throws(
        () =>
          parseManifest(
            write('c.json', '{"id":"x","role":"embedder","normalization":{"channels":"rgb","mean":[1,2]}}'),
          ),
        /"normalization" needs/,
      );
      assert.throws(
        () => parseManifest(write('d.json', '{"id":"x","role":"embedder","defaultThreshold":3}')),
        /cosine/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('normalises vectors and refuses a zero one', () => {
    const v = l2Normalize(Float32Array.from([3, 4]));
    assert.deepEqual([...v], [Math.fround(0.6), Math.fround(0.8)]);
    assert.throws(() => l2Normalize(new Float32Array(4)), /zero length/);
    assert.throws(() => cosine(new Float32Array(2), new Float32Array(3)), /sizes differ/);
  });
});

describe('models/registry: a valid ONNX model that is no face model', () => {
  it('is refused with its signature in the message', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-unknown-'));
    try {
      const file = path.join(dir, 'classifier.onnx');
      writeFileSync(file, identityOnnx([1, 3, 224, 224]));
      await assert.rejects(loadModel(file), (err: Error) => {
        assert.ok(err instanceof ModelLoadError);
        assert.match(
          err.message,
          /classifier\.onnx: unknown model \(inputs x\[1,3,224,224\]; outputs y\[1,3,224,224\]\)/,
        );
        assert.match(err.message, /expected an SCRFD detector/);
        return true;
      });
      await assert.rejects(
        loadModelDir(dir),
        /no face detector .* \(unusable: .*classifier\.onnx: unknown model/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('models/registry: real ONNX files', () => {
  let tmp: string;
  before(function () {
    requireSharedData(this);
    tmp = mkdtempSync(path.join(os.tmpdir(), 'faceflow-models-'));
  });
  after(() => tmp && rmSync(tmp, { recursive: true, force: true }));

  it('recognises each shared model and applies its manifest', async () => {
    for (const [file, role, id] of [
      [MODELS.scrfd500m, 'detector', 'scrfd_500m_bnkps'],
      [MODELS.scrfd2_5g, 'detector', 'scrfd_2.5g_bnkps'],
      [MODELS.mobilefacenetA, 'embedder', 'mobilefacenet_128_a'],
      [MODELS.mobilefacenetB, 'embedder', 'mobilefacenet_128_b'],
    ] as const) {
      const { model, manifest } = await loadModel(file);
      assert.equal(model.role, role);
      assert.equal(model.id, id);
      assert.equal(manifest?.id, id);
      if (model.role === 'embedder') {
        assert.equal(model.dimension, 128);
        assert.equal(model.inputSize, 112);
        assert.equal(model.defaultThreshold, manifest?.defaultThreshold);
      }
      await model.dispose();
    }
  });

  it('picks the preferred detector and embedder from a folder', async () => {
    const pair = await loadModelDir(path.join(SHARED_DATA, 'models'));
    assert.equal(pair.detector.id, 'scrfd_500m_bnkps');
    assert.equal(pair.embedder.id, 'mobilefacenet_128_b');
    await Promise.all([pair.detector.dispose(), pair.embedder.dispose()]);
  });

  it('uses a sidecar manifest next to a user model', async () => {
    const copy = path.join(tmp, 'my-embedder.onnx');
    copyFileSync(MODELS.mobilefacenetA, copy);
    writeFileSync(
      path.join(tmp, 'my-embedder.json'),
      JSON.stringify({ id: 'mine', role: 'embedder', family: 'arcface', defaultThreshold: 0.5 }),
    );
    const { model } = await loadModel(copy);
    assert.equal(model.id, 'mine');
    assert.equal((model as Embedder).defaultThreshold, 0.5);
    await model.dispose();
  });

  it("takes a user model's similarity scale from its sidecar manifest, margin included", async () => {
    const copy = path.join(tmp, 'scaled.onnx');
    copyFileSync(MODELS.mobilefacenetA, copy);
    const manifest = { id: 'mine-scaled', role: 'embedder', family: 'arcface', defaultThreshold: 0.34 };
    writeFileSync(
      path.join(tmp, 'scaled.json'),
      JSON.stringify({ ...manifest, scale: { ambiguityMargin: 0.07, clusterEps: 0.4 } }),
    );
    assert.equal(similarityScaleOf('mine-scaled').ambiguityMargin, 0.03, 'before loading: FaceRes values');
    const { model } = await loadModel(copy);
    const scale = similarityScaleOf('mine-scaled');
    assert.deepEqual([scale.ambiguityMargin, scale.clusterEps, scale.reidSimilarity], [0.07, 0.4, 0.65]);
    // A gallery of the model follows it: a lead of 0.014 over the runner-up is ambiguous at 0.07.
    const g = new MemoryGallery('mine-scaled');
    g.add('ann', Float32Array.from([1, 0]));
    g.add('bob', Float32Array.from([0.8, 0.6]));
    const q = Float32Array.from([Math.cos(0.3), Math.sin(0.3)]);
    const id = g.match(q, { threshold: 0.34 });
    assert.deepEqual([id.name, id.ambiguous], [UNKNOWN, true]);
    await model.dispose();
    writeFileSync(path.join(tmp, 'bad.json'), JSON.stringify({ ...manifest, scale: { clusterEps: 'wide' } }));
    assert.throws(
      () => parseManifest(path.join(tmp, 'bad.json')),
      /bad\.json: scale\.clusterEps must be a number/,
    );
  });

  it('gives a clear error for missing, corrupt and unknown models', async () => {
    await assert.rejects(loadModel(path.join(tmp, 'nope.onnx')), /nope\.onnx: no such model file/);
    const junk = path.join(tmp, 'junk.onnx');
    writeFileSync(junk, 'this is not a protobuf');
    await assert.rejects(
      loadModel(junk),
      (err: Error) => err instanceof ModelLoadError && /cannot load as an ONNX model/.test(err.message),
    );
    await assert.rejects(loadModelDir(path.join(tmp, 'absent')), /no such model folder/);
    const onlyDetector = mkdtempSync(path.join(tmp, 'det-'));
    copyFileSync(MODELS.scrfd500m, path.join(onlyDetector, 'd.onnx'));
    await assert.rejects(loadModelDir(onlyDetector), /no face embedder among its \.onnx files/);
    await assert.rejects(
      FaceFlow.open({ detector: MODELS.mobilefacenetA, embedder: MODELS.mobilefacenetB }),
      /is an embedder, not a detector/,
    );
  });

  it('embeds batches exactly like single crops, and separates people', async () => {
    const flow = await FaceFlow.open({ models: path.join(SHARED_DATA, 'models'), threads: 2 });
    try {
      const files = [
        shared('face_recognition_examples', 'knn', 'train', 'obama', 'obama.jpg'),
        shared('face_recognition_examples', 'knn', 'test', 'obama1.jpg'),
        shared('face_recognition_examples', 'knn', 'train', 'biden', 'biden.jpg'),
      ];
      const faces = [];
      for (const f of files) faces.push(await flow.singleFace(await decodeImage(f), f));
      const crops = faces.map((f) => f.aligned as Buffer);
      const batched = await flow.embedder.embed(crops);
      for (let i = 0; i < crops.length; i++) {
        const [single] = await flow.embedder.embed([crops[i]]);
        assert.ok(cosine(single, batched[i]) > 0.99999, `crop ${i}`);
        let norm = 0;
        for (const x of single) norm += x * x;
        assert.ok(Math.abs(norm - 1) < 1e-5);
      }
      const obamas = cosine(batched[0], batched[1]);
      const different = cosine(batched[0], batched[2]);
      assert.ok(obamas > flow.threshold, `Obama vs Obama ${obamas}`);
      assert.ok(different < flow.threshold, `Obama vs Biden ${different}`);
      await assert.rejects(flow.embedder.embed([Buffer.alloc(10)]), /expected a 112×112 RGB buffer/);
      // Input tensors are reused between runs: runs in flight together, and the same crops again later,
      // give exactly what they gave alone.
      const together = await Promise.all([
        flow.embedder.embed([crops[2], crops[0]]),
        flow.embedder.embed([crops[1], crops[2]]),
        flow.embedder.embed([crops[0]]),
      ]);
      const same = (a: Float32Array, b: Float32Array) =>
        assert.ok(cosine(a, b) > 0.99999, String(cosine(a, b)));
      same(together[0][0], batched[2]);
      same(together[0][1], batched[0]);
      same(together[1][0], batched[1]);
      same(together[1][1], batched[2]);
      same(together[2][0], batched[0]);
      // The same batch size again, on a tensor an earlier run filled: bit for bit.
      const [again] = await flow.embedder.embed([crops[0]]);
      assert.deepEqual([...again], [...together[2][0]]);
    } finally {
      await flow.dispose();
    }
  });

  it('finds the face of a tight crop by retrying inside a border', async () => {
    const flow = await FaceFlow.open({ models: path.join(SHARED_DATA, 'models') });
    try {
      const crop = await decodeImage(shared('bbt', 'faces', 'penny', 'penny1.png'));
      assert.equal((await flow.detect(crop)).length, 0, 'the plain detector misses a tight crop');
      const face = await flow.singleFace(crop, 'penny1');
      assert.ok(face.embedding instanceof Float32Array);
      const [x1, y1, x2, y2] = face.box;
      assert.ok(x2 - x1 > crop.width / 2 && y2 - y1 > crop.height / 2, `box ${face.box} covers the crop`);
      // The same crop blown up to 1500 px: found too, in that image's pixels, and the same person.
      const sharp = (await import('sharp')).default;
      const big = await decodeImage(
        await sharp(shared('bbt', 'faces', 'penny', 'penny1.png'))
          .resize(1500)
          .png()
          .toBuffer(),
      );
      const bigFace = await flow.singleFace(big, 'penny1 at 1500 px');
      const k = big.width / crop.width;
      face.box.forEach((v, i) =>
        assert.ok(Math.abs(bigFace.box[i] - v * k) < 0.05 * big.width, `box ${bigFace.box}`),
      );
      assert.ok(cosine(face.embedding as Float32Array, bigFace.embedding as Float32Array) > 0.8);
    } finally {
      await flow.dispose();
    }
  });
});
