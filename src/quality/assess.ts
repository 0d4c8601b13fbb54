import type { RgbImage } from '../align';
import type { Face, Point } from '../types';
import { eyeAspectRatio, MESH_POINTS } from './eyes';
import { cropLuma } from './luma';
import { estimatePose, type PoseModel } from './pose';
import { cropSharpness, qualityCrop } from './sharpness';

/**
 * A face that may carry the 468-point mesh of a face-mesh landmarker, in frame pixels. The mesh is
 * the only landmark set that outlines the eyelids; without it eye openness is not measured.
 */
export type MeshFace = Face & { mesh?: readonly Point[] };

/**
 * What `assessQuality` measures. All but the optional ones are always there; `face.quality` holds
 * them after `qualityGate`.
 */
export interface QualityScores {
  /** Laplacian variance of the aligned 112 crop (see sharpness.ts). */
  sharpness: number;
  /** Mean luma (0..255) of the aligned crop's central region (see luma.ts). */
  brightness: number;
  /** Standard deviation of that luma. */
  contrast: number;
  /** Shorter side of the face box, in frame pixels. */
  size: number;
  /** Degrees, see `estimatePose` for signs and accuracy. */
  yaw: number;
  pitch: number;
  roll: number;
  /** Eye aspect ratio, both eyes averaged; only for faces that carry a mesh. */
  eyeOpenness?: number;
  /** Anti-spoof model's "real face" score (0..1), when `face.attributes.real` holds one. */
  real?: number;
  /** Liveness model's score (0..1), when `face.attributes.live` holds one. */
  live?: number;
}

/**
 * Every limit is inclusive of the passing side (a face exactly at a minimum passes). The defaults
 * (`DEFAULT_QUALITY_THRESHOLDS`) were measured with the default model pack; see there.
 */
export interface QualityThresholds {
  minSharpness?: number;
  minBrightness?: number;
  maxBrightness?: number;
  minContrast?: number;
  minSize?: number;
  /** Largest |yaw|, |pitch|, |roll|, in degrees. */
  maxYaw?: number;
  maxPitch?: number;
  maxRoll?: number;
  minEyeOpenness?: number;
  /** No default: the anti-spoof and liveness scores are only recorded unless these are given. */
  minReal?: number;
  minLive?: number;
  /** The mean face the pose is read against (default `DEFAULT_POSE_MODEL`). */
  poseModel?: PoseModel;
}

/**
 * The defaults, measured with 0.1's default pack (BlazeFace + FaceRes, threshold 0.52; pixel measures, so they
 * hold for any embedder) on the 52
 * single-face photos of ../shared/data (bbt/faces, knn/train, misc portraits) and on variants of
 * them made with sharp. "Degraded" below means an embedding whose cosine similarity to the same
 * photo's original fell under 0.75; "fine" means 0.85 or more.
 *
 * - minSharpness 30: enrolment's threshold (gallery/enroll.ts). On the knn/misc photos blurred
 *   with σ = 1–4 px per 120 px of face, it rejects all 22 degraded faces and 3 of 31 fine ones; no
 *   original scores below 153. (On the bbt crops, padded into a scene, the edge of the padding
 *   keeps the measure high, so blur there is caught less well.)
 * - minBrightness 30: originals score 76–187 (5th percentile 103). Darkened to 0.6–0.06 of their
 *   values, every degraded face (128) scored under 30, and 6 of 190 fine ones (no original); at ×0.1 (scores
 *   7–18) 13 of 52 fall below the match threshold.
 * - maxBrightness 210: the knn/misc photos brightened ×1.4 score up to 209 and keep similarity
 *   ≥ 0.84; ×1.8 score 171–229 (similarity 0.69–0.90), ×2.4 209–243 (0.48–0.82). Originals: up
 *   to 187.
 * - minContrast 8: originals score 25–74. Contrast lowered around grey (×0.5–0.1) or by
 *   darkening: 181 of 187 degraded faces are under 8, 8 of 351 fine ones. A dark face usually
 *   fails both this and minBrightness.
 * - minSize 36: photos shrunk until the face box was 17–70 px: every degraded face (38) had a box
 *   under 36 px, 4 of 141 fine ones did. Similarity by box size, median (5th percentile): 24–32 px
 *   0.70 (0.40), 32–40 px 0.82 (0.72), 40–48 px 0.91 (0.82). Below about 40 px BlazeFace also
 *   starts to miss faces (it found 39 of 52 at 48 px targets, 14 at 32 px).
 * - maxYaw 40: in the Hamilton clip (video/short_hamilton_clip.mp4), frames of Lin-Manuel Miranda
 *   turned up to 36° still match his enrolment photo at 0.53–0.65 (frontal frames: median 0.62);
 *   the clip's profile shots (of other people) read 42–80°. The three most turned faces of the
 *   photos read 35°, −36° (bbt2.jpg) and −41° (the bystander in obama_and_biden.jpg).
 * - maxPitch 40: the estimate is rough (see `estimatePose`): the scene photos read −34° to +16°,
 *   and the −34° is a man looking only slightly up; the limit catches only gross cases.
 * - maxRoll 45: alignment undoes roll; photos rotated by 40° kept similarity ≥ 0.94 to the upright
 *   original for 51 of 52. Beyond that the detectors start to miss faces, and the landmarks of
 *   those found get worse.
 * - minEyeOpenness 0.15: open eyes measured 0.18–0.40 on all 86 faces of the photos and
 *   0.21–0.40 over 140 near-frontal frames of the clip. The test data holds no closed eyes, so the
 *   limit is not validated on them; 0.15 follows the eye-aspect-ratio literature, with margin
 *   below the open eyes measured.
 * - minReal / minLive: none. On the 86 genuine faces of all photos the anti-spoof model scored
 *   0.43–0.91 (5 under 0.5) and the liveness model 0.05–1.0 (6 under 0.5); there are no spoofs in
 *   the test data to set a limit against.
 */
