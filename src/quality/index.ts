/** Face quality: how usable a detected face is for recognition, and a gate on it. */
export {
  assessQuality,
  DEFAULT_QUALITY_THRESHOLDS,
  type MeshFace,
  type QualityReason,
  type QualityResult,
  type QualityScores,
  type QualityThresholds,
} from './assess';
export { eyeAspectRatio, MESH_POINTS } from './eyes';
export { qualityGate, type GatedFace, type QualityGateOptions } from './gate';
export { cropLuma, LUMA_REGION, type LumaStats } from './luma';
export { DEFAULT_POSE_MODEL, estimatePose, type Pose, type PoseModel } from './pose';
export { cropSharpness, faceSharpness, laplacianVariance, qualityCrop, type QualityCrop } from './sharpness';
