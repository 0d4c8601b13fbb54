/**
 * The flow files we ship (examples/*.json for Import > Examples, flows/demo.json for npm start)
 * against the nodes' editor definitions: a node that lacks a property its editor defines opens
 * with a red "invalid" triangle, and one that holds a credential in the flow leaks it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';

import { PROJECT_ROOT } from './helpers/shared';

interface EditorDefinition {
  defaults: Record<
    string,
    { value?: unknown; validate?: (this: unknown, v: unknown) => boolean; required?: boolean }
  >;
  credentials?: Record<string, unknown>;
}

type FlowNode = Record<string, unknown> & { id: string; type: string };

/** Runs each node's editor script with a stand-in for the editor's RED, keeping what it registers. */
function editorDefinitions(): Map<string, EditorDefinition> {
  const found = new Map<string, EditorDefinition>();
  const red = {
    nodes: { registerType: (type: string, def: EditorDefinition) => found.set(type, def) },
    validators: {
      // The editor's own validators, as far as the definitions use them.
      regex: (re: RegExp) => (v: unknown) => re.test(String(v)),
      number: () => (v: unknown) => v === '' || !Number.isNaN(Number(v)),
    },
    _: (key: string) => key,
  };
  const dir = path.join(PROJECT_ROOT, 'nodes');
  for (const file of readdirSync(dir).filter((f) => /^faceflow-.*\.html$/.test(f))) {
    const html = readFileSync(path.join(dir, file), 'utf8');
    for (const m of html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)) {
      // Scripts that only build editor UI (a sidebar tab) need a real browser: they are not definitions.
      if (!m[1].includes('registerType')) continue;
      vm.runInNewContext(m[1], { RED: red, $: () => ({}) });
    }
  }
  return found;
}

function flowFiles(): { name: string; nodes: FlowNode[] }[] {
  const examples = readdirSync(path.join(PROJECT_ROOT, 'examples'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => path.join(PROJECT_ROOT, 'examples', f));
  return [...examples, path.join(PROJECT_ROOT, 'flows', 'demo.json')].map((file) => ({
    name: path.relative(PROJECT_ROOT, file),
    nodes: JSON.parse(readFileSync(file, 'utf8')) as FlowNode[],
  }));
}

describe('shipped flow files against the node definitions', () => {
  const definitions = editorDefinitions();

  it('finds every node type of package.json in the editor scripts', () => {
    const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
      'node-red': { nodes: Record<string, string> };
    };
    assert.deepEqual([...definitions.keys()].sort(), Object.keys(pkg['node-red'].nodes).sort());
  });

  it('keeps a face events node of a flow saved before the per-person and per-camera cooldowns valid', () => {
    const def = definitions.get('faceflow-face-events')!;
    const older: Record<string, unknown> = { id: 'old', type: 'faceflow-face-events', cooldown: '30' };
    for (const key of ['personCooldowns', 'cameraCooldowns']) {
      const validate = def.defaults[key].validate!;
      assert.equal(validate.call(older, older[key]), true, `${key} missing`);
      assert.equal(validate.call(older, 'Ann=0, Bob=3600'), true);
      assert.equal(validate.call(older, 'Ann=soon'), false);
    }
  });

  for (const { name, nodes } of flowFiles()) {
    it(`${name}: every faceflow node has each property its editor defines, valid, and no credentials`, () => {
      const ours = nodes.filter((n) => n.type.startsWith('faceflow-'));
      // A flow with none of our nodes must at least talk to one of our endpoints (the health alerts do).
      const asksFaceflow = nodes.some((n) => typeof n.url === 'string' && n.url.includes('/faceflow/'));
      assert.ok(ours.length > 0 || asksFaceflow, 'a flow that uses nothing of faceflow');
      const problems: string[] = [];
      for (const node of ours) {
        const def = definitions.get(node.type);
        if (!def) {
          problems.push(`${node.id}: unknown type ${node.type}`);
          continue;
        }
        for (const [key, spec] of Object.entries(def.defaults)) {
          if (!(key in node)) problems.push(`${node.id} (${node.type}) lacks '${key}'`);
          else if (spec.validate && !spec.validate.call(node, node[key]))
            problems.push(`${node.id} (${node.type}) has an invalid '${key}': ${JSON.stringify(node[key])}`);
        }
        for (const key of Object.keys(def.credentials ?? {})) {
          if (key in node || 'credentials' in node)
            problems.push(`${node.id} (${node.type}) holds credential '${key}'`);
        }
      }
      assert.deepEqual(problems, []);
    });
  }
});
