import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  HEALTH_PATH,
  METRICS_PATH,
  METRICS_PERMISSION,
  registerMetricsAdmin,
} from '../nodes/lib/metricsAdmin';
import type { HealthReport } from '../src/metrics';
import { waitForNoLeftovers } from './helpers/processes';
import { hasLabelValue, parsePrometheusText, sampleValue } from './helpers/promText';
import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';
import { realAuthApp, type RealAuthApp } from './helpers/realAdminAuth';

/* eslint-disable @typescript-eslint/no-require-imports */
const helper = require('node-red-node-test-helper');
const nodeFile = (name: string) => path.join(PROJECT_ROOT, 'dist', 'nodes', `${name}.js`);
const rtspInModule = require(nodeFile('faceflow-rtsp-in'));
const NODES = [
  require(nodeFile('faceflow-models')),
  require(nodeFile('faceflow-gallery')),
  rtspInModule,
  require(nodeFile('faceflow-detect')),
  require(nodeFile('faceflow-match')),
];
/* eslint-enable @typescript-eslint/no-require-imports */

helper.init(require.resolve('node-red'));

const HAMILTON = shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4');
const knn = (...parts: string[]) => shared('face_recognition_examples', 'knn', ...parts);
const PASSWORD = 'n0t-for-your-eyes';
const CAMERA = 'metrics-cam';
/** Prometheus's text format, version 0.0.4 (Express may put the charset before the version: both are fine). */
const PROMETHEUS_TEXT = /^text\/plain;(.*;)? ?version=0\.0\.4(;|$)/;

const flowFor = (file: string) => [
  { id: 'f1', type: 'tab' },
  { id: 'm1', z: 'f1', type: 'faceflow-models', name: 'metrics models', pack: 'default' },
  {
    id: 'g1',
    z: 'f1',
    type: 'faceflow-gallery',
    name: 'metrics gallery',
    models: 'm1',
    path: file,
    backend: 'exact',
  },
  {
    id: 'cam',
    z: 'f1',
    type: 'faceflow-rtsp-in',
    source: 'file',
    file: HAMILTON,
    loop: true,
    realtime: true,
    cameraId: CAMERA,
    fps: '5',
    width: '640',
    wires: [['detect'], []],
  },
  // A camera that cannot be reached, with a password: it must show as down, and its password nowhere.
  {
    id: 'locked',
    z: 'f1',
    type: 'faceflow-rtsp-in',
    source: 'rtsp',
    url: 'rtsp://127.0.0.1:9/locked',
    wires: [[], []],
  },
  { id: 'detect', z: 'f1', type: 'faceflow-detect', models: 'm1', wires: [['match']] },
  { id: 'match', z: 'f1', type: 'faceflow-match', gallery: 'g1', wires: [['out']] },
  { id: 'out', z: 'f1', type: 'helper' },
];

interface Msg {
  topic?: string;
  error?: { message: string };
}

async function scrape(): Promise<string> {
  const res = await helper.request().get(METRICS_PATH).expect(200);
  assert.match(res.headers['content-type'], PROMETHEUS_TEXT);
  return res.text as string;
}

async function health(): Promise<{ text: string; report: HealthReport }> {
  const res = await helper.request().get(HEALTH_PATH).expect(200).expect('Content-Type', /json/);
  return { text: res.text as string, report: res.body as HealthReport };
}

/**
 * Polls until `check` gives a value. The bound is generous (the machine may be busy) and only there so that
 * a failure ends the loop and says what never came; nothing here measures speed.
 */