export const DEFAULT_QUALITY_THRESHOLDS = {
  minSharpness: 30,
  minBrightness: 30,
  maxBrightness: 210,
  minContrast: 8,
  minSize: 36,
  maxYaw: 40,
  maxPitch: 40,
  maxRoll: 45,
  minEyeOpenness: 0.15,
} as const satisfies QualityThresholds;

/** Why a face failed, one per failed limit. */
export type QualityReason =
  | 'too-small'
  | 'too-blurry'
  | 'too-dark'
  | 'too-bright'
  | 'low-contrast'
  | 'yaw'
  | 'pitch'
  | 'roll'
  /** The landmarks do not form a face (mouth above the eyes): no pose can be read. */
  | 'landmarks'
  | 'eyes-closed'
  | 'spoof'
  | 'not-live';

export interface QualityResult {
  scores: QualityScores;
  passed: boolean;
  /** Empty when passed. */
  reasons: QualityReason[];
}

/**
 * Scores one face and checks it against the thresholds (missing ones take the defaults). Pure and
 * synchronous: about a millisecond per face, most of it the 112 crop, made once for every measure.
 */
export function assessQuality(
  frame: RgbImage,
  face: MeshFace,
  thresholds: QualityThresholds = {},
): QualityResult {
  const t = { ...DEFAULT_QUALITY_THRESHOLDS, ...withoutUndefined(thresholds) };
  const crop = qualityCrop(frame, face.landmarks);
  const luma = cropLuma(crop);
  const pose = estimatePose(face.landmarks, thresholds.poseModel);
  const scores: QualityScores = {
    sharpness: cropSharpness(crop),
    brightness: luma.mean,
    contrast: luma.std,
    size: Math.min(face.box[2] - face.box[0], face.box[3] - face.box[1]),
    yaw: pose.yaw,
    pitch: pose.pitch,
    roll: pose.roll,
  };
  if (face.mesh && face.mesh.length === MESH_POINTS) scores.eyeOpenness = eyeAspectRatio(face.mesh);
  const real = face.attributes?.real;
  if (typeof real === 'number') scores.real = real;
  const live = face.attributes?.live;
  if (typeof live === 'number') scores.live = live;

  const reasons: QualityReason[] = [];
  if (scores.size < t.minSize) reasons.push('too-small');
  if (scores.sharpness < t.minSharpness) reasons.push('too-blurry');
  if (scores.brightness < t.minBrightness) reasons.push('too-dark');
  if (scores.brightness > t.maxBrightness) reasons.push('too-bright');
  if (scores.contrast < t.minContrast) reasons.push('low-contrast');
  if (Number.isNaN(pose.yaw)) reasons.push('landmarks');
  else {
    if (Math.abs(pose.yaw) > t.maxYaw) reasons.push('yaw');
    if (Math.abs(pose.pitch) > t.maxPitch) reasons.push('pitch');
  }
  if (Math.abs(pose.roll) > t.maxRoll) reasons.push('roll');
  if (scores.eyeOpenness !== undefined && scores.eyeOpenness < t.minEyeOpenness) reasons.push('eyes-closed');
  if (t.minReal !== undefined && scores.real !== undefined && scores.real < t.minReal) reasons.push('spoof');
  if (t.minLive !== undefined && scores.live !== undefined && scores.live < t.minLive)
    reasons.push('not-live');
  return { scores, passed: reasons.length === 0, reasons };
}

/** `{ ...defaults, ...given }` where a key given as `undefined` keeps its default. */
function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
