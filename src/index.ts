/**
 * node-red-contrib-faceflow: the public API for scripts, as the README documents it (see "From a
 * script" and its list of the API). Everything else in `src/` is internal: importable by path, but
 * free to change between versions. test/publicApi.test.ts keeps the README and this file in step.
 */
export * from './types';
export {
  decodeImage,
  encodeJpeg,
  ImageDecodeError,
  DEFAULT_MAX_PIXELS,
  type DecodeOptions,
} from './image/decode';
export { alignFace } from './align';
export type { Detector, Embedder, DetectOptions, FaceModel, SessionOptions } from './models/roles';
export { ScrfdDetector } from './models/scrfd';
export { OnnxEmbedder, cosine, type EmbedderNormalization } from './models/embedder';
export { loadModel, loadModelDir, type LoadOptions, type ModelPair } from './models/registry';
export { ModelLoadError, ModelReleasedError } from './models/session';
export { MemoryGallery, type MatchOptions } from './gallery/memoryGallery';
export { FaceFlow, NoSingleFaceError, type FaceFlowOptions } from './faceflow';
export {
  decodeImages,
  detectFaces,
  alignFaces,
  embedFaces,
  matchFaces,
  collectUnknowns,
  type CollectUnknownsOptions,
  type Matcher,
  type MatchFacesOptions,
} from './pipeline/operators';
export { faceEvents, type FaceEventOptions } from './pipeline/events';
export { CameraHealthMeter, type CameraHealth } from './pipeline/cameraHealth';
export {
  metricsRegistry,
  metricsText,
  METRICS_CONTENT_TYPE,
  CameraMeter,
  stageMetrics,
  PublisherMeter,
  watchGallery,
  watchModels,
  healthReport,
  OTHER_CAMERA,
  type CameraStatus,
  type GalleryStatus,
  type ModelsStatus,
  type HealthReport,
  type StageInstruments,
} from './metrics';
export { Gallery, GalleryError, type GalleryMatchOptions, type IdentityInfo } from './gallery/gallery';
export { GalleryFile, type GalleryFileOptions } from './gallery/galleryFile';
export { GalleryStoreError } from './gallery/store';
export { createIndex, type VectorBackend } from './gallery/indexFactory';
export type { VectorIndex, VectorHit } from './gallery/vectorIndex';
export { faissAvailable } from './gallery/faissIndex';
export {
  enrollImage,
  enrollFolder,
  enrollEmbedding,
  DEFAULT_MIN_FACE_SIZE,
  DEFAULT_MIN_SHARPNESS,
  type EnrollResult,
  type EnrollReport,
  type EnrollProblem,
} from './gallery/enroll';
export {
  calibrateGallery,
  applyCalibration,
  suggestedThreshold,
  writeCalibrationPlots,
  type Calibration,
} from './gallery/calibrate';
export { clusterUnknowns, recluster, nameCluster, type UnknownCluster } from './gallery/cluster';
export type { UnknownFace } from './gallery/unknownPool';
export {
  exportGallery,
  writeExport,
  readExport,
  importGallery,
  GalleryImportError,
} from './gallery/exchange';
export { faceThumbnail, contactSheet } from './gallery/thumbnail';
export {
  confinedPhotos,
  MAX_FOLDER_PHOTOS,
  PhotoFolderError,
  type ConfinedPhotos,
} from './gallery/photoFolder';
export {
  presenceDiscovery,
  presenceDiscoveryRemoval,
  presenceTopic,
  discoveryId,
  DEFAULT_DISCOVERY_PREFIX,
  DEFAULT_AWAY_AFTER_S,
  type PresenceDiscoveryOptions,
  type PresenceDiscoveryConfig,
  type RetainedMessage,
} from './output/homeAssistant';
export {
  CameraSource,
  fileFrames,
  rtspFrames,
  deviceFrames,
  type CameraOptions,
  type ReconnectOptions,
  type CameraEvent,
  type DownCause,
  CameraError,
  ffmpegPath,
  ffmpegVersion,
  FFMPEG_ENV,
  type FfmpegChoice,
  latestFrame,
  type LatestFrameOptions,
  maskUrl,
  type CameraInput,
} from './io';
export { MjpegServer, serveMjpeg, type MjpegServerOptions, type MjpegSource } from './io/mjpegServer';
export {
  MqttEventPublisher,
  publishEvents,
  mqttTopicLevel,
  type MqttEventPublisherOptions,
  type PublisherStatus,
} from './io/mqttPublisher';
export {
  assessQuality,
  qualityGate,
  faceSharpness,
  DEFAULT_QUALITY_THRESHOLDS,
  type QualityResult,
  type QualityReason,
  type QualityScores,
  type QualityThresholds,
  type GatedFace,
  type QualityGateOptions,
} from './quality';
export { annotate, annotateFrame, type AnnotateOptions } from './output/annotate';
export { recognizeFrames, type LiveRecognitionOptions } from './pipeline/live';
export {
  FaceTracking,
  trackFaces,
  embedTrackedFaces,
  matchTrackedFaces,
  type FaceTrackingOptions,
} from './tracking/operators';
export { ByteTracker, type ByteTrackerOptions, type TrackState } from './tracking/byteTracker';