async function until<T>(what: string, check: () => Promise<T | undefined>, limitMs = 150_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const got = await check();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('node: faceflow metrics and health endpoints (real Node-RED runtime, ffmpeg and models)', function () {
  this.timeout(180_000);
  let dir: string;

  before(function (done) {
    requireSharedData(this);
    helper.startServer(done);
  });
  after((done) => {
    helper.stopServer(done);
  });
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-metrics-'));
  });
  afterEach(async () => {
    await helper.unload();
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(await waitForNoLeftovers(), [], 'no ffmpeg left behind');
  });

  it('counts a camera → detect → match flow, reports its health without secrets, and forgets it on unload', async () => {
    await helper.load(NODES, flowFor(path.join(dir, 'people.fgal')), {
      locked: { user: 'viewer', password: PASSWORD },
    });
    const out = helper.getNode('out');
    const match = helper.getNode('match');

    // A person in the gallery, so that the gallery size and the recognized count have something to show.
    const enrolled = new Promise<Msg>((resolve) => {
      const onInput = (msg: Msg) => {
        if (msg.topic !== 'enroll') return;
        out.removeListener('input', onInput);
        resolve(msg);
      };
      out.on('input', onInput);
    });
    match.receive({ topic: 'enroll', payload: { name: 'obama', image: knn('train', 'obama', 'obama.jpg') } });
    assert.equal((await enrolled).error, undefined);

    const camera = { camera: CAMERA };
    const text = await until('frames detected and matched', async () => {
      const t = await scrape();
      const detected = sampleValue(t, 'faceflow_detect_duration_seconds_count', camera) ?? 0;
      const frames = sampleValue(t, 'faceflow_frames_in_total', camera) ?? 0;
      return detected > 0 && frames > 0 ? t : undefined;
    });
    const families = parsePrometheusText(text);
    assert.equal(sampleValue(families, 'faceflow_camera_up', camera), 1);
    assert.equal(sampleValue(families, 'faceflow_gallery_identities', { gallery: 'metrics gallery' }), 1);
    assert.equal(sampleValue(families, 'faceflow_gallery_embeddings', { gallery: 'metrics gallery' }), 1);
    assert.equal(sampleValue(families, 'faceflow_models_loaded', { models: 'metrics models' }), 1);
    assert.ok((sampleValue(families, 'faceflow_faces_per_frame_count', camera) ?? 0) > 0);
    assert.ok(!text.includes(PASSWORD));

    // A photo sent straight to detect has no registered camera: it counts under "other", one face
    // recognized and two unknown, and the names stay out of the metrics.
    const other = { camera: 'other' };
    const recognized = (t: string, result: string) =>
      sampleValue(t, 'faceflow_recognitions_total', { ...other, result }) ?? 0;
    const before = await scrape();
    const answered = new Promise<Msg>((resolve) => {
      const onInput = (msg: Msg) => {
        if (msg.topic !== 'porch') return;
        out.removeListener('input', onInput);
        resolve(msg);
      };
      out.on('input', onInput);
    });
    helper.getNode('detect').receive({ payload: knn('test', 'obama_and_biden.jpg'), topic: 'porch' });
    await answered;
    const after = await scrape();
    assert.equal(recognized(after, 'recognized') - recognized(before, 'recognized'), 1);
    assert.equal(recognized(after, 'unknown') - recognized(before, 'unknown'), 2);
    assert.ok(!/obama|biden/i.test(after));
    assert.ok(!hasLabelValue(after, 'camera', 'porch'));

    const { text: json, report } = await until('the camera’s fps in the health report', async () => {
      const h = await health();
      const cam = h.report.cameras.find((c) => c.camera === CAMERA);
      return cam && cam.fps > 0 ? h : undefined;
    });
    const cam = report.cameras.find((c) => c.camera === CAMERA)!;
    assert.equal(cam.up, true);
    assert.equal(cam.state, 'up');
    assert.equal(cam.source, HAMILTON);
    assert.ok(cam.frames > 0);
    assert.ok(typeof cam.lastFrameAgeMs === 'number' && cam.lastFrameAgeMs >= 0);
    const locked = report.cameras.find((c) => c.source.includes('127.0.0.1:9'));
    assert.ok(locked, JSON.stringify(report.cameras));
    assert.equal(locked.source, 'rtsp://viewer:***@127.0.0.1:9/locked');
    assert.equal(locked.up, false);
    assert.equal(report.status, 'degraded');
    assert.ok(!json.includes(PASSWORD), 'no password in the health report');
    const models = report.models.find((m) => m.id === 'm1');
    assert.equal(models?.state, 'loaded');
    assert.equal(models?.name, 'metrics models');
    assert.ok(models?.detector && models.embedder);
    assert.deepEqual(
      report.galleries.find((g) => g.id === 'g1'),
      { id: 'g1', name: 'metrics gallery', open: true, people: 1, embeddings: 1 },
    );
    // The gallery file's place and key are the gallery endpoints' business, not the health report's.
    assert.ok(!json.includes(dir));

    await helper.unload();
    const gone = await scrape();
    for (const [label, value] of [
      ['camera', CAMERA],
      ['camera', locked.camera],
      ['gallery', 'metrics gallery'],
      ['models', 'metrics models'],
    ]) {
      assert.ok(!hasLabelValue(gone, label, value), `${label}="${value}" left after unload`);
    }
    const { report: empty } = await health();
    assert.ok(!empty.cameras.some((c) => c.camera === CAMERA || c.camera === locked.camera));
    assert.ok(!empty.galleries.some((g) => g.id === 'g1'));
    assert.ok(!empty.models.some((m) => m.id === 'm1'));
  });
});

/**
 * As in nodesGalleryAdmin.test.ts: the test helper's `RED.auth.needsPermission` lets everything through, so
 * the endpoints are registered once more on a bare Express app whose `RED.auth` is Node-RED's real one
 * (editor-api's auth with adminAuth and API tokens).
 */
describe('node: faceflow metrics endpoints need Node-RED admin permissions', () => {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const request = require('supertest');
  /* eslint-enable @typescript-eslint/no-require-imports */
  let real: RealAuthApp;
  let app: unknown;
  let asked: string[];

  before(async () => {
    real = await realAuthApp([
      { username: 'viewer', permissions: 'read' },
      { username: 'scraper', permissions: METRICS_PERMISSION },
      { username: 'curator', permissions: 'faceflow-gallery.read' },
    ]);
    app = real.app;
    asked = real.asked;
    const RED = real.RED;
    // A node module registers the endpoints; a second module, or the same one loaded again, adds nothing.
    rtspInModule(RED);
    rtspInModule(RED);
    registerMetricsAdmin(RED as never);
  });
  after(() => real.close());

  it('asks for faceflow-metrics.read, once', () => {
    assert.deepEqual(asked, ['faceflow-metrics.read']);
  });

  it('refuses both endpoints without a token, or with a token for something else', async () => {
    for (const url of [METRICS_PATH, HEALTH_PATH]) {
      await request(app).get(url).expect(401);
      await request(app).get(url).set('Authorization', 'Bearer curator-token').expect(401);
      await request(app).get(url).set('Authorization', 'Bearer wrong-token').expect(401);
    }
  });

  it('answers a user with read, and a scraper token with only faceflow-metrics.read', async () => {
    for (const token of ['viewer-token', 'scraper-token']) {
      const metrics = await request(app)
        .get(METRICS_PATH)
        .set('Authorization', `Bearer ${token}`)
        .expect(200)
        .expect('Content-Type', PROMETHEUS_TEXT);
      assert.ok(parsePrometheusText(metrics.text).has('faceflow_frames_in_total'));
      const report = await request(app).get(HEALTH_PATH).set('Authorization', `Bearer ${token}`).expect(200);
      assert.ok(['ok', 'degraded'].includes(report.body.status));
      assert.ok(Array.isArray(report.body.cameras));
    }
  });
});
