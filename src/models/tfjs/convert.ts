import * as path from 'node:path';
import { float, OnnxGraphBuilder, type AttrValue } from '../onnx/builder';
import {
  attrBool,
  attrFloat,
  attrInt,
  attrInts,
  attrString,
  attrStrings,
  parseInputRef,
  readTfjsGraph,
  type TfGraph,
  type TfNode,
} from './graphModel';
import type { LoadedWeight } from './weights';
import { rewriteGraph, type GraphRewrites } from './rewrite';

/** A dimension: a size, or a name for one only known at run time (the batch, "N"). */
export type Dim = number | string;

export interface ConvertOptions {
  /**
   * The input's NHWC shape. Numbers fix dimensions the model leaves dynamic (-1), e.g. batch 1;
   * a string keeps a dimension dynamic under that name. Dimensions the model fixes cannot change.
   * Default: the model's shape, with its dynamic batch named 'N'.
   */
  inputShape?: Dim[];
  /** ONNX names for outputs, keyed by TF node name or `signature.outputs` key. */
  outputNames?: Record<string, string>;
  /** Graph rewrites applied before converting (see rewrite.ts): the same function, run faster. */
  rewrites?: GraphRewrites;
}

export interface ConvertedOutput {
  /** The ONNX output name. */
  name: string;
  /** The TF node it comes from. */
  tfName: string;
  /** The shape, in TF's layout (as TFJS returns it). */
  shape?: Dim[];
}

export interface ConvertedModel {
  onnx: Buffer;
  /**
   * The ONNX input: float32, the TF placeholder's shape and NHWC layout, or NCHW (its shape permuted) when
   * `rewrites.nchwInput` asked for it.
   */
  input: { name: string; shape: Dim[] };
  outputs: ConvertedOutput[];
}

/**
 * A tensor of the TF graph as it exists in the ONNX graph under construction. `shape` is always
 * in TF's order. Four-dimensional activations live in ONNX as NCHW (`nchw: true`), everything else
 * keeps TF's layout. Constants stay unemitted (`konst`) until a consumer says how it wants them.
 */
interface Value {
  name: string;
  shape: Dim[];
  nchw: boolean;
  konst?: LoadedWeight;
}

/** Position in NCHW of each NHWC axis. */
const NHWC_TO_NCHW_AXIS = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];

/**
 * Convert a TensorFlow.js graph model (`model.json` + weight shards) to an ONNX model (opset 13)
 * that computes the same function: the same NHWC float32 input, the same output shapes and layout.
 * Internally convolutions run NCHW, with transposes only where the layout must match TF's.
 */
export function convertTfjsGraph(modelJsonPath: string, options: ConvertOptions = {}): ConvertedModel {
  return convertGraph(readTfjsGraph(modelJsonPath), options);
}

/** The same for a graph already read (and perhaps changed) in memory. */
export function convertGraph(read: TfGraph, options: ConvertOptions = {}): ConvertedModel {
  const graph = options.rewrites ? rewriteGraph(read, options.rewrites) : read;
  return new Converter(graph, options).convert();
}

class Converter {
  private readonly g: OnnxGraphBuilder;
  private readonly byName = new Map<string, TfNode>();
  private readonly values = new Map<string, Value>();
  private readonly layoutCache = new Map<string, string>();
  private readonly reserved = new Set<string>();
  private symbols = 0;

  constructor(
    private readonly graph: TfGraph,
    private readonly options: ConvertOptions,
  ) {
    this.g = new OnnxGraphBuilder(path.basename(graph.file, '.json'));
    for (const n of graph.nodes) {
      if (this.byName.has(n.name)) throw this.fail(n, 'duplicate node name');
      this.byName.set(n.name, n);
    }
  }

