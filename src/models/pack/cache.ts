import { accessSync, constants, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The package's own folder: where `npm install` put us. */
const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..', '..');

function writable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where built models are kept: `$FACEFLOW_CACHE`, else `.cache/models` inside the package (so a
 * project's models live and die with its node_modules), else `~/.cache/faceflow/models` when the
 * package folder is read-only.
 */
export function modelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FACEFLOW_CACHE) return path.resolve(env.FACEFLOW_CACHE);
  const local = path.join(PACKAGE_ROOT, '.cache', 'models');
  if (writable(local)) return local;
  return path.join(os.homedir(), '.cache', 'faceflow', 'models');
}
