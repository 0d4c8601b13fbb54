import { concatMap, type OperatorFunction } from 'rxjs';
import type { Attribute } from '../models/attributes';
import type { Face, FaceFrame } from '../types';
import { assessQuality, type MeshFace, type QualityReason, type QualityThresholds } from './assess';

/**
 * A face after `qualityGate`: `quality` holds the scores (`QualityScores`, as numbers), and
 * `rejected` the reasons it failed, present only on a failed face in 'mark' mode. A separate field
 * rather than codes inside `quality`, so that `quality` stays numbers only and
 * `face.rejected === undefined` is the whole test for "use this face".
 */
export type GatedFace = Face & { rejected?: QualityReason[] };

export interface QualityGateOptions extends QualityThresholds {
  /**
   * 'mark' (default): keep every face, failed ones with `rejected`; for display, where a person
   * should see why a face is not recognised. 'drop': remove failed faces from `faces`; for
   * recognition, tracking and events, which should never see them.
   */
  mode?: 'drop' | 'mark';
  /**
   * Anti-spoof / liveness estimators (`loadAttribute('antispoof' | 'liveness')`) run on the faces
   * of each frame first, their scores merged into `face.attributes` and recorded as `real` /
   * `live`. Leave out when the faces already carry them (`FaceFlow.open({ attributes })`): those
   * are recorded either way.
   */
  spoofModels?: Attribute[];
}

/**
 * Scores every face (`face.quality`) and drops or marks those that fail (see `QualityGateOptions`).
 * Put it after detect (scores need landmarks only) and before embed, so that rejected faces cost
 * no embedding in 'drop' mode. Frames always pass, with fewer faces perhaps.
 */
export function qualityGate(options: QualityGateOptions = {}): OperatorFunction<FaceFrame, FaceFrame> {
  const { mode = 'mark', spoofModels = [], ...thresholds } = options;
  if (mode !== 'mark' && mode !== 'drop')
    throw new Error(`qualityGate: mode must be 'mark' or 'drop', got '${mode}'`);
  return concatMap(async ({ frame, faces }) => {
    let scored: MeshFace[] = faces;
    for (const model of spoofModels) scored = await runAttribute(model, frame, scored);
    const gated: GatedFace[] = [];
    for (const face of scored) {
      const { scores, passed, reasons } = assessQuality(frame, face, thresholds);
      if (!passed && mode === 'drop') continue;
      const out: GatedFace = { ...face, quality: { ...face.quality, ...scores } };
      // A mark from an earlier gate goes: this gate's verdict is the one that holds.
      if (passed) delete out.rejected;
      else out.rejected = reasons;
      gated.push(out);
    }
    return { frame, faces: gated };
  });
}

/** Runs one estimator on every face, merging its results into new face objects. */
async function runAttribute(
  model: Attribute,
  frame: FaceFrame['frame'],
  faces: MeshFace[],
): Promise<MeshFace[]> {
  if (faces.length === 0) return faces;
  const results = await model.analyze(frame, faces);
  return faces.map((f, i) => ({ ...f, attributes: { ...f.attributes, ...results[i] } }));
}
