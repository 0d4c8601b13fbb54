import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { isEmbedderSignature, OnnxEmbedder, type EmbedderNormalization } from './embedder';
import { findManifest, loadManifests, type ModelManifest } from './manifest';
import { declareSimilarityScale } from './similarityScale';
import type { Detector, Embedder, FaceModel, SessionOptions } from './roles';
import { isScrfdSignature, ScrfdDetector, type ScrfdOptions } from './scrfd';
import { ModelLoadError, openSession, signatureOf, type ModelSignature } from './session';

/** ArcFace's published preprocessing; used for embedders we have no manifest for. */
export const ARCFACE_NORMALIZATION: EmbedderNormalization = {
  channels: 'rgb',
  mean: [127.5, 127.5, 127.5],
  std: [127.5, 127.5, 127.5],
};
/** A cautious guess for unknown embedders: calibrate with `faceflow eval` and write a manifest. */
export const FALLBACK_THRESHOLD = 0.4;

export interface LoadOptions extends SessionOptions, ScrfdOptions {}

export type ModelFamily = 'scrfd' | 'arcface';

/** Recognise what an ONNX model is from its input/output signature alone. */
export function classifySignature(sig: ModelSignature): ModelFamily | undefined {
  if (isScrfdSignature(sig)) return 'scrfd';
  if (isEmbedderSignature(sig)) return 'arcface';
  return undefined;
}

function describeSignature(sig: ModelSignature): string {
  const t = (x: { name: string; shape: (number | string)[] }) => `${x.name}[${x.shape.join(',')}]`;
  return `inputs ${sig.inputs.map(t).join(' ')}; outputs ${sig.outputs.map(t).join(' ')}`;
}

export interface LoadedModel {
  model: FaceModel;
  manifest?: ModelManifest;
}

/** Open an ONNX file and wrap it in the class for its family. */
export async function loadModel(file: string, options: LoadOptions = {}): Promise<LoadedModel> {
  if (!existsSync(file)) throw new ModelLoadError(`${file}: no such model file`);
  const session = await openSession(file, options);
  const signature = signatureOf(session);
  const family = classifySignature(signature);
  const id = path.basename(file).replace(/\.onnx$/i, '');
  if (family === undefined) {
    await session.release();
    throw new ModelLoadError(
      `${file}: unknown model (${describeSignature(signature)}); expected an SCRFD detector with keypoints ` +
        `(1 input, 9 outputs) or an embedder (N×3×S×S → N×D)`,
    );
  }
  const manifest = await findManifest(file);
  if (family === 'scrfd') {
    return { model: new ScrfdDetector(manifest?.id ?? id, session, signature, options), manifest };
  }
  const embedder = new OnnxEmbedder(manifest?.id ?? id, session, signature, {
    normalization: manifest?.normalization ?? ARCFACE_NORMALIZATION,
    defaultThreshold: manifest?.defaultThreshold ?? FALLBACK_THRESHOLD,
    flip: manifest?.flip ?? false,
  });
  if (manifest?.scale) declareSimilarityScale(embedder.id, manifest.scale);
  return { model: embedder, manifest };
}

export interface ModelPair {
  detector: Detector;
  embedder: Embedder;
  /** Files the pair was loaded from. */
  files: { detector: string; embedder: string };
}

/**
 * Pick a detector and an embedder from a folder of ONNX files. When several files fill a role,
 * the shipped manifests' preference decides, then the file name.
 */
export async function loadModelDir(dir: string, options: LoadOptions = {}): Promise<ModelPair> {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new ModelLoadError(`${dir}: no such model folder`);
  const files = readdirSync(dir)
    .filter((f) => f.toLowerCase().endsWith('.onnx'))
    .sort()
    .map((f) => path.join(dir, f));
  if (files.length === 0) throw new ModelLoadError(`${dir}: holds no .onnx model files`);
  const shipped = loadManifests();
  const ranked = await Promise.all(
    files.map(async (f) => ({ file: f, pref: (await findManifest(f, shipped))?.preference ?? 0 })),
  );
  ranked.sort((a, b) => b.pref - a.pref);
  let detector: { model: Detector; file: string } | undefined;
  let embedder: { model: Embedder; file: string } | undefined;
  const unusable: string[] = [];
  for (const { file } of ranked) {
    if (detector && embedder) break;
    let loaded: LoadedModel;
    try {
      loaded = await loadModel(file, options);
    } catch (err) {
      if (!(err instanceof ModelLoadError)) throw err;
      unusable.push(err.message); // not a face model: other files may be
      continue;
    }
    const m = loaded.model;
    if (m.role === 'detector' && !detector) detector = { model: m, file };
    else if (m.role === 'embedder' && !embedder) embedder = { model: m, file };
    else await m.dispose();
  }
  if (!detector || !embedder) {
    await detector?.model.dispose();
    await embedder?.model.dispose();
    const missing = !detector ? 'face detector (SCRFD with keypoints)' : 'face embedder';
    const why = unusable.length ? ` (unusable: ${unusable.join('; ')})` : '';
    throw new ModelLoadError(`${dir}: no ${missing} among its .onnx files${why}`);
  }
  return {
    detector: detector.model,
    embedder: embedder.model,
    files: { detector: detector.file, embedder: embedder.file },
  };
}