  convert(): ConvertedModel {
    const { graph } = this;
    if (graph.inputs.length !== 1) {
      throw new Error(
        `${graph.file}: ${graph.inputs.length} inputs (Placeholder nodes); only 1 is supported`,
      );
    }
    if (graph.outputs.length === 0) throw new Error(`${graph.file}: the graph has no outputs`);
    const outNames = graph.outputs.map((o) => this.outputName(o.name, o.key));
    if (new Set(outNames).size !== outNames.length) {
      throw new Error(`${graph.file}: output names clash: ${outNames.join(', ')}`);
    }
    for (const n of outNames) this.reserved.add(n);

    const input = this.declareInput();
    for (const node of this.order()) this.convertNode(node);

    const outputs: ConvertedOutput[] = graph.outputs.map((o, i) => {
      const v = this.values.get(o.name);
      if (!v) throw new Error(`${graph.file}: output '${o.name}' was not computed`);
      const name = outNames[i];
      this.g.alias(this.plain(v), name);
      const shape = v.shape.map((d, k) =>
        typeof d === 'number' ? d : this.isNamedDim(d) ? d : `${name}_${k}`,
      );
      this.g.output(name, shape);
      return { name, tfName: o.name, shape };
    });
    const onnx = this.g.toBuffer({ source: 'tfjs-graph-model', tfjs_model: path.basename(graph.file) });
    return { onnx, input, outputs };
  }

  // ---------------------------------------------------------------- graph walking

  private outputName(tfName: string, key?: string): string {
    const map = this.options.outputNames ?? {};
    if (map[tfName] !== undefined) return map[tfName];
    if (key !== undefined && map[key] !== undefined) return map[key];
    if (key !== undefined) return parseInputRef(key)?.node ?? key;
    return tfName;
  }

  private declareInput(): ConvertedModel['input'] {
    const ph = this.graph.inputs[0];
    const node = this.byName.get(ph.name) as TfNode;
    if (ph.dtype !== 'DT_FLOAT') throw this.fail(node, `input type ${ph.dtype}; only DT_FLOAT is supported`);
    const want = this.options.inputShape;
    let shape: Dim[];
    if (want) {
      if (ph.shape.length > 0 && want.length !== ph.shape.length) {
        throw this.fail(node, `inputShape has ${want.length} dims, the model's input has ${ph.shape.length}`);
      }
      shape = want.map((d, i) => {
        const fixed = ph.shape[i];
        if (fixed !== undefined && fixed >= 0 && d !== fixed) {
          throw this.fail(node, `inputShape[${i}] is ${d}, but the model fixes that dimension at ${fixed}`);
        }
        if (typeof d === 'number' && (!Number.isInteger(d) || d < 1)) return i === 0 ? 'N' : `d${i}`;
        return d;
      });
    } else {
      if (ph.shape.length === 0) throw this.fail(node, 'the input has no known rank; pass inputShape');
      shape = ph.shape.map((d, i) => (d >= 0 ? d : i === 0 ? 'N' : `d${i}`));
    }
    // An image input taken as NCHW goes straight into the convolutions, which run NCHW: no transpose.
    const nchw = this.options.rewrites?.nchwInput === true && shape.length === 4;
    const onnxShape = nchw ? TO_NCHW.map((i) => shape[i]) : shape;
    const name = this.g.input(ph.name, onnxShape);
    this.values.set(ph.name, { name, shape, nchw });
    return { name, shape: onnxShape };
  }

  /** The nodes the outputs depend on, inputs first. */
  private order(): TfNode[] {
    const state = new Map<string, 1 | 2>();
    const order: TfNode[] = [];
    const stack: [string, boolean, string][] = this.graph.outputs
      .map((o): [string, boolean, string] => [o.name, false, '(outputs)'])
      .reverse();
    while (stack.length > 0) {
      const [name, done, from] = stack.pop() as [string, boolean, string];
      const node = this.byName.get(name);
      if (!node) throw new Error(`${this.graph.file}: node '${from}' refers to missing node '${name}'`);
      if (done) {
        state.set(name, 2);
        order.push(node);
        continue;
      }
      const s = state.get(name);
      if (s === 2) continue;
      if (s === 1) throw this.fail(node, 'the graph has a cycle through this node');
      state.set(name, 1);
      stack.push([name, true, from]);
      for (let i = node.input.length - 1; i >= 0; i--) {
        const ref = parseInputRef(node.input[i]);
        if (!ref) continue;
        if (ref.index !== 0)
          throw this.fail(node, `input '${node.input[i]}': only output 0 of a node is supported`);
        if (state.get(ref.node) === 1) throw this.fail(node, 'the graph has a cycle through this node');
        if (state.get(ref.node) !== 2) stack.push([ref.node, false, name]);
      }
    }
    return order;
  }

