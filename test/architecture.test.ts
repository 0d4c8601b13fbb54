import assert from 'node:assert/strict';
import * as path from 'node:path';

import { cyclesOf, folderGraph, importGraph } from './helpers/importGraph';
import { PROJECT_ROOT } from './helpers/shared';

const SRC = path.join(PROJECT_ROOT, 'src');
const NODES = path.join(PROJECT_ROOT, 'nodes');
const rel = (file: string) => path.relative(PROJECT_ROOT, file);

/** The layers of docs/ARCHITECTURE.md: a folder may import only folders of a lower layer. */
const LAYERS: Record<string, number> = {
  'types.ts': 0,
  'version.ts': 0,
  'align/': 1,
  'image/': 1,
  'eval/': 0,
  'util/': 0,
  'models/': 2,
  'faceflow.ts': 3,
  'quality/': 3,
  'gallery/': 4,
  'tracking/': 5,
  'output/': 5,
  'pipeline/': 6,
  'io/': 6,
  'library/': 7,
  'metrics/': 7,
  'cli/': 8,
  'grpc/': 8,
  'http/': 8,
  'demo/': 8,
  'index.ts': 8,
};

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

  it('keeps to the layers of docs/ARCHITECTURE.md: each folder imports only lower layers', () => {
    const folders = folderGraph(graph, SRC);
    const unlisted = [...folders.keys()].filter((f) => LAYERS[f] === undefined);
    assert.deepEqual(unlisted, [], 'every folder of src/ has a layer in docs/ARCHITECTURE.md and here');
    const upward: string[] = [];
    for (const [from, targets] of folders) {
      for (const to of targets) {
        if (LAYERS[to] >= LAYERS[from]) upward.push(`${from} (${LAYERS[from]}) → ${to} (${LAYERS[to]})`);
      }
    }
    assert.deepEqual(upward, []);
  });

  it('has no import cycle between the folders of src/ (pipeline, tracking, gallery, io, output, …)', () => {
    assert.deepEqual(
      cyclesOf(folderGraph(graph, SRC)).map((c) => c.join(' → ')),
      [],
    );
  });
});
