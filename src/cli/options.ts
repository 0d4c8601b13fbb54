import { FaceFlow } from '../faceflow';
import { UsageError } from './errors';

/** Options every command that runs models understands. */
export const MODEL_OPTIONS = {
  models: { type: 'string' },
  detector: { type: 'string' },
  embedder: { type: 'string' },
  threads: { type: 'string' },
  threshold: { type: 'string' },
  'score-threshold': { type: 'string' },
} as const;

export const MODEL_HELP = `Model options:
  --models DIR          folder of .onnx models (default: $FACEFLOW_MODELS)
  --detector FILE       detector model, overriding the folder's pick
  --embedder FILE       embedder model, overriding the folder's pick
  --threads N           CPU threads per model (default: ONNX Runtime's choice)
  --threshold X         cosine similarity for "same person" (default: the embedder's)
  --score-threshold X   minimum face detection score (default 0.5)`;

export interface ModelArgs {
  models?: string;
  detector?: string;
  embedder?: string;
  threads?: string;
  threshold?: string;
  'score-threshold'?: string;
}

export function parseNumber(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a number from ${min} to ${max}, got '${value}'`);
  }
  return n;
}

export async function openFaceFlow(args: ModelArgs, env = process.env): Promise<FaceFlow> {
  const threads = parseNumber('threads', args.threads, 1, 256);
  if (threads !== undefined && !Number.isInteger(threads))
    throw new UsageError('--threads must be a whole number');
  const scoreThreshold = parseNumber('score-threshold', args['score-threshold'], 0, 1);
  parseNumber('threshold', args.threshold, -1, 1); // fail on a bad value before the slow model load
  const models = args.models ?? (env.FACEFLOW_MODELS || undefined);
  if (!models && !(args.detector && args.embedder)) {
    throw new UsageError(
      'no face models: pass --models DIR, set FACEFLOW_MODELS, or give --detector and --embedder',
    );
  }
  return FaceFlow.open({
    models,
    detector: args.detector,
    embedder: args.embedder,
    threads,
    detect: scoreThreshold === undefined ? {} : { scoreThreshold },
  });
}

export function thresholdOf(args: ModelArgs, flow: FaceFlow): number {
  return parseNumber('threshold', args.threshold, -1, 1) ?? flow.threshold;
}

export const round = (x: number, digits = 4): number => Number(x.toFixed(digits));
