import type { Node, NodeAPI, NodeDef } from 'node-red';

import { FaceFlow } from '../src/faceflow';
import { watchModels, type ModelsState } from '../src/metrics';
import { PACKS, unbuiltModels } from '../src/models/pack/load';
import { registerMetricsAdmin } from './lib/metricsAdmin';

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
  /**
   * Tells `listener` (with their ids) when opening the models must build some first: an install whose
   * scripts did not run (npm 11, `--ignore-scripts`) builds them at the first deploy, and the nodes that
   * wait say so in their status. Returns the function that stops telling.
   */
  onBuilding(listener: (ids: string[]) => void): () => void;
}

/**
 * `faceflow-models` config node: which models the other faceflow nodes run. Opening models takes a
 * second or two and a few hundred MB, so one config node opens them once, on first use, for every
 * node that points at it, and releases them when the flow is stopped or redeployed.
 */
module.exports = (RED: NodeAPI) => {
  registerMetricsAdmin(RED);

  function FaceflowModelsNode(this: ModelsNode, def: ModelsDef) {
    RED.nodes.createNode(this, def);
    const pack = def.pack || 'default';
    let opening: Promise<FaceFlow> | undefined;
    let state: ModelsState = 'idle';
    let loaded: FaceFlow | undefined;
    let error: string | undefined;
    const building = new Set<(ids: string[]) => void>();
    this.onBuilding = (listener) => {
      building.add(listener);
      return () => building.delete(listener);
    };
    const unwatch = watchModels(this.id, () => ({
      id: this.id,
      name: this.name || '',
      pack,
      state,
      ...(loaded ? { detector: loaded.detector.id, embedder: loaded.embedder.id } : {}),
      ...(error === undefined ? {} : { error }),
    }));
    this.faceflow = () => {
      if (!PACKS[pack]) {
        state = 'failed';
        error = `unknown model pack '${pack}' (known: ${Object.keys(PACKS).join(', ')})`;
        return Promise.reject(new Error(error));
      }
      if (!opening) {
        state = 'loading';
        const spec = PACKS[pack];
        const unbuilt = unbuiltModels([
          def.detector || spec.detector,
          def.embedder || spec.embedder,
          spec.landmarker,
        ]);
        if (unbuilt.length > 0) {
          this.log(
            `building the models ${unbuilt.join(', ')} for their first use (their install step did not run)`,
          );
          for (const listener of building) listener(unbuilt);
        }
      }
      opening ??= FaceFlow.open({
        pack,
        detector: def.detector || undefined,
        embedder: def.embedder || undefined,
        threads: numberOrUndefined(def.threads),
        detect: { scoreThreshold: numberOrUndefined(def.scoreThreshold) },
      }).then(
        (flow) => {
          state = 'loaded';
          loaded = flow;
          error = undefined;
          return flow;
        },
        (err: Error) => {
          opening = undefined; // a later message may try again (e.g. after `faceflow models build`)
          state = 'failed';
          error = err.message;
          throw err;
        },
      );
      return opening;
    };
    this.on('close', (done: () => void) => {
      unwatch();
      loaded = undefined;
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
