import type { Node, NodeAPI, NodeDef } from 'node-red';

import { ALIGNED_SIZE, alignFace, arcfaceTemplate, framedTemplate } from '../src/align';
import type { Point } from '../src/types';
import type { ModelsNode } from './faceflow-models';
import { frameAndFaces, type FrameMessage } from './lib/frames';
import { asSetup, handleInput, SetupError, StatusThrottle } from './lib/runtime';
import { translator } from './lib/i18n';

interface AlignDef extends NodeDef {
  models?: string;
}

/**
 * `faceflow-align`: adds `aligned`, the square RGB crop an embedder takes, to every face of a frame
 * message. With a models configuration the crop is framed for that configuration's embedder, so an
 * `embed` node on the same configuration uses it as it is.
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  function FaceflowAlignNode(this: Node, def: AlignDef) {
    RED.nodes.createNode(this, def);
    const models = def.models ? (RED.nodes.getNode(def.models) as ModelsNode | null) : null;
    const status = new StatusThrottle(this);
    if (def.models && !models)
      this.status({ fill: 'red', shape: 'ring', text: t('faceflow-align.status.modelsMissing') });
    else this.status({});

    handleInput<FrameMessage>(this, async (msg, send) => {
      if (def.models && !models) throw new SetupError(t('common.error.modelsMissing'));
      const { frame, faces } = frameAndFaces(msg);
      let size = ALIGNED_SIZE;
      let template: Point[] = arcfaceTemplate(ALIGNED_SIZE);
      if (models) {
        const { embedder } = await asSetup(models.faceflow());
        size = embedder.inputSize;
        template = framedTemplate(embedder.framing);
      }
      const started = Date.now();
      for (const face of faces) face.aligned = alignFace(frame, face.landmarks, size, template).aligned;
      const n = faces.length;
      status.show(t('faceflow-align.status.aligned', { count: n, ms: Date.now() - started }));
      send(msg);
    });
  }
  RED.nodes.registerType('faceflow-align', FaceflowAlignNode);
};
