import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

import * as api from '../src';
import { PROJECT_ROOT } from './helpers/shared';

const README = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
const INDEX = readFileSync(path.join(PROJECT_ROOT, 'src', 'index.ts'), 'utf8');

/** The names the README's script API table lists. */
function documented(): Set<string> {
  const start = README.indexOf('### The script API');
  assert.ok(start >= 0, 'the README has a "The script API" section');
  const section = README.slice(start, README.indexOf('\n### ', start + 10));
  const rows = section.split('\n').filter((l) => /^\| [a-z]/.test(l) && !l.startsWith('| area'));
  const names = new Set<string>();
  for (const row of rows) for (const m of row.split('|')[2].matchAll(/`([A-Za-z_]\w*)`/g)) names.add(m[1]);
  return names;
}

/** Every name a README code block imports from the package. */
function importedInReadme(): string[] {
  const names: string[] = [];
  for (const block of README.matchAll(/```ts\n([\s\S]*?)```/g)) {
    for (const m of block[1].matchAll(/import\s*\{([^}]*)\}\s*from\s*'node-red-contrib-faceflow'/g))
      names.push(
        ...m[1]
          .split(',')
          .map((n) => n.replace(/^\s*type\s+/, '').trim())
          .filter(Boolean),
      );
  }
  return names;
}

describe('the public API: what the README documents is what src/index.ts exports', () => {
  it('exports every value the README lists, and lists every value it exports', () => {
    const listed = documented();
    const exported = Object.keys(api);
    assert.deepEqual(
      exported.filter((n) => !listed.has(n)),
      [],
      'exported but not in the README',
    );
    assert.deepEqual(
      [...listed].filter((n) => !exported.includes(n)),
      [],
      'in the README but not exported',
    );
  });

  it("names only exported API in the README's code", () => {
    const imported = importedInReadme();
    assert.ok(imported.length >= 5, imported.join(', '));
    const missing = imported.filter(
      (n) => !(n in api) && !new RegExp(`\\btype ${n}\\b|\\b${n},`).test(INDEX),
    );
    assert.deepEqual(missing, []);
  });

  it('keeps internals out: alignment maths, ffmpeg plumbing, matching details', () => {
    for (const internal of ['warpAffineRgb', 'estimateSimilarity', 'ffmpegArgs', 'backoffDelay', 'dbscan'])
      assert.equal(internal in api, false, internal);
  });
});
