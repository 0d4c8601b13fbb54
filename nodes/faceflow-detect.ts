import type { Node, NodeAPI, NodeDef } from 'node-red';

import { frameFromInput, isFrame } from '../src/image/frameInput';
import { fitInside } from '../src/image/letterbox';
import type { Detector } from '../src/models/roles';
import { StillSceneGate } from '../src/pipeline/stillScene';
import { stageMetrics } from '../src/metrics';
import type { Face, Frame } from '../src/types';
import { pendingDetectorPicture } from '../src/util/i420';
import type { ModelsNode } from './faceflow-models';
import { registerMetricsAdmin } from './lib/metricsAdmin';
import { chosenConfig } from './lib/configs';
import { asSetup, handleInput, SetupError, StatusThrottle } from './lib/runtime';
import type { FrameMessage } from './lib/frames';
import { translator } from './lib/i18n';

interface DetectDef extends NodeDef {
  models: string;
  scoreThreshold?: string | number;
  /** Skip the detector on still frames of an empty scene (camera frames only). Absent: on. */
  skipStill?: boolean;
}

/**
 * `faceflow-detect`: finds the faces in `msg.payload` (a frame from `rtsp-in`, image bytes or a
 * file path) and sends the message on with `msg.payload` as the frame and `msg.faces` (box, score,
 * five landmarks per face). Other message properties pass through.
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  registerMetricsAdmin(RED);

  function FaceflowDetectNode(this: Node, def: DetectDef) {
    RED.nodes.createNode(this, def);
    const models = chosenConfig<ModelsNode>(RED, def.models, 'faceflow-models');
    const scoreThreshold =
      def.scoreThreshold === undefined || def.scoreThreshold === '' ? undefined : Number(def.scoreThreshold);
    const status = new StatusThrottle(this);
    // One gate per node: its cameras are the topics of the frames it is sent.
    const still = def.skipStill === false ? undefined : new StillSceneGate();
    // Cameras already told that their detector picture does not fit these models (once each).
    const toldPictureSize = new Set<string>();
    const checkPicture = (frame: Frame, detector: Detector) => {
      const picture = pendingDetectorPicture(frame);
      const box = detector.inputBox;
      if (!picture || !box || toldPictureSize.has(frame.cameraId)) return;
      const inner = fitInside(frame.width, frame.height, box.width, box.height);
      if (inner.width === picture.width && inner.height === picture.height) return;
      toldPictureSize.add(frame.cameraId);
      this.warn(
        t('faceflow-detect.warn.pictureSize', {
          camera: frame.cameraId || '?',
          picture: `${picture.width}×${picture.height}`,
          size: box.width === box.height ? String(box.width) : `${box.width}×${box.height}`,
        }),
      );
    };
    if (!models) {
      this.status({ fill: 'red', shape: 'ring', text: t('faceflow-detect.status.noModels') });
    } else {
      this.status({});
    }
    const stopTelling = models?.onBuilding(() =>
      this.status({ fill: 'yellow', shape: 'ring', text: t('common.status.buildingModels') }),
    );
    // The models node outlives a partial redeploy: this node stops listening when it goes.
    this.on('close', () => stopTelling?.());
    handleInput<FrameMessage>(this, async (msg, send) => {
      if (!models) throw new SetupError(t('common.error.noModels'));
      // Only camera frames are gated: two photos in a row are not one scene.
      const fromCamera = isFrame(msg.payload);
      const frame: Frame = await frameFromInput(msg.payload, {
        cameraId: typeof msg.topic === 'string' ? msg.topic : '',
      });
      let faces: Face[] = [];
      if (still && fromCamera && !still.needsDetection(frame)) {
        stageMetrics(frame.cameraId).skipped();
        status.show(t('faceflow-detect.status.still'));
      } else {
        const flow = await asSetup(models.faceflow());
        if (fromCamera) checkPicture(frame, flow.detector);
        const started = performance.now();
        faces = await flow.detect(frame, scoreThreshold === undefined ? {} : { scoreThreshold });
        const ms = performance.now() - started;
        if (fromCamera) still?.detected(frame, faces.length);
        stageMetrics(frame.cameraId).detected(ms / 1000, faces.length);
        status.show(t('faceflow-detect.status.found', { count: faces.length, ms: Math.round(ms) }));
      }
      msg.payload = frame;
      msg.faces = faces;
      if (msg.topic === undefined && frame.cameraId) msg.topic = frame.cameraId;
      send(msg);
    });
  }
  RED.nodes.registerType('faceflow-detect', FaceflowDetectNode);
};
