import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { register as defaultRegistry } from 'prom-client';

import type { CameraEvent } from '../src/io/cameraSource';
import {
  CameraMeter,
  healthReport,
  LATENCY_BUCKETS,
  metricsRegistry,
  metricsText,
  OTHER_CAMERA,
  PublisherMeter,
  recognitionResult,
  stageMetrics,
  watchGallery,
  watchModels,
} from '../src/metrics';
import { hasLabelValue, parsePrometheusText, sampleValue } from './helpers/promText';
import { PROJECT_ROOT } from './helpers/shared';

// The registry is process-wide and other suites in this mocha run deploy cameras too: every name here is
// this file's own, and every meter is closed again.
const event = (camera: string, body: Record<string, unknown>): CameraEvent =>
  ({ cameraId: camera, source: 'test', ts: Date.now(), ...body }) as unknown as CameraEvent;

describe('metrics: the faceflow registry and its instruments', () => {
  const open: { close(): void }[] = [];
  const track = <T extends { close(): void }>(m: T): T => {
    open.push(m);
    return m;
  };
  afterEach(() => {
    for (const m of open.splice(0)) m.close();
  });

  it('keeps its metrics out of prom-client’s default registry, all named faceflow_', async () => {
    track(new CameraMeter('unit-own', 'test')).frame();
    const names = (await metricsRegistry.getMetricsAsJSON()).map((m) => m.name);
    assert.ok(names.length >= 12, names.join(', '));
    for (const name of names) {
      assert.match(name, /^faceflow_/);
      assert.equal(defaultRegistry.getSingleMetric(name), undefined, `${name} in the default registry`);
    }
  });

  it('counts frames and drops, and writes text a Prometheus scrape accepts', async () => {
    const meter = track(new CameraMeter('unit-frames', '/videos/a.mp4'));
    const before = await metricsText();
    // Registered cameras are present at 0 before their first frame, so rate() sees the first ones.
    assert.equal(sampleValue(before, 'faceflow_frames_in_total', { camera: 'unit-frames' }), 0);
    for (let i = 0; i < 7; i++) meter.frame();
    meter.event(event('unit-frames', { type: 'dropped', count: 3, total: 3 }));
    meter.event(event('unit-frames', { type: 'dropped', count: 2, total: 5 }));
    const text = await metricsText();
    const families = parsePrometheusText(text);
    assert.equal(families.get('faceflow_frames_in_total')?.type, 'counter');
    assert.equal(families.get('faceflow_detect_duration_seconds')?.type, 'histogram');
    assert.equal(families.get('faceflow_camera_up')?.type, 'gauge');
    assert.ok(families.get('faceflow_frames_in_total')?.help);
    assert.equal(sampleValue(families, 'faceflow_frames_in_total', { camera: 'unit-frames' }), 7);
    assert.equal(sampleValue(families, 'faceflow_frames_dropped_total', { camera: 'unit-frames' }), 5);
    assert.equal(sampleValue(families, 'faceflow_camera_up', { camera: 'unit-frames' }), 1);
    const last = sampleValue(families, 'faceflow_camera_last_frame_timestamp_seconds', {
      camera: 'unit-frames',
    });
    assert.ok(last !== undefined && Math.abs(last - Date.now() / 1000) < 60, String(last));
  });

  it('follows the camera’s events: up, down by cause, reconnecting, stopped', async () => {
    const meter = track(new CameraMeter('unit-events', 'rtsp://viewer:***@cam/s'));
    const up = async () => sampleValue(await metricsText(), 'faceflow_camera_up', { camera: 'unit-events' });
    assert.equal(await up(), 0);
    meter.starting();
    meter.event(event('unit-events', { type: 'connecting', attempt: 0 }));
    assert.equal(meter.state, 'connecting');
    meter.event(event('unit-events', { type: 'up', attempt: 0, width: 64, height: 48 }));
    assert.equal(await up(), 1);
    meter.event(
      event('unit-events', { type: 'down', cause: 'auth', reason: 'authentication failed (401)', frames: 0 }),
    );
    meter.event(event('unit-events', { type: 'reconnecting', attempt: 1, delayMs: 1000 }));
    const text = await metricsText();
    assert.equal(sampleValue(text, 'faceflow_camera_up', { camera: 'unit-events' }), 0);
    assert.equal(
      sampleValue(text, 'faceflow_camera_disconnects_total', { camera: 'unit-events', cause: 'auth' }),
      1,
    );
    const status = healthReport().cameras.find((c) => c.camera === 'unit-events');
    assert.deepEqual(
      [status?.state, status?.up, status?.lastProblem, status?.source],
      ['reconnecting', false, 'authentication failed (401)', 'rtsp://viewer:***@cam/s'],
    );
    assert.equal(healthReport().status, 'degraded');
    meter.stopped();
    assert.equal(healthReport().cameras.find((c) => c.camera === 'unit-events')?.state, 'stopped');
  });

  it('measures fps from the frames’ arrival, and reports 0 once they stop', () => {
    const meter = track(new CameraMeter('unit-fps', 'test'));
    const t0 = 1_000_000;
    // 10 frames a second for 5 s.
    for (let i = 0; i <= 50; i++) meter.frame(t0 + i * 100);
    const now = t0 + 5000;
    assert.ok(Math.abs(meter.fps(now) - 10) < 0.6, String(meter.fps(now)));
    const status = meter.status(now + 50);
    assert.equal(status.lastFrameAgeMs, 50);
    assert.equal(status.frames, 51);
    assert.equal(meter.fps(now + 10_000), 0);
  });

  it('counts nothing for a frame still in a stage when its camera was closed (no series come back)', async () => {
    const meter = track(new CameraMeter('unit-late', 'test'));
    const stages = stageMetrics('unit-late');
    stages.detected(0.01, 1);
    meter.close();
    // What a detect or match node still working on the camera's last frame does after an unload.
    stages.detected(0.01, 1);
    stages.embedded(0.004);
    stages.matched('recognized');
    assert.ok(!hasLabelValue(await metricsText(), 'camera', 'unit-late'));
  });

  it('puts latencies into the buckets they belong to, per camera', async () => {
    const meter = track(new CameraMeter('unit-stages', 'test'));
    const stages = stageMetrics('unit-stages');
    stages.detected(0.012, 2);
    stages.detected(0.3, 0);
    stages.skipped();
    stages.skipped();
    stages.embedded(0.004);
    stages.matched('recognized');
    stages.matched('unknown');
    stages.matched('unknown');
    stages.matched(recognitionResult({ name: 'Unknown', ambiguous: true }));
    const text = await metricsText();
    const camera = { camera: 'unit-stages' };
    const bucket = (name: string, le: string) => sampleValue(text, `${name}_bucket`, { ...camera, le });
    assert.equal(sampleValue(text, 'faceflow_detect_duration_seconds_count', camera), 2);
    assert.equal(
      sampleValue(text, 'faceflow_detect_skipped_total', camera),
      2,
      'still frames are not detections',
    );
    assert.ok(Math.abs(sampleValue(text, 'faceflow_detect_duration_seconds_sum', camera)! - 0.312) < 1e-9);
    assert.equal(bucket('faceflow_detect_duration_seconds', '0.01'), 0);
    assert.equal(bucket('faceflow_detect_duration_seconds', '0.02'), 1);
    assert.equal(bucket('faceflow_detect_duration_seconds', '0.5'), 2);
    assert.equal(bucket('faceflow_detect_duration_seconds', '+Inf'), 2);
    assert.equal(bucket('faceflow_embed_duration_seconds', '0.005'), 1);
    assert.equal(sampleValue(text, 'faceflow_faces_per_frame_sum', camera), 2);
    assert.equal(bucket('faceflow_faces_per_frame', '0'), 1);
    assert.equal(sampleValue(text, 'faceflow_recognitions_total', { ...camera, result: 'recognized' }), 1);
    assert.equal(sampleValue(text, 'faceflow_recognitions_total', { ...camera, result: 'unknown' }), 2);
    assert.equal(sampleValue(text, 'faceflow_recognitions_total', { ...camera, result: 'ambiguous' }), 1);
    // Buckets are cumulative and the +Inf bucket is the count: what histogram_quantile() relies on.
    const counts = [...LATENCY_BUCKETS.map(String), '+Inf'].map((le) =>
      bucket('faceflow_detect_duration_seconds', le),
    );
    assert.deepEqual(
      counts,
      [...counts].sort((a, b) => a! - b!),
    );
    meter.close();
  });

  it('labels frames of no registered camera "other", so stray topics cannot grow the series', async () => {
    const before = sampleValue(await metricsText(), 'faceflow_detect_duration_seconds_count', {
      camera: OTHER_CAMERA,
    });
    for (let i = 0; i < 50; i++) stageMetrics(`stray-topic-${i}`).detected(0.01, 1);
    stageMetrics(undefined).detected(0.01, 0);
    stageMetrics({ not: 'a string' }).matched('unknown');
    const text = await metricsText();
    assert.equal(
      sampleValue(text, 'faceflow_detect_duration_seconds_count', { camera: OTHER_CAMERA }),
      (before ?? 0) + 51,
    );
    assert.ok(!text.includes('stray-topic'));
  });

  it('removes every series of a camera when its last source closes', async () => {
    const first = new CameraMeter('unit-gone', 'test');
    const second = new CameraMeter('unit-gone', 'test');
    first.frame();
    first.event(
      event('unit-gone', { type: 'down', cause: 'refused', reason: 'connection refused', frames: 1 }),
    );
    stageMetrics('unit-gone').detected(0.02, 1);
    stageMetrics('unit-gone').skipped();
    stageMetrics('unit-gone').embedded(0.01);
    stageMetrics('unit-gone').matched('unknown');
    assert.ok(hasLabelValue(await metricsText(), 'camera', 'unit-gone'));
    // Two nodes reading one camera: the series stay while one of them is deployed.
    first.close();
    const text = await metricsText();
    assert.equal(sampleValue(text, 'faceflow_frames_in_total', { camera: 'unit-gone' }), 1);
    assert.equal(sampleValue(text, 'faceflow_detect_duration_seconds_count', { camera: 'unit-gone' }), 1);
    second.close();
    second.close(); // closing twice is harmless
    assert.ok(!hasLabelValue(await metricsText(), 'camera', 'unit-gone'));
    assert.ok(!healthReport().cameras.some((c) => c.camera === 'unit-gone'));
    // A frame of that camera still in a later stage when it closed goes to "other", not back to its label.
    stageMetrics('unit-gone').detected(0.02, 1);
    first.frame();
    assert.ok(!hasLabelValue(await metricsText(), 'camera', 'unit-gone'));
  });

  it('reads galleries and models at scrape time, and forgets them when unwatched', async () => {
    let people = 3;
    const unwatchGallery = watchGallery('g-unit', () => ({
      id: 'g-unit',
      name: 'unit door',
      open: true,
      people,
      embeddings: people * 2,
    }));
    const unwatchClosed = watchGallery('g-unit-closed', () => ({
      id: 'g-unit-closed',
      name: '',
      open: false,
      people: null,
      embeddings: null,
    }));
    const unwatchBroken = watchGallery('g-unit-broken', () => {
      throw new Error('closing');
    });
    const unwatchModels = watchModels('m-unit', () => ({
      id: 'm-unit',
      name: '',
      pack: 'default',
      state: 'loaded',
    }));
    try {
      let text = await metricsText();
      assert.equal(sampleValue(text, 'faceflow_gallery_identities', { gallery: 'unit door' }), 3);
      assert.equal(sampleValue(text, 'faceflow_gallery_embeddings', { gallery: 'unit door' }), 6);
      // A gallery not opened yet has no size to report, rather than a false 0.
      assert.ok(!hasLabelValue(text, 'gallery', 'g-unit-closed'));
      // Unnamed config nodes are labelled by their id.
      assert.equal(sampleValue(text, 'faceflow_models_loaded', { models: 'm-unit' }), 1);
      people = 4;
      text = await metricsText();
      assert.equal(sampleValue(text, 'faceflow_gallery_identities', { gallery: 'unit door' }), 4);
      const health = healthReport();
      assert.deepEqual(
        health.galleries.filter((g) => g.id.startsWith('g-unit')).map((g) => [g.id, g.open, g.people]),
        [
          ['g-unit', true, 4],
          ['g-unit-closed', false, null],
        ],
      );
      assert.ok(health.models.some((m) => m.id === 'm-unit' && m.state === 'loaded'));
    } finally {
      unwatchGallery();
      unwatchClosed();
      unwatchBroken();
      unwatchModels();
    }
    const text = await metricsText();
    assert.ok(!hasLabelValue(text, 'gallery', 'unit door'));
    assert.ok(!hasLabelValue(text, 'models', 'm-unit'));
  });

  it('turns an MQTT publisher’s drop total into counter increments, and removes it on close', async () => {
    const meter = new PublisherMeter('unit-mqtt');
    const failures = async (reason: string) =>
      sampleValue(await metricsText(), 'faceflow_mqtt_publish_failures_total', {
        camera: 'unit-mqtt',
        reason,
      });
    assert.equal(await failures('dropped'), 0);
    meter.sample(false, 4);
    meter.sample(false, 4);
    meter.sample(true, 10);
    meter.error();
    meter.error();
    assert.equal(await failures('dropped'), 10);
    assert.equal(await failures('error'), 2);
    assert.equal(sampleValue(await metricsText(), 'faceflow_mqtt_connected', { camera: 'unit-mqtt' }), 1);
    meter.close();
    assert.ok(!hasLabelValue(await metricsText(), 'camera', 'unit-mqtt'));
  });

  it('reads a label value with quotes, backslashes and line breaks back as it was', async () => {
    const odd = 'hall "A"\\\nB';
    const meter = track(new CameraMeter(odd, 'test'));
    meter.frame();
    assert.equal(sampleValue(await metricsText(), 'faceflow_frames_in_total', { camera: odd }), 1);
  });

  it('has a Grafana dashboard that shows every metric, and only metrics that exist', async () => {
    const file = path.join(PROJECT_ROOT, 'docs', 'grafana', 'faceflow-dashboard.json');
    const dashboard = JSON.parse(readFileSync(file, 'utf8')) as {
      panels: { id: number; datasource: { uid: string }; targets: { expr: string }[] }[];
      templating: { list: { name: string }[] };
    };
    const known = new Set((await metricsRegistry.getMetricsAsJSON()).map((m) => m.name));
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    const used = new Set(exprs.flatMap((e) => e.match(/faceflow_[a-z_]+/g) ?? []));
    const family = (name: string) => (known.has(name) ? name : name.replace(/_(bucket|sum|count)$/, ''));
    for (const name of used)
      assert.ok(known.has(family(name)), `the dashboard reads ${name}, which does not exist`);
    const shown = new Set([...used].map(family));
    for (const name of known) assert.ok(shown.has(name), `${name} is on no panel`);
    // Labels it filters or groups by are the ones the metrics have: a typo would show an empty panel.
    const labels = new Set(
      exprs.flatMap((e) => [...e.matchAll(/(?:by \(|\{|, )([a-z]+)(?==~|\)|,)/g)].map((m) => m[1])),
    );
    assert.deepEqual([...labels].sort(), ['camera', 'cause', 'gallery', 'le', 'reason', 'result']);
    assert.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length);
    assert.ok(dashboard.panels.every((p) => p.datasource.uid === '${datasource}'));
    assert.deepEqual(
      dashboard.templating.list.map((v) => v.name),
      ['datasource', 'camera'],
    );
  });
});
