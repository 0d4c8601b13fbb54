import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';

import type { Face } from '../src/types';
import type { ModelsNode } from './faceflow-models';
import { frameAndFaces } from './lib/frames';
import { handleInput, StatusThrottle } from './lib/runtime';

interface EmbedDef extends NodeDef {
  models: string;
}

type FrameMessage = NodeMessageInFlow & { payload: unknown; faces?: Face[] };

/**
 * `faceflow-embed`: gives every face of a frame message its `embedding` (aligning the faces that
 * have no crop of the embedder's size first), in one batch per message.
 */
module.exports = (RED: NodeAPI) => {
  function FaceflowEmbedNode(this: Node, def: EmbedDef) {
    RED.nodes.createNode(this, def);
    const models = RED.nodes.getNode(def.models) as ModelsNode | null;
    const status = new StatusThrottle(this);
    if (!models) this.status({ fill: 'red', shape: 'ring', text: 'no models configured' });
    else this.status({});

    handleInput<FrameMessage>(this, async (msg, send) => {
      if (!models) throw new Error('choose a faceflow-models configuration in this node');
      const { frame, faces } = frameAndFaces(msg);
      const flow = await models.faceflow();
      const bytes = flow.embedder.inputSize * flow.embedder.inputSize * 3;
      // A crop of another size came from an align node on other models; FaceFlow keeps any crop it finds.
      for (const face of faces) if (face.aligned && face.aligned.length !== bytes) delete face.aligned;
      const started = Date.now();
      await flow.embedFaces(frame, faces);
      const n = faces.length;
      status.show(`${n} face${n === 1 ? '' : 's'} embedded, ${Date.now() - started} ms`);
      send(msg);
    });
  }
  RED.nodes.registerType('faceflow-embed', FaceflowEmbedNode);
};
