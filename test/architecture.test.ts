import assert from 'node:assert/strict';
import * as path from 'node:path';

import { cyclesOf, folderGraph, importGraph } from './helpers/importGraph';
import { PROJECT_ROOT } from './helpers/shared';

const SRC = path.join(PROJECT_ROOT, 'src');
const NODES = path.join(PROJECT_ROOT, 'nodes');
const rel = (file: string) => path.relative(PROJECT_ROOT, file);

describe('architecture: what may import what', () => {
  const graph = importGraph(SRC);

  it('finds cycles in a graph, and none where there are none (the checker itself)', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
    ]);
    assert.deepEqual(
      cyclesOf(g)
        .map((c) => c.join('>'))
        .sort(),
      ['a>b>c>a', 'e>e'],
    );
    assert.deepEqual(
      cyclesOf(
        new Map([
          ['a', ['b']],
          ['b', []],
        ]),
      ),
      [],
    );
  });

  it('reads the imports of src/ (a sanity check that the walk found the code)', () => {
    assert.ok(graph.size > 100, `${graph.size} files`);
    const tracking = graph.get(path.join(SRC, 'tracking', 'operators.ts')) ?? [];
    assert.ok(tracking.includes(path.join(SRC, 'gallery', 'matcher.ts')), tracking.join(', '));
  });

  it('keeps the core free of Node-RED: nothing in src/ imports nodes/ or node-red', () => {
    const offending: string[] = [];
    for (const [file, imports] of graph) {
      for (const target of imports) {
        if (target.startsWith(NODES + path.sep) || target === 'node-red' || target.startsWith('@node-red/'))
          offending.push(`${rel(file)} → ${target.startsWith('/') ? rel(target) : target}`);
      }
    }
    assert.deepEqual(offending, []);
  });

  it('has no import cycle between modules of src/', () => {
    assert.deepEqual(
      cyclesOf(graph).map((c) => c.map(rel).join(' → ')),
      [],
    );
  });

  it('has no import cycle between the folders of src/ (pipeline, tracking, gallery, io, output, …)', () => {
    assert.deepEqual(
      cyclesOf(folderGraph(graph, SRC)).map((c) => c.join(' → ')),
      [],
    );
  });
});
