import { ModelProto } from './schema';

/**
 * The same ONNX model with the free dimensions of its first input fixed to `shape`. ONNX Runtime plans a model
 * whose input size it knows ahead better than one it learns at run time: BlazeFace built with a free size ran
 * 15 % slower at 256×160 than the same graph declared 256×160 (bench/RESULTS.md), and its
 * `freeDimensionOverrides` option did not close the gap. So a model is built once with a free size and opened
 * fixed for each size it is run at.
 *
 * Only for models faceflow's own builders wrote: the model is decoded with the part of the ONNX schema those
 * builders use (schema.ts), and a field it does not know would be lost.
 */
export function withFixedInputShape(model: Uint8Array, shape: readonly number[]): Buffer {
  if (shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new RangeError(`withFixedInputShape: [${shape.join(',')}] is not a shape of positive sizes`);
  }
  const decoded = ModelProto.decode(model) as unknown as {
    graph?: { input?: { name?: string; type?: { tensorType?: { shape?: { dim?: Dimension[] } } } }[] };
  };
  const input = decoded.graph?.input?.[0];
  const dims = input?.type?.tensorType?.shape?.dim;
  if (!input || !dims) throw new Error('withFixedInputShape: the model declares no input shape');
  if (dims.length !== shape.length) {
    throw new Error(
      `withFixedInputShape: input '${input.name}' has ${dims.length} dimensions, not ${shape.length}`,
    );
  }
  dims.forEach((dim, i) => {
    const fixed = Number(dim.dimValue ?? 0);
    if (fixed > 0 && fixed !== shape[i]) {
      throw new Error(
        `withFixedInputShape: input '${input.name}' fixes dimension ${i} at ${fixed}, not ${shape[i]}`,
      );
    }
    dims[i] = { dimValue: shape[i] };
  });
  return Buffer.from(ModelProto.encode(decoded).finish());
}

interface Dimension {
  dimValue?: number | { toString(): string };
  dimParam?: string;
}
