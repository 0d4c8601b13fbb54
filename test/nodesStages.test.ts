import assert from 'node:assert/strict';
import * as path from 'node:path';
import sharp from 'sharp';

import { DEFAULT_QUALITY_THRESHOLDS } from '../src/quality';
import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper');
const nodeFile = (name: string) => path.join(PROJECT_ROOT, 'dist', 'nodes', `${name}.js`);
/* eslint-disable @typescript-eslint/no-require-imports */
const NODES = [
  require(nodeFile('faceflow-models')),
  require(nodeFile('faceflow-detect')),
  require(nodeFile('faceflow-gallery')),
  require(nodeFile('faceflow-align')),
  require(nodeFile('faceflow-embed')),
  require(nodeFile('faceflow-track')),
  require(nodeFile('faceflow-quality-gate')),
  require(nodeFile('faceflow-annotate')),
  require('@node-red/nodes/core/common/25-catch.js'),
];
/* eslint-enable @typescript-eslint/no-require-imports */

helper.init(require.resolve('node-red'));

const PHOTO = () => shared('face_recognition_examples', 'knn', 'test', 'obama_and_biden.jpg');

interface StageFace {
  box: number[];
  aligned?: Buffer;
  embedding?: Float32Array;
  quality?: Record<string, number>;
  rejected?: string[];
  trackId?: number;
  score: number;
}

interface Msg {
  payload: unknown;
  faces?: StageFace[];
  frame?: { width: number; height: number };
  topic?: string;
  error?: { message: string };
}

/** Every node on one tab, so the Catch node's scope covers them. */
const onTab = (nodes: Record<string, unknown>[]) => [
  { id: 'f1', type: 'tab' },
  ...[
    ...nodes,
    { id: 'c1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper' },
  ].map((n) => ({ z: 'f1', ...n })),
];

const nextInput = (id: string) => new Promise<Msg>((resolve) => helper.getNode(id).once('input', resolve));

