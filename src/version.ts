import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/** The package version, read from package.json (two levels above the compiled dist/src). */
export function packageVersion(): string {
  const file = path.resolve(__dirname, '..', '..', 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}
