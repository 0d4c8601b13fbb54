import * as ort from 'onnxruntime-node';
import { permute } from '../tfjs/convert';

/**
 * The test input as the candidate takes it: as it is, or transposed when the candidate takes the NHWC image
 * as NCHW (`nchwInput`). Undefined when its input is neither.
 */
function inputFor(
  session: ort.InferenceSession,
  nhwc: Float32Array,
  shape: number[],
): ort.Tensor | undefined {
  const meta = session.inputMetadata[0];
  const dims = meta?.isTensor ? meta.shape : undefined;
  const fits = (want: number[]) => dims?.length === want.length && dims.every((d, i) => d === want[i]);
  if (!dims || fits(shape)) return new ort.Tensor('float32', nhwc, shape);
  if (shape.length !== 4) return undefined;
  const nchw = permute(nhwc, shape, [0, 3, 1, 2]);
  return fits(nchw.shape) ? new ort.Tensor('float32', nchw.data, nchw.shape) : undefined;
}

/** Largest difference allowed, relative to the largest reference value: float rounding, not a change. */
const TOLERANCE = 1e-4;

/**
 * Do two ONNX models compute the same function? Both are run on the same fixed pseudo-random input of
 * `inputShape` (values in [-1, 1], what image models are fed) and every output is compared.
 */
export async function sameFunction(
  reference: Buffer,
  candidate: Buffer,
  inputShape: number[],
): Promise<{ same: boolean; why: string }> {
  if (!inputShape.every((d) => Number.isInteger(d) && d > 0)) {
    return { same: false, why: `no fixed input shape to test with ([${inputShape.join(', ')}])` };
  }
  const size = inputShape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  let seed = 12345;
  for (let i = 0; i < size; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    data[i] = (seed / 0xffffffff) * 2 - 1;
  }
  const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  const [a, b] = await Promise.all([
    ort.InferenceSession.create(reference, options),
    ort.InferenceSession.create(candidate, options),
  ]);
  try {
    if (a.inputNames.length !== 1 || b.inputNames.length !== 1) {
      return { same: false, why: 'only models with one input are compared' };
    }
    const candidateInput = inputFor(b, data, inputShape);
    if (!candidateInput) {
      return { same: false, why: `the candidate's input is neither [${inputShape}] nor its NCHW form` };
    }
    const outA = await a.run({ [a.inputNames[0]]: new ort.Tensor('float32', data, inputShape) });
    const outB = await b.run({ [b.inputNames[0]]: candidateInput });
    for (const name of a.outputNames) {
      const x = outA[name];
      const y = outB[name];
      if (!y) return { same: false, why: `output '${name}' is missing` };
      if (x.dims.join() !== y.dims.join()) {
        return { same: false, why: `output '${name}' has shape [${y.dims}], not [${x.dims}]` };
      }
      const xs = x.data as Float32Array;
      const ys = y.data as Float32Array;
      let scale = 0;
      let worst = 0;
      for (let i = 0; i < xs.length; i++) {
        scale = Math.max(scale, Math.abs(xs[i]));
        const d = Math.abs(xs[i] - ys[i]);
        // NaN in either counts as a difference.
        worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
      }
      if (worst > TOLERANCE * Math.max(1, scale)) {
        return { same: false, why: `output '${name}' differs by up to ${worst} (values up to ${scale})` };
      }
    }
    return { same: true, why: '' };
  } finally {
    await Promise.all([a.release(), b.release()]);
  }
}
