import type { Node, NodeAPI, NodeDef } from 'node-red';

import { failedQualityGate } from '../src/quality/rejected';
import { stageMetrics } from '../src/metrics';
import type { ModelsNode } from './faceflow-models';
import { frameAndFaces, type FrameMessage } from './lib/frames';
import { registerMetricsAdmin } from './lib/metricsAdmin';
import { chosenConfig } from './lib/configs';
import { asSetup, handleInput, SetupError, StatusThrottle } from './lib/runtime';
import { translator } from './lib/i18n';

interface EmbedDef extends NodeDef {
  models: string;
}

/**
 * `faceflow-embed`: gives every face of a frame message its `embedding` (aligning the faces that
 * have no crop of the embedder's size first), in one batch per message.
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  registerMetricsAdmin(RED);

  function FaceflowEmbedNode(this: Node, def: EmbedDef) {
    RED.nodes.createNode(this, def);
    const models = chosenConfig<ModelsNode>(RED, def.models, 'faceflow-models');
    const status = new StatusThrottle(this);
    if (!models) this.status({ fill: 'red', shape: 'ring', text: t('faceflow-embed.status.noModels') });
    else this.status({});

    const stopTelling = models?.onBuilding(() =>
      this.status({ fill: 'yellow', shape: 'ring', text: t('common.status.buildingModels') }),
    );
    // The models node outlives a partial redeploy: this node stops listening when it goes.
    this.on('close', () => stopTelling?.());
    handleInput<FrameMessage>(this, async (msg, send) => {
      if (!models) throw new SetupError(t('common.error.noModels'));
      const { frame, faces } = frameAndFaces(msg);
      const flow = await asSetup(models.faceflow());
      const bytes = flow.embedder.inputSize * flow.embedder.inputSize * 3;
      // A crop of another size came from an align node on other models; FaceFlow keeps any crop it finds.
      for (const face of faces) if (face.aligned && face.aligned.length !== bytes) delete face.aligned;
      // A face the quality gate turned down would never be named: its embedding is not worth the time.
      const wanted = faces.filter((f) => !failedQualityGate(f));
      const started = performance.now();
      await flow.embedFaces(frame, wanted);
      const ms = performance.now() - started;
      const n = wanted.length;
      // A frame without faces costs nothing to embed; counting it would pull the percentiles towards 0.
      if (n > 0) stageMetrics(frame.cameraId).embedded(ms / 1000);
      status.show(t('faceflow-embed.status.embedded', { count: n, ms: Math.round(ms) }));
      send(msg);
    });
  }
  RED.nodes.registerType('faceflow-embed', FaceflowEmbedNode);
};