describe('nodes: align, embed, track, quality-gate, annotate (real Node-RED runtime)', function () {
  this.timeout(120_000);
  before(function (done) {
    requireSharedData(this);
    helper.startServer(done);
  });
  after((done) => {
    helper.stopServer(done);
  });
  afterEach(() => helper.unload());

  it('detect → align → embed → quality gate → annotate: crops, unit embeddings, scores and a JPEG', async () => {
    await helper.load(
      NODES,
      onTab([
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        { id: 'detect', type: 'faceflow-detect', models: 'm1', wires: [['align']] },
        { id: 'align', type: 'faceflow-align', models: 'm1', wires: [['embed', 'aligned']] },
        { id: 'aligned', type: 'helper' },
        { id: 'embed', type: 'faceflow-embed', models: 'm1', wires: [['gate']] },
        { id: 'gate', type: 'faceflow-quality-gate', mode: 'mark', wires: [['annotate', 'gated']] },
        { id: 'gated', type: 'helper' },
        { id: 'annotate', type: 'faceflow-annotate', threshold: '0.5', keepFrame: true, wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const alignedMsg = nextInput('aligned');
    const gatedMsg = nextInput('gated');
    const outMsg = nextInput('out');
    helper.getNode('detect').receive({ payload: PHOTO(), topic: 'porch' });

    const flow = await helper.getNode('m1').faceflow();
    const side = flow.embedder.inputSize as number;
    const a = await alignedMsg;
    assert.equal(a.faces?.length, 3);
    for (const f of a.faces ?? []) assert.equal(f.aligned?.length, side * side * 3);

    const g = await gatedMsg;
    assert.equal(g.faces?.length, 3, 'mark mode keeps every face');
    for (const f of g.faces ?? []) {
      assert.ok(f.embedding instanceof Float32Array);
      assert.equal(f.embedding.length, flow.embedder.dimension);
      const norm = Math.hypot(...f.embedding);
      assert.ok(Math.abs(norm - 1) < 1e-3, `embedding norm ${norm}`);
      for (const key of ['size', 'sharpness', 'brightness', 'contrast', 'yaw', 'pitch', 'roll'])
        assert.ok(Number.isFinite(f.quality?.[key]), `quality.${key}`);
    }
    // The two big frontal faces pass the default limits.
    assert.ok((g.faces ?? []).filter((f) => f.rejected === undefined).length >= 2);

    const o = await outMsg;
    const jpeg = o.payload as Buffer;
    assert.ok(Buffer.isBuffer(jpeg));
    assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8]);
    const meta = await sharp(jpeg).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.equal(meta.width, o.frame?.width);
    assert.equal(meta.height, o.frame?.height);
    assert.equal(meta.width, 2000);
  });

  it('aligns to the 112 ArcFace template without a models configuration, and drops in drop mode', async () => {
    await helper.load(
      NODES,
      onTab([
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        { id: 'detect', type: 'faceflow-detect', models: 'm1', wires: [['align']] },
        { id: 'align', type: 'faceflow-align', wires: [['gate']] },
        // A size no face of the photo reaches: every face is dropped, the frame still passes.
        { id: 'gate', type: 'faceflow-quality-gate', mode: 'drop', minSize: '5000', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const outMsg = nextInput('out');
    helper.getNode('detect').receive({ payload: PHOTO() });
    const o = await outMsg;
    assert.deepEqual(o.faces, []);
    assert.equal((o.payload as { width: number }).width, 2000);

    await helper.unload();
    await helper.load(
      NODES,
      onTab([
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        { id: 'detect', type: 'faceflow-detect', models: 'm1', wires: [['align']] },
        { id: 'align', type: 'faceflow-align', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const alignedMsg = nextInput('out');
    helper.getNode('detect').receive({ payload: PHOTO() });
    for (const f of (await alignedMsg).faces ?? []) assert.equal(f.aligned?.length, 112 * 112 * 3);
  });

  it('quality gate answers topic "thresholds" with its own limits where set and the defaults elsewhere', async () => {
    await helper.load(
      NODES,
      onTab([
        {
          id: 'gate',
          type: 'faceflow-quality-gate',
          mode: 'drop',
          minSize: '64',
          maxYaw: '25',
          wires: [['out']],
        },
        { id: 'out', type: 'helper' },
      ]),
    );
    const answer = nextInput('out');
    helper.getNode('gate').receive({ topic: 'thresholds' });
    const { payload } = await answer;
    assert.deepEqual(payload, {
      ...DEFAULT_QUALITY_THRESHOLDS,
      mode: 'drop',
      minSize: 64,
      maxYaw: 25,
    });
  });

  it('gives the faces of 5 frames stable track ids once confirmed, and starts over on redeploy', async () => {
    const flow = onTab([
      { id: 'm1', type: 'faceflow-models', pack: 'default' },
      { id: 'detect', type: 'faceflow-detect', models: 'm1', wires: [['track']] },
      { id: 'track', type: 'faceflow-track', wires: [['out']] },
      { id: 'out', type: 'helper' },
    ]);
    /** The track ids of each frame's faces, left to right, so that each face is compared with itself. */
    const trackFrames = async (n: number) => {
      const ids: (number | undefined)[][] = [];
      let scores: number[] = [];
      for (let i = 0; i < n; i++) {
        const received = nextInput('out');
        helper.getNode('detect').receive({ payload: PHOTO(), topic: 'porch' });
        const faces = [...((await received).faces ?? [])].sort((p, q) => p.box[0] - q.box[0]);
        ids.push(faces.map((f) => f.trackId));
        scores = faces.map((f) => f.score);
      }
      return { ids, scores };
    };

    await helper.load(NODES, flow);
    const { ids, scores } = await trackFrames(5);
    assert.ok(
      ids[0].every((id) => id === undefined),
      'a face is not confirmed on its first frame',
    );
    const last = ids[4];
    assert.equal(last.length, 3);
    // Obama and Biden score about 0.9; the turned bystander (0.64) is below the 0.7 a new track needs.
    const confident = [0, 1, 2].filter((k) => scores[k] >= 0.7);
    assert.equal(confident.length, 2);
    for (const k of confident) assert.equal(typeof last[k], 'number');
    assert.equal(new Set(confident.map((k) => last[k])).size, 2, 'one id per face');
    const firstConfirmed = ids.findIndex((row) => confident.every((k) => row[k] !== undefined));
    assert.equal(firstConfirmed, 2, 'confirmed on the third frame (minHits 3)');
    for (const row of ids.slice(firstConfirmed)) assert.deepEqual(row, last);

    // Node-RED stops a closed node's input, so a redeploy is where the reset shows.
    await helper.unload();
    await helper.load(NODES, flow);
    const again = await trackFrames(3);
    assert.ok(again.ids[0].every((id) => id === undefined));
    assert.deepEqual(
      confident.map((k) => again.ids[2][k]),
      confident.map((k) => last[k]),
      'the same ids, counted again from the start',
    );
  });

  it('reports bad input to Catch nodes with a clear message, and keeps working', async () => {
    await helper.load(
      NODES,
      onTab([
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        { id: 'detect', type: 'faceflow-detect', models: 'm1', wires: [['out']] },
        { id: 'align', type: 'faceflow-align', wires: [['out']] },
        { id: 'embed', type: 'faceflow-embed', models: 'm1', wires: [['out']] },
        { id: 'track', type: 'faceflow-track', wires: [['out']] },
        { id: 'track0', type: 'faceflow-track', minHits: '0', wires: [['out']] },
        { id: 'gate', type: 'faceflow-quality-gate', minSize: 'big', wires: [['out']] },
        { id: 'annotate', type: 'faceflow-annotate', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const caught = () =>
      new Promise<{ error: { message: string; source: { id: string } }; id?: number }>((resolve) =>
        helper.getNode('caught').once('input', resolve),
      );
    const detected = nextInput('out');
    helper.getNode('detect').receive({ payload: PHOTO() });
    const frameMsg = await detected;

    let error = caught();
    helper.getNode('align').receive({ payload: 'no/such/photo.jpg', faces: [], id: 1 });
    let c = await error;
    assert.match(
      c.error.message,
      /expected a frame in msg\.payload .* got the string "no\/such\/photo\.jpg"/,
    );
    assert.equal(c.id, 1);

    error = caught();
    helper.getNode('embed').receive({ payload: frameMsg.payload, id: 2 });
    c = await error;
    assert.match(c.error.message, /msg\.faces is missing/);
    assert.equal(c.error.source.id, 'embed');

    error = caught();
    helper.getNode('track').receive({ payload: { width: 2, height: 2 }, faces: [] });
    assert.match((await error).error.message, /got an object that is not a frame/);

    error = caught();
    helper.getNode('track0').receive({ payload: frameMsg.payload, faces: frameMsg.faces });
    assert.match((await error).error.message, /minHits must be a positive integer/);

    error = caught();
    helper.getNode('gate').receive({ payload: frameMsg.payload, faces: frameMsg.faces });
    assert.match((await error).error.message, /not numbers: minSize/);

    error = caught();
    helper.getNode('annotate').receive({ payload: Buffer.from('jpeg?') });
    assert.match((await error).error.message, /got image bytes/);

    error = caught();
    helper.getNode('detect').receive({ payload: 'no/such/photo.jpg' });
    assert.match((await error).error.message, /no\/such\/photo\.jpg/);

    // Still working after the errors.
    const out = nextInput('out');
    helper.getNode('embed').receive({ payload: frameMsg.payload, faces: frameMsg.faces });
    assert.ok((await out).faces?.every((f) => f.embedding instanceof Float32Array));
  });

  it("colours names by the gallery configuration's threshold, or the node's own", async () => {
    await helper.load(
      NODES,
      onTab([
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        // The override is known without opening the file, which must then never be opened.
        {
          id: 'g1',
          type: 'faceflow-gallery',
          models: 'm1',
          threshold: '0.6',
          path: '/nonexistent/never.fgal',
        },
        { id: 'byGallery', type: 'faceflow-annotate', gallery: 'g1', wires: [['outG']] },
        { id: 'byNumber', type: 'faceflow-annotate', threshold: '0.5', wires: [['outN']] },
        { id: 'outG', type: 'helper' },
        { id: 'outN', type: 'helper' },
      ]),
    );
    // Tall enough for 4 px lines, so that JPEG's chroma subsampling keeps the line's colour.
    const frame = {
      cameraId: '',
      seq: 0,
      ts: 0,
      width: 200,
      height: 1440,
      rgb: Buffer.alloc(200 * 1440 * 3),
    };
    const identity = { name: 'Ann', similarity: 0.65, margin: 1, topK: [] };
    const faces = () => [{ box: [20, 200, 150, 1200], score: 0.9, landmarks: [], identity }];
    const redAtLeftEdge = async (node: string, out: string) => {
      const received = nextInput(out);
      helper.getNode(node).receive({ payload: frame, faces: faces() });
      const jpeg = (await received).payload as Buffer;
      const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height], [200, 1440]);
      return data[(1000 * info.width + 20) * info.channels];
    };
    // 0.05 above 0.6 is yellow (red 250); 0.15 above 0.5 is green (red 40).
    assert.ok((await redAtLeftEdge('byGallery', 'outG')) > 170);
    assert.ok((await redAtLeftEdge('byNumber', 'outN')) < 110);
  });
});
