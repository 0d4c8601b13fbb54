import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadWeights, type LoadedWeight, type WeightGroup } from '../tfjs/weights';

export const FACE_API_PACKAGE = '@vladmandic/face-api';

/** The `model/` folder of the installed `@vladmandic/face-api` package, with a clear error when it is missing. */
export function faceApiModelDir(): string {
  let pkgJson: string;
  try {
    pkgJson = require.resolve(`${FACE_API_PACKAGE}/package.json`);
  } catch {
    throw new Error(
      `the face-api models come from the npm package '${FACE_API_PACKAGE}', which is not installed ` +
        `(npm install ${FACE_API_PACKAGE})`,
    );
  }
  const dir = path.join(path.dirname(pkgJson), 'model');
  if (!existsSync(dir)) {
    throw new Error(`${FACE_API_PACKAGE} is installed at ${path.dirname(pkgJson)} but has no model/ folder`);
  }
  return dir;
}

/** Read and dequantise one face-api model's weights (`<name>-weights_manifest.json` and its shards). */
export function loadFaceApiWeights(modelDir: string, name: string): Map<string, LoadedWeight> {
  const manifest = path.join(modelDir, `${name}-weights_manifest.json`);
  if (!existsSync(manifest)) {
    throw new Error(
      `${modelDir} has no ${name}-weights_manifest.json (is it ${FACE_API_PACKAGE}'s model folder?)`,
    );
  }
  const groups = JSON.parse(readFileSync(manifest, 'utf8')) as WeightGroup[];
  return loadWeights(groups, modelDir);
}

/** The weight called `name`, as float32, checked against the expected shape. */
export function weightOf(weights: Map<string, LoadedWeight>, name: string, shape?: number[]): Float32Array {
  const w = weights.get(name);
  if (!w) throw new Error(`face-api weights: '${name}' is missing`);
  if (shape && (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i]))) {
    throw new Error(
      `face-api weights: '${name}' has shape [${w.shape.join(',')}], expected [${shape.join(',')}]`,
    );
  }
  if (!(w.data instanceof Float32Array)) throw new Error(`face-api weights: '${name}' is not float32`);
  return w.data;
}

/**
 * TensorFlow filter layout [kh, kw, in, out] to ONNX Conv's [out, in, kh, kw], each output filter
 * multiplied by `scale[out]` when given (folds a per-channel affine that follows the convolution).
 */
export function hwioToOihw(
  data: Float32Array,
  [kh, kw, cin, cout]: number[],
  scale?: Float32Array,
): Float32Array {
  const out = new Float32Array(data.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < cin; i++) {
        const src = ((y * kw + x) * cin + i) * cout;
        for (let o = 0; o < cout; o++) {
          const v = data[src + o];
          out[((o * cin + i) * kh + y) * kw + x] = scale ? v * scale[o] : v;
        }
      }
    }
  }
  return out;
}