  private fail(node: TfNode, message: string): Error {
    return new Error(`${path.basename(this.graph.file)}: ${node.op} node '${node.name}': ${message}`);
  }

  private isNamedDim(d: string): boolean {
    return !/^\?/.test(d);
  }

  /** A dimension nothing here can work out. */
  private unknownDim(): string {
    return `?${this.symbols++}`;
  }

  /** A hint for a new ONNX value that cannot take a name reserved for an output. */
  private hint(h: string): string {
    const clash = (x: string) =>
      [...this.reserved].some(
        (r) => r === x || (r.startsWith(`${x}_`) && /^\d+$/.test(r.slice(x.length + 1))),
      );
    let out = h;
    while (clash(out)) out += '_t';
    return out;
  }

  private emit(op: string, inputs: string[], attrs: Record<string, AttrValue>, hint: string): string {
    return this.g.node(op, inputs, attrs, this.hint(hint));
  }

  // ---------------------------------------------------------------- values and layouts

  private input(node: TfNode, i: number): Value {
    const ref = node.input[i] === undefined ? null : parseInputRef(node.input[i]);
    if (!ref) throw this.fail(node, `missing input ${i}`);
    const v = this.values.get(ref.node);
    if (!v) throw this.fail(node, `input '${ref.node}' is not converted yet`);
    return v;
  }

  private constOf(node: TfNode, i: number): LoadedWeight {
    const v = this.input(node, i);
    if (!v.konst) throw this.fail(node, `input ${i} ('${node.input[i]}') must be a constant`);
    return v.konst;
  }

  private constInts(node: TfNode, i: number): number[] {
    return Array.from(this.constOf(node, i).data, Number);
  }

  private cached(key: string, make: () => string): string {
    let name = this.layoutCache.get(key);
    if (name === undefined) {
      name = make();
      this.layoutCache.set(key, name);
    }
    return name;
  }

  private constant(k: LoadedWeight, data: Float32Array | Int32Array, dims: number[], hint: string): string {
    return this.g.constant(this.hint(hint), data, dims, k.dtype);
  }

  /** The tensor in TF's own layout. */
  private plain(v: Value): string {
    const k = v.konst;
    if (k) return this.cached(`plain|${k.name}`, () => this.constant(k, k.data, k.shape, k.name));
    if (!v.nchw) return v.name;
    return this.cached(`nhwc|${v.name}`, () =>
      this.emit('Transpose', [v.name], { perm: TO_NHWC }, `${v.name}/nhwc`),
    );
  }

  /** A four-dimensional tensor in NCHW. */
  private nchw(v: Value, node: TfNode): string {
    if (v.nchw) return v.name;
    if (v.shape.length !== 4) throw this.fail(node, `expects a 4-D input, got shape [${v.shape.join(',')}]`);
    const k = v.konst;
    if (k) {
      return this.cached(`nchw|${k.name}`, () => {
        const p = permute(k.data, k.shape, TO_NCHW);
        return this.constant(k, p.data, p.shape, `${k.name}/nchw`);
      });
    }
    return this.cached(`nchw|${v.name}`, () =>
      this.emit('Transpose', [v.name], { perm: TO_NCHW }, `${v.name}/nchw`),
    );
  }

