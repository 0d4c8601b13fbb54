import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

/** Each TypeScript file under a folder, with the relative modules it imports (resolved to files). */
export type ImportGraph = Map<string, string[]>;

// Static imports and re-exports (type-only ones too: a type cycle is a design cycle) and dynamic import().
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\b[^;'"]*?\bfrom\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

export function importGraph(root: string): ImportGraph {
  const graph: ImportGraph = new Map();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const file = path.join(dir, name);
      if (statSync(file).isDirectory()) walk(file);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) graph.set(file, importsOf(file));
    }
  };
  walk(root);
  return graph;
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith('.')) {
      out.push(spec); // a package: kept by name, for rules about packages
      continue;
    }
    const target = path.resolve(path.dirname(file), spec);
    out.push(resolveTs(target));
  }
  return out;
}

function resolveTs(target: string): string {
  for (const candidate of [`${target}.ts`, path.join(target, 'index.ts')]) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not this one
    }
  }
  return target;
}

/**
 * Every cycle of a directed graph, one per strongly connected component of two or more nodes (or a
 * node importing itself), each given as a path that starts and ends at the same node.
 */
export function cyclesOf(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      const selfLoop = (graph.get(v) ?? []).includes(v);
      if (component.length > 1 || selfLoop) components.push(component);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return components.map((c) => cyclePath(graph, new Set(c), c[c.length - 1]));
}

/** A concrete path round a component, from `start` back to it, so a failure shows where to cut. */
function cyclePath(graph: Map<string, string[]>, members: Set<string>, start: string): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift() as string;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const route = [v];
        while (route[0] !== start) route.unshift(previous.get(route[0]) as string);
        return [...route, start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** The graph between the folders right below `root` (files at the root are their own unit). */
export function folderGraph(graph: ImportGraph, root: string): Map<string, string[]> {
  const unit = (file: string) => {
    const rel = path.relative(root, file);
    if (rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
    const parts = rel.split(path.sep);
    return parts.length > 1 ? `${parts[0]}/` : parts[0];
  };
  const folders = new Map<string, Set<string>>();
  for (const [file, imports] of graph) {
    const from = unit(file) as string;
    const set = folders.get(from) ?? new Set<string>();
    folders.set(from, set);
    for (const target of imports) {
      const to = unit(target);
      if (to !== undefined && to !== from) set.add(to);
    }
  }
  return new Map([...folders].map(([k, v]) => [k, [...v].sort()]));
}
