import * as ort from 'onnxruntime-node';
import type { SessionOptions } from './roles';

export class ModelLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelLoadError';
  }
}

/** Open an ONNX file on the CPU, turning ONNX Runtime's low-level failures into a clear message. */
export async function openSession(path: string, options: SessionOptions = {}): Promise<ort.InferenceSession> {
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    // Idle ONNX Runtime threads spin by default. In a pipeline the detector, the embedder and
    // libvips take turns on a few cores, and one model's spinning threads starve the next stage
    // (measured: full frame 1.5× the sum of its stages on 2 cores). Sleeping threads avoid that.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
  if (options.threads !== undefined) {
    if (!Number.isInteger(options.threads) || options.threads < 1) {
      throw new ModelLoadError(`threads must be a positive integer, got ${options.threads}`);
    }
    sessionOptions.intraOpNumThreads = options.threads;
    sessionOptions.interOpNumThreads = 1;
  }
  try {
    return await ort.InferenceSession.create(path, sessionOptions);
  } catch (err) {
    const reason = (err as Error).message.split('\n')[0];
    throw new ModelLoadError(`${path}: cannot load as an ONNX model (${reason})`);
  }
}

export interface TensorSignature {
  name: string;
  /** Dimensions; a string or -1 for a dynamic one. */
  shape: (number | string)[];
}

export interface ModelSignature {
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

export function signatureOf(session: ort.InferenceSession): ModelSignature {
  const describe = (meta: readonly ort.InferenceSession.ValueMetadata[]): TensorSignature[] =>
    meta.map((m) => ({ name: m.name, shape: m.isTensor ? [...m.shape] : [] }));
  return { inputs: describe(session.inputMetadata), outputs: describe(session.outputMetadata) };
}

/** A dimension is fixed when it is a positive number; names, '?' and -1 mean dynamic. */
export function fixedDim(dim: number | string | undefined): number | undefined {
  return typeof dim === 'number' && dim > 0 ? dim : undefined;
}