  /**
   * An operand broadcast against a 4-D NCHW tensor: TF aligns trailing dimensions (…, C), so a
   * constant of shape [C] becomes [C,1,1] and any other is padded to rank 4 and permuted.
   */
  private operandNchw(v: Value, node: TfNode): string {
    const k = v.konst;
    if (!k) return this.nchw(v, node);
    if (k.shape.length > 4) throw this.fail(node, `constant of rank ${k.shape.length} against a 4-D tensor`);
    return this.cached(`bcast|${k.name}`, () => {
      if (k.shape.length === 0) return this.constant(k, k.data, [], k.name);
      if (k.shape.length === 1) return this.constant(k, k.data, [k.shape[0], 1, 1], `${k.name}/c11`);
      const full = [...Array(4 - k.shape.length).fill(1), ...k.shape];
      const p = permute(k.data, full, TO_NCHW);
      return this.constant(k, p.data, p.shape, `${k.name}/nchw`);
    });
  }

  private set(node: TfNode, name: string, shape: Dim[], nchw: boolean): void {
    this.values.set(node.name, { name, shape, nchw });
  }

  // ---------------------------------------------------------------- ops

  private convertNode(node: TfNode): void {
    switch (node.op) {
      case 'Placeholder':
        if (!this.values.has(node.name)) throw this.fail(node, 'only one input is supported');
        return;
      case 'Const': {
        const k = this.graph.weights.get(node.name);
        if (!k) throw this.fail(node, 'constant has no entry in the weights manifest');
        this.values.set(node.name, { name: '', shape: k.shape, nchw: false, konst: k });
        return;
      }
      case 'Identity':
      case 'StopGradient':
      case 'Snapshot':
        this.values.set(node.name, this.input(node, 0));
        return;
      case 'Conv2D':
      case '_FusedConv2D':
        return this.conv(node, false);
      case 'DepthwiseConv2dNative':
      case 'FusedDepthwiseConv2dNative':
        return this.conv(node, true);
      case 'MaxPool':
      case 'AvgPool':
        return this.pool(node);
      case 'Add':
      case 'AddV2':
      case 'BiasAdd':
        return this.binary(node, 'Add');
      case 'Sub':
        return this.binary(node, 'Sub');
      case 'Mul':
        return this.binary(node, 'Mul');
      case 'RealDiv':
        return this.binary(node, 'Div');
      case 'Maximum':
        return this.binary(node, 'Max');
      case 'Minimum':
        return this.binary(node, 'Min');
      case 'Prelu':
        return this.binary(node, 'PRelu');
      case 'Relu':
      case 'Relu6':
      case 'Elu':
      case 'Sigmoid':
      case 'Tanh':
      case 'LeakyRelu':
        return this.unaryActivation(node);
      case 'Softmax':
        return this.softmax(node);
      case 'Pad':
      case 'PadV2':
        return this.pad(node);
      case 'Reshape':
        return this.reshape(node);
      case 'ConcatV2':
        return this.concat(node);
      case 'Mean':
      case 'Max':
      case 'Min':
      case 'Sum':
        return this.reduce(node);
      case 'MatMul':
      case '_FusedMatMul':
        return this.matmul(node);
      default:
        throw new Error(
          `${path.basename(this.graph.file)}: unsupported TensorFlow op '${node.op}' (node '${node.name}')`,
        );
    }
  }

  private dataFormat(node: TfNode): void {
    const f = attrString(node, 'data_format') ?? 'NHWC';
    if (f !== 'NHWC') throw this.fail(node, `data_format ${f} is not supported (only NHWC)`);
  }

  /** [h, w] from an NHWC list attribute such as strides or dilations. */
  private hw(node: TfNode, key: string): [number, number] {
    const v = attrInts(node, key);
    if (!v || v.length === 0) return [1, 1];
    if (v.length !== 4 || v[0] !== 1 || v[3] !== 1)
      throw this.fail(node, `unsupported ${key} [${v.join(',')}]`);
    return [v[1], v[2]];
  }

