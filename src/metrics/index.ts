/**
 * Prometheus metrics and a health report for faceflow pipelines: one registry of its own
 * (`metricsRegistry`, text via `metricsText()`), fed by `CameraMeter` (sources), `stageMetrics()`
 * (detect, embed, match), `PublisherMeter` (MQTT) and `watchGallery`/`watchModels` (read at scrape time).
 */
export {
  metricsRegistry,
  metricsText,
  METRICS_CONTENT_TYPE,
  LATENCY_BUCKETS,
  FACE_COUNT_BUCKETS,
} from './registry';
export {
  CameraMeter,
  stageMetrics,
  recognitionResult,
  RECOGNITION_RESULTS,
  cameraStatuses,
  OTHER_CAMERA,
  type CameraState,
  type CameraStatus,
  type StageInstruments,
  type RecognitionResult,
} from './cameraMeter';
export {
  PublisherMeter,
  watchGallery,
  watchModels,
  galleryStatuses,
  modelsStatuses,
  type GalleryStatus,
  type GallerySyncStatus,
  type ModelsStatus,
  type ModelsState,
} from './sources';
export { gallerySyncRefused } from './registry';
export { cameraInTrouble, healthReport, type HealthReport } from './health';
