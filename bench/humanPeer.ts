/**
 * @vladmandic/human 3.3.6 as the peer for bench/live.ts: the same face models faceflow's default
 * pack converts to ONNX, run the way human runs them in Node when tfjs-node cannot be installed
 * (see ../shared/docs/NOTES.md): the wasm build, required by file path, on @tensorflow/tfjs-backend-wasm,
 * with its models served over loopback HTTP because its loader only fetches.
 */

import { existsSync, readFile } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { Frame } from '../src/types';

/** The part of human's API used here, typed locally: its own .d.ts drags in DOM types. */
interface HumanTensor {
  dispose(): void;
}
interface HumanResult {
  face: { embedding?: number[] }[];
}
interface HumanInstance {
  version: string;
  load(): Promise<void>;
  detect(input: HumanTensor, config?: Record<string, unknown>): Promise<HumanResult>;
  tf: {
    tensor3d(values: Uint8Array, shape: [number, number, number], dtype: 'int32'): HumanTensor;
    getBackend(): string;
    memory(): { numTensors: number };
  };
  env: { wasm: { simd?: boolean; multithread?: boolean } };
}
type HumanConstructor = new (config: Record<string, unknown>) => HumanInstance;

export interface PeerFrameResult {
  faces: number;
  /** Faces that got a face-description embedding. */
  descriptors: number;
}

export interface HumanPeer {
  version: string;
  /** Backend and how the wasm runs (SIMD, threads), as human reports it. */
  execution: string;
  /**
   * One frame: RGB buffer → int32 tensor → detect (face detection + mesh + description) → dispose.
   * `cache` lets human reuse earlier frames' results when frames look alike (its defaults);
   * without it every frame is analysed in full, the work faceflow does with detection every frame.
   */
  analyse(frame: Frame, cache: boolean): Promise<PeerFrameResult>;
}

/** As many faces as faceflow's chain would look at in these scenes, and then some. */
const PEER_MAX_FACES = 10;

/** human's default cacheSensitivity (config.ts): 0.7. */
const HUMAN_DEFAULT_CACHE = 0.7;

function humanFiles(): { build: string; models: string; wasm: string } {
  // The package's exports map only names builds without a leading './', so resolve its main entry
  // (which is not loaded) and take the wasm build beside it.
  const dist = path.dirname(require.resolve('@vladmandic/human'));
  return {
    build: path.join(dist, 'human.node-wasm.js'),
    models: path.join(dist, '..', 'models'),
    wasm: path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep,
  };
}

/** Why the peer cannot run here, or undefined when it can be tried. */
export function humanPeerMissing(): string | undefined {
  try {
    const files = humanFiles();
    for (const f of [files.build, path.join(files.models, 'faceres.json'), files.wasm]) {
      if (!existsSync(f)) return `${f} is missing`;
    }
    require.resolve('@tensorflow/tfjs-core');
    require.resolve('@tensorflow/tfjs-converter');
    return undefined;
  } catch (err) {
    return `cannot resolve a package human's wasm build needs: ${(err as Error).message.split('\n')[0]}`;
  }
}

function serveModels(dir: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    // basename() keeps requests inside the models folder.
    const file = path.join(dir, path.basename(decodeURIComponent((req.url ?? '/').split('?')[0])));
    readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, {
        'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      });
      res.end(data);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

export async function openHumanPeer(): Promise<HumanPeer> {
  const files = humanFiles();
  const server = await serveModels(files.models);
  const { port } = server.address() as AddressInfo;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Human } = require(files.build) as { Human: HumanConstructor };
    const human = new Human({
      backend: 'wasm',
      wasmPath: files.wasm,
      modelBasePath: `http://127.0.0.1:${port}/`,
      debug: false,
      cacheSensitivity: 0,
      face: {
        enabled: true,
        // human's default of 1 face would let it skip the mesh and embedding of everyone else in view.
        detector: { rotation: false, maxDetected: PEER_MAX_FACES },
        mesh: { enabled: true },
        iris: { enabled: false },
        description: { enabled: true },
        emotion: { enabled: false },
        antispoof: { enabled: false },
        liveness: { enabled: false },
        attention: { enabled: false },
      },
      body: { enabled: false },
      hand: { enabled: false },
      object: { enabled: false },
      gesture: { enabled: false },
      segmentation: { enabled: false },
      filter: { enabled: false },
    });
    await human.load();
    // Models are in memory now; the server is needed no longer.
    server.close();
    const wasm = human.env.wasm;
    const execution =
      `${human.tf.getBackend()}` +
      (wasm.simd === undefined ? '' : wasm.simd ? ', SIMD' : ', no SIMD') +
      (wasm.multithread ? ', multi-threaded' : ', single-threaded');
    return {
      version: human.version,
      execution,
      async analyse(frame, cache) {
        const input = human.tf.tensor3d(
          new Uint8Array(frame.rgb.buffer, frame.rgb.byteOffset, frame.rgb.length),
          [frame.height, frame.width, 3],
          'int32',
        );
        try {
          const result = await human.detect(input, { cacheSensitivity: cache ? HUMAN_DEFAULT_CACHE : 0 });
          return {
            faces: result.face.length,
            descriptors: result.face.filter((f) => (f.embedding?.length ?? 0) > 0).length,
          };
        } finally {
          input.dispose();
        }
      },
    };
  } catch (err) {
    server.close();
    throw err;
  }
}