  /** ONNX padding attributes and output spatial size for TF's padding mode. */
  private spatial(
    node: TfNode,
    input: Dim[],
    kernel: number[],
    strides: number[],
    dilations: number[],
  ): { attrs: Record<string, AttrValue>; out: Dim[] } {
    const padding = attrString(node, 'padding') ?? 'VALID';
    const eff = kernel.map((k, i) => (k - 1) * dilations[i] + 1);
    if (padding === 'SAME') {
      if (input.every((d) => typeof d === 'number')) {
        const begin: number[] = [];
        const end: number[] = [];
        const out = input.map((d, i) => {
          const size = d as number;
          const o = Math.ceil(size / strides[i]);
          const total = Math.max((o - 1) * strides[i] + eff[i] - size, 0);
          begin.push(Math.floor(total / 2));
          end.push(total - Math.floor(total / 2));
          return o;
        });
        return { attrs: { pads: [...begin, ...end] }, out };
      }
      return {
        attrs: { auto_pad: 'SAME_UPPER' },
        out: input.map((d, i) => (typeof d === 'number' ? Math.ceil(d / strides[i]) : this.unknownDim())),
      };
    }
    let begin = [0, 0];
    let end = [0, 0];
    if (padding === 'EXPLICIT') {
      const p = attrInts(node, 'explicit_paddings') ?? [];
      if (p.length !== 8) throw this.fail(node, `explicit_paddings [${p.join(',')}] is not 4×2`);
      begin = [p[2], p[4]];
      end = [p[3], p[5]];
    } else if (padding !== 'VALID') {
      throw this.fail(node, `padding ${padding} is not supported`);
    }
    const out = input.map((d, i) =>
      typeof d === 'number'
        ? Math.floor((d + begin[i] + end[i] - eff[i]) / strides[i]) + 1
        : this.unknownDim(),
    );
    return { attrs: { pads: [...begin, ...end] }, out };
  }

  private conv(node: TfNode, depthwise: boolean): void {
    this.dataFormat(node);
    const x = this.input(node, 0);
    const f = this.constOf(node, 1);
    if (f.shape.length !== 4) throw this.fail(node, `filter shape [${f.shape.join(',')}] is not 4-D`);
    if (x.shape.length !== 4) throw this.fail(node, `input shape [${x.shape.join(',')}] is not 4-D`);
    const [kh, kw, ci, co] = f.shape;
    const channels = x.shape[3];
    let weight: string;
    let group: number;
    let outChannels: number;
    if (depthwise) {
      // [kh, kw, C, m] → [C·m, 1, kh, kw]: output channel c·m + j applies filter (c, j) to channel c.
      outChannels = ci * co;
      group = ci;
      const p = permute(f.data, f.shape, [2, 3, 0, 1]);
      weight = this.constant(f, p.data, [outChannels, 1, kh, kw], `${f.name}/oihw`);
    } else {
      outChannels = co;
      group = typeof channels === 'number' ? channels / ci : 1;
      if (!Number.isInteger(group) || group < 1) {
        throw this.fail(node, `input has ${channels} channels, the filter ${ci}`);
      }
      const p = permute(f.data, f.shape, [3, 2, 0, 1]);
      weight = this.constant(f, p.data, p.shape, `${f.name}/oihw`);
    }
    const strides = this.hw(node, 'strides');
    const dilations = this.hw(node, 'dilations');
    const { attrs, out } = this.spatial(node, [x.shape[1], x.shape[2]], [kh, kw], strides, dilations);
    const inputs = [this.nchw(x, node), weight];
    let ops =
      node.op.startsWith('_Fused') || node.op.startsWith('Fused') ? attrStrings(node, 'fused_ops') : [];
    let next = 2;
    if (ops[0] === 'BiasAdd') {
      const b = this.constOf(node, next++);
      if (b.data.length !== outChannels)
        throw this.fail(node, `bias has ${b.data.length} values for ${outChannels}`);
      inputs.push(this.constant(b, b.data, [outChannels], b.name));
      ops = ops.slice(1);
    }
    const y = this.emit(
      'Conv',
      inputs,
      { ...attrs, kernel_shape: [kh, kw], strides, dilations, group },
      `${node.name}/conv`,
    );
    const shape = [x.shape[0], out[0], out[1], outChannels];
    this.set(node, this.activate(node, { name: y, shape, nchw: true }, ops, next), shape, true);
  }

