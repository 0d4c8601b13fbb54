import * as ort from 'onnxruntime-node';
import { ThreadSession } from './inferenceThread';
import type { SessionOptions } from './roles';

/** What ModelSession needs of a session: ONNX Runtime's own, or one on the inference thread. */
interface SessionBackend {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  readonly outputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  run(feeds: ort.InferenceSession.FeedsType): Promise<ort.InferenceSession.ReturnType>;
  release(): Promise<void>;
}

/** `FACEFLOW_INFERENCE=worker` runs every model on the inference thread (inferenceThread.ts) instead of the caller's. */
export const INFERENCE_ENV = 'FACEFLOW_INFERENCE';

/**
 * Where sessions run unless SessionOptions say: on the calling thread, or on the inference thread when the
 * environment says `worker`. The calling thread is the default because it costs less CPU: measured on 2 cores
 * (bench/RESULTS.md, issue 19), the hop to the thread and back added 1.5-3 CPU-ms a frame to one camera, while
 * with 8 cameras it let 4 % more frames through and kept the event loop free.
 */
export function defaultInferenceThread(): 'worker' | 'main' {
  const value = process.env[INFERENCE_ENV]?.trim().toLowerCase();
  if (value === undefined || value === '' || value === 'main') return 'main';
  if (value === 'worker') return 'worker';
  throw new ModelLoadError(
    `${INFERENCE_ENV} must be 'worker' or 'main', got '${process.env[INFERENCE_ENV]}'`,
  );
}

export class ModelLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelLoadError';
  }
}

/** A run asked of a model after it was released: the flow or script using it stopped (or was redeployed). */
export class ModelReleasedError extends Error {
  /** `what`: the model or models asked, e.g. "the model /x/y.onnx". */
  constructor(what: string) {
    super(`${what}: released, its models were closed (the flow stopped or was redeployed)`);
    this.name = 'ModelReleasedError';
  }
}

/**
 * An ONNX Runtime session that lets the runs under way finish before it is released, and refuses later
 * ones with {@link ModelReleasedError}. Models are released on a redeploy while frames are still in
 * flight; ONNX Runtime itself would fail those with a bare "Session already disposed", and releasing
 * the native session under a running inference is not something to rely on.
 */
export class ModelSession {
  private readonly running = new Set<Promise<unknown>>();
  private releasing: Promise<void> | undefined;

  constructor(
    private readonly session: SessionBackend,
    readonly path: string,
  ) {}

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  get inputMetadata(): readonly ort.InferenceSession.ValueMetadata[] {
    return this.session.inputMetadata;
  }

  get outputMetadata(): readonly ort.InferenceSession.ValueMetadata[] {
    return this.session.outputMetadata;
  }

  get released(): boolean {
    return this.releasing !== undefined;
  }

  run(feeds: ort.InferenceSession.FeedsType): Promise<ort.InferenceSession.ReturnType> {
    if (this.releasing) return Promise.reject(new ModelReleasedError(`the model ${this.path}`));
    const run = this.session.run(feeds);
    this.running.add(run);
    const forget = () => this.running.delete(run);
    run.then(forget, forget);
    return run;
  }

  /** Waits for the runs under way (whatever their outcome), then frees the native session. Once only. */
  release(): Promise<void> {
    this.releasing ??= Promise.allSettled([...this.running]).then(() => this.session.release());
    return this.releasing;
  }
}

/** Open an ONNX file on the CPU, turning ONNX Runtime's low-level failures into a clear message. */
export async function openSession(path: string, options: SessionOptions = {}): Promise<ModelSession> {
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
  const where = options.inferenceThread ?? defaultInferenceThread();
  if (where !== 'worker' && where !== 'main') {
    throw new ModelLoadError(`inferenceThread must be 'worker' or 'main', got '${String(where)}'`);
  }
  try {
    const session =
      where === 'worker'
        ? await ThreadSession.open(path, sessionOptions)
        : await ort.InferenceSession.create(path, sessionOptions);
    return new ModelSession(session, path);
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

export function signatureOf(session: ModelSession): ModelSignature {
  const describe = (meta: readonly ort.InferenceSession.ValueMetadata[]): TensorSignature[] =>
    meta.map((m) => ({ name: m.name, shape: m.isTensor ? [...m.shape] : [] }));
  return { inputs: describe(session.inputMetadata), outputs: describe(session.outputMetadata) };
}

/** A dimension is fixed when it is a positive number; names, '?' and -1 mean dynamic. */
export function fixedDim(dim: number | string | undefined): number | undefined {
  return typeof dim === 'number' && dim > 0 ? dim : undefined;
}
