/** node-red-contrib-faceflow: the public API for scripts. */
export * from './types';
export {
  decodeImage,
  encodeJpeg,
  ImageDecodeError,
  DEFAULT_MAX_PIXELS,
  type DecodeOptions,
} from './image/decode';
export {
  alignFace,
  estimateSimilarity,
  warpAffineRgb,
  ARCFACE_TEMPLATE_112,
  type SimilarityTransform,
} from './align';
export type { Detector, Embedder, DetectOptions, FaceModel, SessionOptions } from './models/roles';
export { ScrfdDetector } from './models/scrfd';
export { OnnxEmbedder, cosine, l2Normalize, type EmbedderNormalization } from './models/embedder';
export {
  loadModel,
  loadModelDir,
  classifySignature,
  type LoadOptions,
  type ModelPair,
} from './models/registry';
export { ModelLoadError } from './models/session';
export { MemoryGallery, identityFromRanking, type MatchOptions } from './gallery/memoryGallery';
export { FaceFlow, NoSingleFaceError, type FaceFlowOptions } from './faceflow';
export {
  decodeImages,
  detectFaces,
  alignFaces,
  embedFaces,
  matchFaces,
  type Matcher,
} from './pipeline/operators';