  /** Apply a fused activation (the ops after BiasAdd in `fused_ops`); extra arguments start at `arg`. */
  private activate(node: TfNode, v: Value, ops: string[], arg: number): string {
    let name = v.name;
    for (const op of ops) {
      const hint = `${node.name}/${op.toLowerCase()}`;
      switch (op) {
        case 'Relu':
        case 'Sigmoid':
        case 'Tanh':
        case 'Elu':
          name = this.emit(op, [name], {}, hint);
          break;
        case 'Relu6':
          name = this.relu6(name, hint);
          break;
        case 'LeakyRelu':
          name = this.emit(
            'LeakyRelu',
            [name],
            { alpha: float(attrFloat(node, 'leakyrelu_alpha') ?? 0.2) },
            hint,
          );
          break;
        case 'Prelu': {
          const alpha = this.input(node, arg++);
          const slope = v.nchw ? this.operandNchw(alpha, node) : this.plain(alpha);
          name = this.emit('PRelu', [name, slope], {}, hint);
          break;
        }
        default:
          throw this.fail(
            node,
            `unsupported fused op '${op}' in fused_ops [${attrStrings(node, 'fused_ops')}]`,
          );
      }
    }
    return name;
  }

  private relu6(x: string, hint: string): string {
    const lo = this.cached('relu6|lo', () => this.g.constant(this.hint('relu6/min'), [0], []));
    const hi = this.cached('relu6|hi', () => this.g.constant(this.hint('relu6/max'), [6], []));
    return this.emit('Clip', [x, lo, hi], {}, hint);
  }

  private pool(node: TfNode): void {
    this.dataFormat(node);
    const x = this.input(node, 0);
    if (x.shape.length !== 4) throw this.fail(node, `input shape [${x.shape.join(',')}] is not 4-D`);
    const kernel = this.hw(node, 'ksize');
    const strides = this.hw(node, 'strides');
    const { attrs, out } = this.spatial(node, [x.shape[1], x.shape[2]], kernel, strides, [1, 1]);
    const op = node.op === 'MaxPool' ? 'MaxPool' : 'AveragePool';
    // TF's average pooling leaves padding out of the count, as ONNX does by default.
    const y = this.emit(op, [this.nchw(x, node)], { ...attrs, kernel_shape: kernel, strides }, node.name);
    this.set(node, y, [x.shape[0], out[0], out[1], x.shape[3]], true);
  }

  private binary(node: TfNode, op: string): void {
    const a = this.input(node, 0);
    const b = this.input(node, 1);
    let shape: Dim[];
    if (node.op === 'BiasAdd') {
      this.dataFormat(node);
      shape = a.shape;
    } else {
      shape = this.broadcast(node, a.shape, b.shape);
    }
    // NCHW when the result is a 4-D activation and every operand can be brought to it cheaply.
    const nchw =
      shape.length === 4 && (a.nchw || b.nchw) && [a, b].every((v) => v.konst || v.shape.length === 4);
    const names = [a, b].map((v) => (nchw ? this.operandNchw(v, node) : this.plain(v)));
    this.set(node, this.emit(op, names, {}, node.name), shape, nchw);
  }

