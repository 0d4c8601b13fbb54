import type { Node, NodeAPI, NodeDef } from 'node-red';
import { lastValueFrom, of } from 'rxjs';

import {
  DEFAULT_QUALITY_THRESHOLDS,
  qualityGate,
  type QualityGateOptions,
  type QualityThresholds,
} from '../src/quality';
import { isFrame } from '../src/image/frameInput';
import { frameAndFaces, type FrameMessage } from './lib/frames';
import { handleInput, StatusThrottle } from './lib/runtime';
import { translator } from './lib/i18n';

/** The limits a person can set in the editor; each left empty takes its default. */
const LIMITS = [
  'minSize',
  'minSharpness',
  'minBrightness',
  'maxBrightness',
  'minContrast',
  'maxYaw',
  'maxPitch',
  'maxRoll',
] as const satisfies readonly (keyof QualityThresholds)[];

type QualityGateDef = NodeDef & { mode?: string } & Partial<Record<(typeof LIMITS)[number], string | number>>;

/**
 * `faceflow-quality-gate`: scores every face (`face.quality`) and marks (`face.rejected`) or drops
 * those too small, blurred, dark, bright, flat or turned to recognise well. A message with
 * `msg.topic` "thresholds" and no frame is answered with the limits in force (see
 * `thresholdsInForce`).
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  function FaceflowQualityGateNode(this: Node, def: QualityGateDef) {
    RED.nodes.createNode(this, def);
    const options: QualityGateOptions = { mode: def.mode === 'drop' ? 'drop' : 'mark' };
    const invalid: string[] = [];
    for (const key of LIMITS) {
      const raw = def[key];
      if (raw === undefined || raw === '') continue;
      const n = Number(raw);
      if (Number.isFinite(n)) options[key] = n;
      else invalid.push(key);
    }
    const gate = qualityGate(options);
    const status = new StatusThrottle(this);
    if (invalid.length > 0)
      this.status({
        fill: 'red',
        shape: 'ring',
        text: t('faceflow-quality-gate.status.notANumber', { fields: invalid.join(', ') }),
      });
    else this.status({});

    handleInput<FrameMessage>(this, async (msg, send) => {
      if (msg.topic === 'thresholds' && !isFrame(msg.payload)) {
        // Asked, not computed elsewhere: a flow that tells its clients the rules (the HTTP API
        // example's GET /faces/quality) would otherwise copy the numbers and drift from them.
        if (invalid.length > 0) throw new Error(`quality limits that are not numbers: ${invalid.join(', ')}`);
        msg.payload = thresholdsInForce(options);
        send(msg);
        return;
      }
      // A typo in a limit would otherwise pass faces that the person meant to stop.
      if (invalid.length > 0) throw new Error(`quality limits that are not numbers: ${invalid.join(', ')}`);
      const { frame, faces } = frameAndFaces(msg);
      const gated = await lastValueFrom(of({ frame, faces }).pipe(gate));
      msg.faces = gated.faces;
      const failed = faces.length - gated.faces.filter((f) => !(f as { rejected?: unknown }).rejected).length;
      const passed = { passed: faces.length - failed, count: faces.length, dropped: failed };
      status.show(
        t(
          `faceflow-quality-gate.status.${options.mode === 'drop' && failed ? 'passedDropped' : 'passed'}`,
          passed,
        ),
      );
      send(msg);
    });
  }
  RED.nodes.registerType('faceflow-quality-gate', FaceflowQualityGateNode);
};

/**
 * The mode and every limit this gate applies: its own where set, the defaults elsewhere. The
 * eye-openness limit applies only to faces that carry a face mesh, which detect alone does not give.
 */
function thresholdsInForce(options: QualityGateOptions): Record<string, number | string> {
  const { mode = 'mark', ...set } = options;
  const limits: Record<string, number> = { ...DEFAULT_QUALITY_THRESHOLDS };
  for (const [key, value] of Object.entries(set)) if (typeof value === 'number') limits[key] = value;
  return { mode, ...limits };
}
