import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadWeights, type LoadedWeight, type WeightGroup } from './weights';

/** One attribute value of a TensorFlow NodeDef, as the TFJS converter writes it to JSON. */
export interface TfAttr {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  type?: string;
  shape?: TfShapeProto;
  list?: { s?: string[]; i?: (string | number)[]; f?: number[]; b?: boolean[]; type?: string[] };
  tensor?: unknown;
}

interface TfShapeProto {
  dim?: { size?: string | number }[];
  unknownRank?: boolean;
}

/** One node of a TFJS graph model (a TensorFlow NodeDef). */
export interface TfNode {
  name: string;
  op: string;
  /** Data inputs as `node` or `node:index`; control dependencies (`^node`) are dropped. */
  input: string[];
  attr: Record<string, TfAttr>;
}

export interface TfGraphInput {
  name: string;
  /** NHWC for images; -1 marks a dynamic dimension. */
  shape: number[];
  dtype: string;
}

export interface TfGraphOutput {
  /** The producing node's name (without an output index). */
  name: string;
  /** The output's key in `signature.outputs`, when the model has one. */
  key?: string;
}

export interface TfGraph {
  /** The model.json path, for messages. */
  file: string;
  nodes: TfNode[];
  inputs: TfGraphInput[];
  outputs: TfGraphOutput[];
  weights: Map<string, LoadedWeight>;
}

interface ModelJson {
  format?: string;
  modelTopology?: { node?: unknown; class_name?: string; model_config?: unknown };
  weightsManifest?: WeightGroup[];
  signature?: { outputs?: Record<string, { name?: string }> };
}

/** Split `node:1` into its node name and output index; `^node` (a control input) gives null. */
export function parseInputRef(ref: string): { node: string; index: number } | null {
  if (ref.startsWith('^')) return null;
  const m = /^(.*):(\d+)$/.exec(ref);
  return m ? { node: m[1], index: Number(m[2]) } : { node: ref, index: 0 };
}

/** Decode a base64 string attribute (`padding`, `data_format`, ...). */
export function attrString(node: TfNode, key: string): string | undefined {
  const s = node.attr[key]?.s;
  return s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8');
}

export function attrStrings(node: TfNode, key: string): string[] {
  return (node.attr[key]?.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString('utf8'));
}

export function attrInts(node: TfNode, key: string): number[] | undefined {
  const list = node.attr[key]?.list;
  if (!list) return undefined;
  return (list.i ?? []).map(Number);
}

export function attrInt(node: TfNode, key: string): number | undefined {
  const i = node.attr[key]?.i;
  return i === undefined ? undefined : Number(i);
}

export function attrFloat(node: TfNode, key: string): number | undefined {
  return node.attr[key]?.f;
}

export function attrBool(node: TfNode, key: string): boolean | undefined {
  return node.attr[key]?.b;
}

function shapeOf(proto: TfShapeProto | undefined): number[] | undefined {
  if (!proto || proto.unknownRank) return undefined;
  return (proto.dim ?? []).map((d) => Number(d.size ?? -1));
}

/**
 * Read a TensorFlow.js graph model: `model.json` and the weight shards beside it. Throws a clear
 * error for a missing file, a file that is not JSON, a layers model, or a manifest without weights.
 */
export function readTfjsGraph(modelJsonPath: string): TfGraph {
  const file = path.resolve(modelJsonPath);
  if (!existsSync(file)) throw new Error(`TFJS model not found: ${file}`);
  let json: ModelJson;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as ModelJson;
  } catch (err) {
    throw new Error(`TFJS model ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new Error(`TFJS model ${file} is not a model.json object`);
  }
  const topology = json.modelTopology;
  if (json.format === 'layers-model' || topology?.class_name !== undefined || topology?.model_config) {
    throw new Error(`TFJS model ${file} is a layers model; only graph models (format 'graph-model') convert`);
  }
  if (json.format !== undefined && json.format !== 'graph-model') {
    throw new Error(`TFJS model ${file} has format '${json.format}'; only 'graph-model' converts`);
  }
  if (!topology || !Array.isArray(topology.node)) {
    throw new Error(`TFJS model ${file} has no modelTopology.node list: not a graph model`);
  }
  if (!Array.isArray(json.weightsManifest)) throw new Error(`TFJS model ${file} has no weightsManifest`);

  const nodes: TfNode[] = (topology.node as Partial<TfNode>[]).map((n, i) => {
    if (typeof n?.name !== 'string' || typeof n.op !== 'string') {
      throw new Error(`TFJS model ${file}: node #${i} has no name or op`);
    }
    return {
      name: n.name,
      op: n.op,
      input: (n.input ?? []).filter((ref) => !ref.startsWith('^')),
      attr: n.attr ?? {},
    };
  });

  const dir = path.dirname(file);
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      if (!existsSync(path.join(dir, p))) throw new Error(`TFJS model ${file}: weights file ${p} not found`);
    }
  }
  const weights = loadWeights(json.weightsManifest, dir);

  const inputs: TfGraphInput[] = nodes
    .filter((n) => n.op === 'Placeholder')
    .map((n) => ({
      name: n.name,
      shape: shapeOf(n.attr.shape?.shape) ?? [],
      dtype: n.attr.dtype?.type ?? 'DT_FLOAT',
    }));

  return { file, nodes, inputs, outputs: findOutputs(json, nodes), weights };
}

/** `signature.outputs` when present; otherwise every node that nothing consumes. */
function findOutputs(json: ModelJson, nodes: TfNode[]): TfGraphOutput[] {
  const sig = json.signature?.outputs;
  if (sig && Object.keys(sig).length > 0) {
    return Object.entries(sig).map(([key, spec]) => {
      const ref = parseInputRef(spec.name ?? key);
      if (!ref || ref.index !== 0) throw new Error(`signature output '${key}' refers to '${spec.name}'`);
      return { name: ref.node, key };
    });
  }
  const consumed = new Set<string>();
  for (const n of nodes) for (const ref of n.input) consumed.add(parseInputRef(ref)?.node ?? '');
  return nodes
    .filter((n) => !consumed.has(n.name) && n.op !== 'Const' && n.op !== 'Placeholder' && n.op !== 'NoOp')
    .map((n) => n.name)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    .map((name) => ({ name }));
}