  private broadcast(node: TfNode, a: Dim[], b: Dim[]): Dim[] {
    const rank = Math.max(a.length, b.length);
    const out: Dim[] = [];
    for (let i = 0; i < rank; i++) {
      const x = a[a.length - rank + i] ?? 1;
      const y = b[b.length - rank + i] ?? 1;
      if (x === y || y === 1) out.push(x);
      else if (x === 1) out.push(y);
      else if (typeof x === 'number' && typeof y === 'number') {
        throw this.fail(node, `shapes [${a.join(',')}] and [${b.join(',')}] do not broadcast`);
      } else out.push(typeof x === 'number' ? x : y);
    }
    return out;
  }

  private unaryActivation(node: TfNode): void {
    const x = this.input(node, 0);
    const v: Value = x.konst ? { name: this.plain(x), shape: x.shape, nchw: false } : x;
    const y = this.activate(node, v, [node.op], 1);
    this.set(node, y, v.shape, v.nchw);
  }

  private softmax(node: TfNode): void {
    const x = this.input(node, 0);
    const axis = x.nchw ? 1 : -1;
    this.set(
      node,
      this.emit('Softmax', [x.nchw ? x.name : this.plain(x)], { axis }, node.name),
      x.shape,
      x.nchw,
    );
  }

  private pad(node: TfNode): void {
    const x = this.input(node, 0);
    const p = this.constInts(node, 1);
    const rank = x.shape.length;
    if (p.length !== rank * 2) throw this.fail(node, `paddings of ${p.length} values for rank ${rank}`);
    let begin = Array.from({ length: rank }, (_, i) => p[2 * i]);
    let end = Array.from({ length: rank }, (_, i) => p[2 * i + 1]);
    const shape = x.shape.map((d, i) => (typeof d === 'number' ? d + begin[i] + end[i] : d));
    if (x.nchw) {
      begin = TO_NCHW.map((i) => begin[i]);
      end = TO_NCHW.map((i) => end[i]);
    }
    const inputs = [
      x.nchw ? x.name : this.plain(x),
      this.g.int64(this.hint(`${node.name}/pads`), [...begin, ...end]),
    ];
    if (node.op === 'PadV2') {
      const c = this.constOf(node, 2);
      inputs.push(this.constant(c, c.data, [], `${node.name}/value`));
    }
    this.set(node, this.emit('Pad', inputs, { mode: 'constant' }, node.name), shape, x.nchw);
  }

  private reshape(node: TfNode): void {
    const x = this.input(node, 0);
    const target = this.constInts(node, 1);
    if (target.some((d) => d === 0 || d < -1) || target.filter((d) => d === -1).length > 1) {
      throw this.fail(node, `unsupported target shape [${target.join(',')}]`);
    }
    // TF flattens in NHWC order, so an NCHW activation goes back to NHWC first.
    const shape: Dim[] = [...target];
    const hole = target.indexOf(-1);
    if (hole >= 0) {
      const known = target.reduce((a, d) => (d === -1 ? a : a * d), 1);
      const numeric = x.shape.reduce<number>((a, d) => (typeof d === 'number' ? a * d : a), 1);
      const named = x.shape.filter((d): d is string => typeof d === 'string');
      if (named.length === 0) shape[hole] = numeric / known;
      else if (named.length === 1 && numeric === known) shape[hole] = named[0];
      else shape[hole] = this.unknownDim();
    }
    const y = this.emit(
      'Reshape',
      [this.plain(x), this.g.int64(this.hint(`${node.name}/shape`), target)],
      {},
      node.name,
    );
    this.set(node, y, shape, false);
  }

  private concat(node: TfNode): void {
    const count = attrInt(node, 'N') ?? node.input.length - 1;
    const parts = Array.from({ length: count }, (_, i) => this.input(node, i));
    const [axisValue] = this.constInts(node, count);
    const rank = parts[0].shape.length;
    const axis = axisValue < 0 ? axisValue + rank : axisValue;
    if (axis < 0 || axis >= rank) throw this.fail(node, `axis ${axisValue} for rank ${rank}`);
    const nchw = rank === 4 && parts.some((v) => v.nchw);
    const names = parts.map((v) => (nchw ? this.nchw(v, node) : this.plain(v)));
    const shape = [...parts[0].shape];
    shape[axis] = parts.every((v) => typeof v.shape[axis] === 'number')
      ? parts.reduce((a, v) => a + (v.shape[axis] as number), 0)
      : this.unknownDim();
    const y = this.emit('Concat', names, { axis: nchw ? NHWC_TO_NCHW_AXIS[axis] : axis }, node.name);
    this.set(node, y, shape, nchw);
  }

