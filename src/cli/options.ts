import { promises as fs } from 'node:fs';

import { FaceFlow } from '../faceflow';
import type { Face, Identity } from '../types';
import { UsageError } from './errors';

/** Options every command that runs models understands. */
export const MODEL_OPTIONS = {
  models: { type: 'string' },
  detector: { type: 'string' },
  embedder: { type: 'string' },
  landmarker: { type: 'string' },
  pack: { type: 'string' },
  threads: { type: 'string' },
  threshold: { type: 'string' },
  'score-threshold': { type: 'string' },
} as const;

export const MODEL_HELP = `Model options:
  --models DIR          folder of .onnx models (default: $FACEFLOW_MODELS, else the built-in pack)
  --detector FILE|ID    detector: an .onnx file or a built-in model id ('faceflow models list')
  --embedder FILE|ID    embedder: an .onnx file or a built-in model id
  --landmarker ID|none  landmarker refining the detector's five points
  --pack NAME           built-in model pack for the roles not given (default: default)
  --threads N           CPU threads per model (default: 1 for the detector, one per core for the others)
  --threshold X         cosine similarity for "same person" (default: the embedder's)
  --score-threshold X   minimum face detection score (default: the detector's, 0.5 SCRFD, 0.6 BlazeFace)`;

export interface ModelArgs {
  models?: string;
  detector?: string;
  embedder?: string;
  landmarker?: string;
  pack?: string;
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

export async function openFaceFlow(
  args: ModelArgs,
  env = process.env,
  attributes: string[] = [],
): Promise<FaceFlow> {
  const threads = parseNumber('threads', args.threads, 1, 256);
  if (threads !== undefined && !Number.isInteger(threads))
    throw new UsageError('--threads must be a whole number');
  const scoreThreshold = parseNumber('score-threshold', args['score-threshold'], 0, 1);
  parseNumber('threshold', args.threshold, -1, 1); // fail on a bad value before the slow model load
  const models = args.models ?? (env.FACEFLOW_MODELS || undefined);
  return FaceFlow.open({
    models,
    detector: args.detector,
    embedder: args.embedder,
    landmarker: args.landmarker,
    pack: args.pack,
    attributes,
    threads,
    detect: scoreThreshold === undefined ? {} : { scoreThreshold },
  });
}

export function thresholdOf(args: ModelArgs, flow: FaceFlow): number {
  return parseNumber('threshold', args.threshold, -1, 1) ?? flow.threshold;
}

export const round = (x: number, digits = 4): number => Number(x.toFixed(digits));

/** One named face as the commands print it (identify, gallery match): rounded, `ambiguous` only when set. */
export function namedFaceJson(face: Face, id: Identity): Record<string, unknown> {
  return {
    box: face.box.map((v) => round(v, 1)),
    score: round(face.score),
    identity: id.name,
    similarity: round(id.similarity),
    margin: round(id.margin),
    ...(id.ambiguous ? { ambiguous: true } : {}),
    top: id.topK.map((c) => ({ name: c.name, similarity: round(c.similarity) })),
  };
}

/** A key or passphrase read from the file an option names; a trailing newline (`echo … > keyfile`) is not part of it. */
export async function readKeyFile(option: string, file: string): Promise<string> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--${option}: cannot read ${file} (${(err as NodeJS.ErrnoException).code})`);
  }
  return text.replace(/\r?\n$/, '');
}
