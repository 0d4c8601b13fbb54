/**
 * The Prometheus instruments of every faceflow pipeline, on a registry of their own.
 *
 * Not prom-client's global default registry: an application that embeds faceflow (or Node-RED, which
 * may host other metric-exporting nodes) keeps its own metrics there, and scraping faceflow must
 * neither include nor reset them.
 *
 * Labels stay few and bounded: `camera` (only cameras a source has registered, see cameraMeter.ts),
 * `result` (recognized | unknown), `cause` (a fixed list), `gallery` and `models` (config nodes). A
 * person's name is never a label: it is personal data, and the set of names has no bound.
 */
import { Counter, Histogram, Registry } from 'prom-client';

export const metricsRegistry = new Registry();

/** What to answer a scrape with as Content-Type (Prometheus text format 0.0.4). */
export const METRICS_CONTENT_TYPE: string = metricsRegistry.contentType;

/** All faceflow metrics in the Prometheus text format. */
export function metricsText(): Promise<string> {
  return metricsRegistry.metrics();
}

/** For instruments defined beside the state they read and read at scrape time (cameraMeter.ts, sources.ts). */
export const registers = [metricsRegistry];

/**
 * Seconds, from 2.5 ms to 10 s: a small detector on a fast CPU takes a few ms, a large one on two loaded
 * cores a few hundred, and the first call of a model (its warm-up) can take seconds.
 */
export const LATENCY_BUCKETS = [
  0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Faces in one frame: the first buckets tell empty rooms from single visitors, the last ones crowds. */
export const FACE_COUNT_BUCKETS = [0, 1, 2, 3, 5, 8, 13, 20, 50];

export const framesIn = new Counter({
  name: 'faceflow_frames_in_total',
  help: 'Frames received from the camera or video source.',
  labelNames: ['camera'] as const,
  registers,
});

export const framesDropped = new Counter({
  name: 'faceflow_frames_dropped_total',
  help: 'Frames skipped before processing because the pipeline was still busy with an older one.',
  labelNames: ['camera'] as const,
  registers,
});

export const cameraDisconnects = new Counter({
  name: 'faceflow_camera_disconnects_total',
  help: 'Connections to the camera that ended, by cause (auth, not-found, refused, unreachable, timeout, stalled, protocol, killed, ended, failed).',
  labelNames: ['camera', 'cause'] as const,
  registers,
});

export const detectSeconds = new Histogram({
  name: 'faceflow_detect_duration_seconds',
  help: 'Time to find the faces of one frame.',
  labelNames: ['camera'] as const,
  buckets: LATENCY_BUCKETS,
  registers,
});

export const detectSkipped = new Counter({
  name: 'faceflow_detect_skipped_total',
  help: 'Frames passed on without running the detector: the scene was empty and still since the last detection.',
  labelNames: ['camera'] as const,
  registers,
});

export const embedSeconds = new Histogram({
  name: 'faceflow_embed_duration_seconds',
  help: 'Time to align and embed the faces of one frame that needed an embedding (one batch).',
  labelNames: ['camera'] as const,
  buckets: LATENCY_BUCKETS,
  registers,
});

export const facesPerFrame = new Histogram({
  name: 'faceflow_faces_per_frame',
  help: 'Faces found in one frame.',
  labelNames: ['camera'] as const,
  buckets: FACE_COUNT_BUCKETS,
  registers,
});

export const recognitions = new Counter({
  name: 'faceflow_recognitions_total',
  help: 'Faces matched against a gallery, by result: recognized (a known person), unknown, or ambiguous (two people too close to tell apart).',
  labelNames: ['camera', 'result'] as const,
  registers,
});

export const mqttPublishFailures = new Counter({
  name: 'faceflow_mqtt_publish_failures_total',
  help: 'MQTT messages given up on (reason "dropped": queue full or undelivered at stop) and publish or connection errors (reason "error").',
  labelNames: ['camera', 'reason'] as const,
  registers,
});

export const gallerySyncRefused = new Counter({
  name: 'faceflow_gallery_sync_refused_total',
  help: 'Gallery sync messages refused and not applied, by reason: unsigned, bad_signature (another secret or altered), replay, stale (outside the time window) or malformed.',
  labelNames: ['gallery', 'reason'] as const,
  registers,
});
