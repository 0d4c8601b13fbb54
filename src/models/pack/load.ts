import { CropAttribute, type Attribute } from '../attributes';
import { BlazeFaceDetector } from '../blazeface';
import { OnnxEmbedder, type EmbedderConfig } from '../embedder';
import { FaceApiSsdDetector } from '../faceapiSsd';
import { FaceMeshLandmarker, type Landmarker } from '../facemesh';
import type { Detector, Embedder, SessionOptions } from '../roles';
import { ModelLoadError, openSession, signatureOf } from '../session';
import { buildModels, builtPaths, isBuilt } from './build';
import './builders';
import { modelCacheDir } from './cache';
import { loadSources, type ModelSource } from './sources';

/** Extra settings an embedder's source manifest carries (`"embedder": {...}`). */
type EmbedderSettings = Omit<EmbedderConfig, 'maxBatch'>;

export type PackModel = Detector | Embedder | Landmarker;

/**
 * Open a model of the pack by id, building it into the cache first when it is not built yet
 * (normally `npm install` has built it already).
 */
export async function loadPackModel(id: string, options: SessionOptions = {}): Promise<PackModel> {
  const { source, session } = await openBuilt(id, options);
  try {
    return wrap(source, session);
  } catch (err) {
    await session.release();
    throw err;
  }
}

/** Attribute names and the packaged model behind each. */
export const ATTRIBUTES: Record<string, string> = {
  'age-gender': 'human-faceres',
  emotion: 'human-emotion',
  antispoof: 'human-antispoof',
  liveness: 'human-liveness',
};

/** Open an attribute estimator by name (`age-gender`, `emotion`, `antispoof`, `liveness`). */
export async function loadAttribute(name: string, options: SessionOptions = {}): Promise<Attribute> {
  const id = ATTRIBUTES[name];
  if (!id)
    throw new ModelLoadError(`unknown attribute '${name}' (known: ${Object.keys(ATTRIBUTES).join(', ')})`);
  const { source, session } = await openBuilt(id, options);
  try {
    return new CropAttribute(name, source.family, session, signatureOf(session));
  } catch (err) {
    await session.release();
    throw err;
  }
}

/**
 * Which of these packaged models are not built yet (ids that name no packaged model, e.g. file paths, are
 * left out): opening them builds them first, which a status line should say.
 */
export function unbuiltModels(ids: readonly (string | undefined)[]): string[] {
  const sources = loadSources();
  const cacheDir = modelCacheDir();
  return ids.flatMap((id) => {
    const source = id ? sources.find((s) => s.id === id) : undefined;
    // The stamp alone: opening the models checks each file once more, and builds what fails the check.
    return source && !isBuilt(source, cacheDir, { checkOnnx: false }) ? [source.id] : [];
  });
}

async function openBuilt(id: string, options: SessionOptions) {
  const source = loadSources().find((s) => s.id === id);
  if (!source) throw new ModelLoadError(`unknown packaged model '${id}' (see 'faceflow models list')`);
  const cacheDir = modelCacheDir();
  if (!isBuilt(source, cacheDir)) {
    const [report] = await buildModels({ ids: [id], cacheDir });
    if (report.status === 'failed') throw new ModelLoadError(`${id}: could not be built: ${report.error}`);
    // Rare and not fatal (the plain graph works), but a slower detector should not go unexplained.
    if (report.warning) process.emitWarning(report.warning, 'FaceflowModelWarning');
  }
  const session = await openSession(builtPaths(source, cacheDir).onnxPath, {
    ...options,
    threads: options.threads ?? source.threads,
  });
  return { source, session };
}

function wrap(source: ModelSource, session: Awaited<ReturnType<typeof openSession>>): PackModel {
  const signature = signatureOf(session);
  switch (source.family) {
    case 'blazeface':
      return new BlazeFaceDetector(source.id, session, signature);
    case 'faceapi-ssd':
      return new FaceApiSsdDetector(source.id, session);
    case 'facemesh':
      return new FaceMeshLandmarker(source.id, session, signature);
    default: {
      const settings = (source as ModelSource & { embedder?: EmbedderSettings }).embedder;
      if (source.role !== 'embedder' || !settings) {
        throw new ModelLoadError(
          `${source.id}: a ${source.role} of family ${source.family} cannot be used for faces yet`,
        );
      }
      return new OnnxEmbedder(source.id, session, signature, settings);
    }
  }
}

export { PACKS, packsWithEmbedder, type PackSpec } from './packs';
