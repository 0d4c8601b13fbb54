import { existsSync } from 'node:fs';
import * as path from 'node:path';

/** The project root, from the compiled `dist/test/helpers/` or the source `test/helpers/`. */
export const PROJECT_ROOT = path.resolve(
  __dirname,
  __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..',
);

/** `../shared/data` beside the project: real photos and models for tests, never shipped. */
export const SHARED_DATA = path.resolve(PROJECT_ROOT, '..', 'shared', 'data');

export const hasSharedData = existsSync(path.join(SHARED_DATA, 'models'));

export function shared(...parts: string[]): string {
  return path.join(SHARED_DATA, ...parts);
}

export const MODELS = {
  scrfd500m: shared('models', 'scrfd_500m_bnkps.onnx'),
  scrfd2_5g: shared('models', 'scrfd_2.5g_bnkps.onnx'),
  mobilefacenetA: shared('models', 'mobilefacenet_128_a.onnx'),
  mobilefacenetB: shared('models', 'mobilefacenet_128_b.onnx'),
};

/**
 * Skip the calling suite with a clear reason when `../shared` is missing (it holds the real
 * photos and models; it is not part of the package). Call from a `before` hook.
 */
export function requireSharedData(ctx: Mocha.Context): void {
  if (!hasSharedData) {
    console.warn(`    skipped: needs real photos and models in ${SHARED_DATA} (not found)`);
    ctx.skip();
  }
}
