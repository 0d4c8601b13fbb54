import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/** One entry of a TensorFlow.js weights manifest. */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool' | string;
  quantization?: {
    dtype: 'uint8' | 'uint16' | 'float16';
    scale?: number;
    min?: number;
    original_dtype?: string;
  };
}

export interface WeightGroup {
  paths: string[];
  weights: WeightSpec[];
}

export interface LoadedWeight {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  data: Float32Array | Int32Array;
}

/** Bytes one stored value takes, before dequantisation. */
function storedBytes(spec: WeightSpec): number {
  const q = spec.quantization?.dtype;
  if (q === 'uint8') return 1;
  if (q === 'uint16' || q === 'float16') return 2;
  if (spec.dtype === 'float32' || spec.dtype === 'int32') return 4;
  if (spec.dtype === 'bool') return 1;
  throw new Error(`weight '${spec.name}': unsupported dtype ${spec.dtype}`);
}

/** IEEE 754 half precision to a JS number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/**
 * Read and dequantise every weight of a TFJS weights manifest. The groups' shard files are
 * concatenated in order; values are packed back to back in manifest order.
 */
export function loadWeights(groups: WeightGroup[], dir: string): Map<string, LoadedWeight> {
  const out = new Map<string, LoadedWeight>();
  for (const group of groups) {
    const bytes = Buffer.concat(group.paths.map((p) => readFileSync(path.join(dir, p))));
    let offset = 0;
    for (const spec of group.weights) {
      const count = spec.shape.reduce((a, b) => a * b, 1);
      const size = count * storedBytes(spec);
      if (offset + size > bytes.length) {
        throw new Error(
          `weight '${spec.name}' runs past the end of ${group.paths.join('+')} (truncated weights file?)`,
        );
      }
      const chunk = bytes.subarray(offset, offset + size);
      offset += size;
      out.set(spec.name, decode(spec, chunk, count));
    }
    if (offset !== bytes.length) {
      throw new Error(`${group.paths.join('+')}: ${bytes.length - offset} bytes left after the last weight`);
    }
  }
  return out;
}

function decode(spec: WeightSpec, chunk: Buffer, count: number): LoadedWeight {
  const q = spec.quantization;
  const base = { name: spec.name, shape: spec.shape };
  if (spec.dtype === 'int32' && !q) {
    const data = new Int32Array(count);
    for (let i = 0; i < count; i++) data[i] = chunk.readInt32LE(4 * i);
    return { ...base, dtype: 'int32', data };
  }
  if (spec.dtype === 'bool') {
    return { ...base, dtype: 'int32', data: Int32Array.from(chunk.subarray(0, count)) };
  }
  const data = new Float32Array(count);
  if (!q) {
    for (let i = 0; i < count; i++) data[i] = chunk.readFloatLE(4 * i);
  } else if (q.dtype === 'float16') {
    for (let i = 0; i < count; i++) data[i] = halfToFloat(chunk.readUInt16LE(2 * i));
  } else {
    // Affine quantisation: value = stored × scale + min.
    const scale = q.scale ?? 1;
    const min = q.min ?? 0;
    const read = q.dtype === 'uint8' ? (i: number) => chunk[i] : (i: number) => chunk.readUInt16LE(2 * i);
    for (let i = 0; i < count; i++) data[i] = read(i) * scale + min;
  }
  if (spec.dtype === 'int32') return { ...base, dtype: 'int32', data: Int32Array.from(data, Math.round) };
  return { ...base, dtype: 'float32', data };
}
