import type { Node, NodeAPI, NodeDef } from 'node-red';

import { FaceFlow } from '../src/faceflow';
import { PACKS } from '../src/models/pack/load';

interface ModelsDef extends NodeDef {
  pack: string;
  detector?: string;
  embedder?: string;
  threads?: string | number;
  scoreThreshold?: string | number;
}

export interface ModelsNode extends Node {
  /** The models, opened once on first use and shared by every node that uses this config. */
  faceflow(): Promise<FaceFlow>;
}

/**
 * `faceflow-models` config node: which models the other faceflow nodes run. Opening models takes a
 * second or two and a few hundred MB, so one config node opens them once, on first use, for every
 * node that points at it, and releases them when the flow is stopped or redeployed.
 */
module.exports = (RED: NodeAPI) => {
  function FaceflowModelsNode(this: ModelsNode, def: ModelsDef) {
    RED.nodes.createNode(this, def);
    const pack = def.pack || 'default';
    let opening: Promise<FaceFlow> | undefined;
    this.faceflow = () => {
      if (!PACKS[pack]) {
        return Promise.reject(
          new Error(`unknown model pack '${pack}' (known: ${Object.keys(PACKS).join(', ')})`),
        );
      }
      opening ??= FaceFlow.open({
        pack,
        detector: def.detector || undefined,
        embedder: def.embedder || undefined,
        threads: numberOrUndefined(def.threads),
        detect: { scoreThreshold: numberOrUndefined(def.scoreThreshold) },
      }).catch((err: Error) => {
        opening = undefined; // a later message may try again (e.g. after `faceflow models build`)
        throw err;
      });
      return opening;
    };
    this.on('close', (done: () => void) => {
      const closing = opening;
      opening = undefined;
      (closing ?? Promise.resolve(undefined))
        .then((flow) => flow?.dispose())
        .catch(() => undefined)
        .then(() => done());
    });
  }
  RED.nodes.registerType('faceflow-models', FaceflowModelsNode);
};

function numberOrUndefined(value: string | number | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}