  private reduce(node: TfNode): void {
    const x = this.input(node, 0);
    const rank = x.shape.length;
    const axes = [...new Set(this.constInts(node, 1).map((a) => (a < 0 ? a + rank : a)))].sort();
    if (axes.some((a) => a < 0 || a >= rank)) throw this.fail(node, `axes [${axes}] for rank ${rank}`);
    const keep = attrBool(node, 'keep_dims') ?? false;
    const shape = keep
      ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
      : x.shape.filter((_, i) => !axes.includes(i));
    // Reducing NCHW keeps TF's order of what is left only when C goes or H and W both go.
    const left = (order: number[]) => order.filter((i) => !axes.includes(i)).join();
    const nchw = x.nchw && (keep || left([0, 1, 2, 3]) === left(TO_NCHW));
    const onnxAxes = nchw ? axes.map((a) => NHWC_TO_NCHW_AXIS[a]).sort() : axes;
    const source = nchw ? x.name : this.plain(x);
    const keepdims = keep ? 1 : 0;
    let y: string;
    if (node.op === 'Sum') {
      y = this.emit(
        'ReduceSum',
        [source, this.g.int64(this.hint(`${node.name}/axes`), onnxAxes)],
        { keepdims },
        node.name,
      );
    } else {
      const op = { Mean: 'ReduceMean', Max: 'ReduceMax', Min: 'ReduceMin' }[node.op] as string;
      y = this.emit(op, [source], { axes: onnxAxes, keepdims }, node.name);
    }
    this.set(node, y, shape, nchw && keep);
  }

  private matmul(node: TfNode): void {
    const a = this.input(node, 0);
    const b = this.input(node, 1);
    if (a.shape.length !== 2 || b.shape.length !== 2) {
      throw this.fail(node, `only 2-D operands are supported, got [${a.shape}] × [${b.shape}]`);
    }
    const ta = attrBool(node, 'transpose_a') ?? false;
    const tb = attrBool(node, 'transpose_b') ?? false;
    const m = ta ? a.shape[1] : a.shape[0];
    const n = tb ? b.shape[0] : b.shape[1];
    const inputs = [this.plain(a), this.plain(b)];
    let ops = node.op === '_FusedMatMul' ? attrStrings(node, 'fused_ops') : [];
    let next = 2;
    if (ops[0] === 'BiasAdd') {
      inputs.push(this.plain(this.input(node, next++)));
      ops = ops.slice(1);
    }
    const attrs: Record<string, AttrValue> = {};
    if (ta) attrs.transA = 1;
    if (tb) attrs.transB = 1;
    const y = this.emit('Gemm', inputs, attrs, `${node.name}/gemm`);
    const shape = [m, n];
    this.set(node, this.activate(node, { name: y, shape, nchw: false }, ops, next), shape, false);
  }
}

/** Reorder the axes of a row-major tensor: output axis i is input axis perm[i]. */
export function permute<T extends Float32Array | Int32Array>(
  data: T,
  shape: number[],
  perm: number[],
): { data: T; shape: number[] } {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  const stride = perm.map((p) => inStrides[p]);
  const out = new (data.constructor as { new (n: number): T })(data.length);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < data.length; o++) {
    out[o] = data[src];
    // Advance the output index like an odometer, keeping the source offset in step.
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      src += stride[d];
      if (idx[d] < outShape[d]) break;
      src -= stride[d] * outShape[d];
      idx[d] = 0;
    }
  }
  return { data: out, shape: outShape };
}
