import type { Point } from '../types';

/** Head pose in degrees, estimated from five landmarks (see `estimatePose`). */
export interface Pose {
  /** Positive: the face turned towards the image's right (its nose points right in the image). */
  yaw: number;
  /** Positive: the face tilted down (chin towards the chest); negative: looking up. */
  pitch: number;
  /** Positive: the face rotated clockwise in the image (its image-right eye lower). */
  roll: number;
}

/**
 * Constants of a rigid mean face, in units of its own distances (see `estimatePose`). They were
 * first derived from the anthropometric 5-point head model of the usual head-pose tutorials (eye
 * centres 63 mm apart, nose tip 27 mm ahead of them; that gives 0.41, 0.53, 0.42, 0.03), then
 * fitted to real photos, as follows.
 *
 * Reference: the 3D pose of the same faces read from the 468-point face mesh (the `human-facemesh`
 * model, which predicts depth): yaw from the depth difference of four symmetric point pairs (eye
 * corners, mouth corners, cheeks), which is zero on a frontal face by symmetry; pitch from the
 * forehead–chin line, whose zero is unknown, so only its slope was used. Data: the 93 faces the
 * default pack finds in the scene photos of ../shared/data (bbt/group, face_recognition_examples
 * knn and misc), each also mirrored.
 * - `yawDepth` 0.50 (model: 0.41): yaw agrees with the mesh's to 2.9° on average (90% within 6°,
 *   range ±44°); with 0.41, 3.5°. Mirrored photos give mirrored yaw (mean offset ratio 0.002 vs 0.008).
 * - `frontalNose` 0.53: the mean nose height of those faces (0.536), and the model's value.
 * - `noseDepth` 0.50: the slope of the nose height against the mesh's pitch (regression 0.45–0.54);
 *   pitch then agrees with the mesh's to 4° on average, 90% within 9°, once the unknown offset is
 *   taken out. A face's own nose length shifts its pitch by ±10° or more: Obama in
 *   misc/two_people.jpg, looking slightly up, reads −34° where the mesh says about −15°.
 * Tight portrait crops (bbt/faces, detected inside a border) give worse landmarks: yaw off by
 * 10° on average and about −6° biased, pitch biased by about +10°.
 */
export interface PoseModel {
  /** Depth of the nose tip ahead of the face's midline, relative to the inter-ocular distance. */
  yawDepth: number;
  /** Where the nose tip lies between the eye line (0) and the mouth line (1) on a frontal face. */
  frontalNose: number;
  /** Depth of the nose tip ahead of the eye centres, relative to the eye-to-mouth height. */
  noseDepth: number;
  /** Depth of the mouth corners ahead of the eye centres, relative to the eye-to-mouth height. */
  mouthDepth: number;
}

export const DEFAULT_POSE_MODEL: PoseModel = {
  yawDepth: 0.5,
  frontalNose: 0.53,
  noseDepth: 0.5,
  mouthDepth: 0.03,
};

const DEG = 180 / Math.PI;

/**
 * Yaw, pitch and roll of a face from its five landmarks (left eye, right eye, nose, left and right
 * mouth corner, as seen in the image), under weak perspective.
 *
 * - Roll is the angle of the eye line: exact up to landmark noise, as alignment uses it too.
 * - The other two are read in the face's own frame, after undoing the roll. A turned head moves
 *   the nose tip, which stands out of the face, off the midline through the eye and mouth midpoints;
 *   its offset over the (equally foreshortened) inter-ocular distance is `yawDepth·tan(yaw)`.
 * - A nodding head moves the nose tip up or down between the eye line and the mouth line: with
 *   `t` its relative height there, `t = (t0 + b·tan p) / (1 + c·tan p)` for the model's `t0, b, c`.
 *
 * Five points under-determine a 3D pose and the model is one mean face: on scene photos expect
 * yaw within about 6° and pitch within about 10° (plus the face's own nose length: see
 * `PoseModel`), worse on tight crops and beyond 45°, where the far eye's landmark is a guess. Good
 * for "roughly frontal or not", not for measuring. Roll is good to 2° (photos rotated by ±20° and
 * 40° read within 1.4–1.9° of the rotation on average). Squeezing an image sideways leaves yaw as
 * it was: offset and inter-ocular distance shrink together, and the pose really is unchanged.
 */
export function estimatePose(landmarks: readonly Point[], model: PoseModel = DEFAULT_POSE_MODEL): Pose {
  if (landmarks.length !== 5) throw new Error(`estimatePose: expected 5 landmarks, got ${landmarks.length}`);
  const [le, re, nose, lm, rm] = landmarks;
  const ex = re[0] - le[0];
  const ey = re[1] - le[1];
  const iod = Math.hypot(ex, ey);
  const rollRad = Math.atan2(ey, ex);
  const eyeMid: Point = [(le[0] + re[0]) / 2, (le[1] + re[1]) / 2];
  const mouthMid: Point = [(lm[0] + rm[0]) / 2, (lm[1] + rm[1]) / 2];
  // Into the face's frame: origin between the eyes, x along the eye line, y towards the mouth.
  const cos = Math.cos(rollRad);
  const sin = Math.sin(rollRad);
  const local = (p: Point): Point => {
    const dx = p[0] - eyeMid[0];
    const dy = p[1] - eyeMid[1];
    return [dx * cos + dy * sin, -dx * sin + dy * cos];
  };
  const n = local(nose);
  const m = local(mouthMid);
  const height = m[1];
  if (!(iod > 0) || !(height > 0)) {
    // Mouth above the eyes: upside down or garbage landmarks; nothing below means anything.
    return { yaw: NaN, pitch: NaN, roll: rollRad * DEG };
  }
  const t = n[1] / height;
  const midlineX = m[0] * t;
  const yaw = Math.atan((n[0] - midlineX) / iod / model.yawDepth) * DEG;
  const { frontalNose: t0, noseDepth: b, mouthDepth: c } = model;
  const pitch = Math.atan2(t - t0, b - c * t) * DEG;
  return { yaw, pitch, roll: rollRad * DEG };
}
