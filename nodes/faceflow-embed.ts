import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';

import { isFrame } from '../src/image/frameInput';
import type { Face, Frame } from '../src/types';
import type { ModelsNode } from './faceflow-models';
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

function frameAndFaces(msg: FrameMessage): { frame: Frame; faces: Face[] } {
  if (!isFrame(msg.payload)) throw new Error(notAFrame(msg.payload));
  if (!Array.isArray(msg.faces))
    throw new Error('msg.faces is missing: put a faceflow-detect node before this one');
  return { frame: msg.payload, faces: msg.faces };
}

function notAFrame(value: unknown): string {
  const what =
    value === null || value === undefined
      ? String(value)
      : Buffer.isBuffer(value)
        ? 'image bytes'
        : typeof value === 'string'
          ? `the string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 59)}…` : value)}`
          : Array.isArray(value)
            ? 'an array'
            : typeof value === 'object'
              ? 'an object that is not a frame'
              : typeof value;
  return `expected a frame in msg.payload (put a faceflow-detect node before this one), got ${what}`;
}
