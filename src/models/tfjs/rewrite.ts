/**
 * Rewrites of a TFJS graph that compute the same function faster in ONNX Runtime on the CPU.
 *
 * ONNX Runtime runs convolutions in a blocked layout (NCHWc: channels in blocks of 16 with AVX-512, 8
 * with AVX2) when every layer around them can stay in it. Two things in BlazeFace break that chain and
 * make it leave and re-enter the layout at each residual block (measured: a quarter of its run time in
 * layout changes and unfused adds):
 *
 * - the residual branches widen their channels with `Pad` on the channel axis, an operator that has no
 *   blocked form: written as a 1×1 convolution with an identity kernel it stays in the layout and fuses
 *   with the add and the ReLU after it;
 * - its first stages have 24 channels, not a multiple of 16: widened to 32 with zero weights (the extra
 *   channels stay zero through every layer) they are a whole number of blocks.
 *
 * Both change nothing in what the model computes beyond float rounding; the model build checks that by
 * running both graphs (src/models/pack/rewriteCheck.ts).
 */
import { attrStrings, parseInputRef, type TfAttr, type TfGraph, type TfNode } from './graphModel';
import type { LoadedWeight } from './weights';

export interface GraphRewrites {
  /** Channel-only zero `Pad`s become identity 1×1 convolutions. */
  channelPadsAsConvs?: boolean;
  /** Every activation with `from` channels gets `to` (zero weights for the new ones). */
  widenChannels?: { from: number; to: number };
  /**
   * The image input is taken as NCHW (its shape permuted) rather than TF's NHWC: the converted graph runs its
   * convolutions NCHW, so the caller's tensor goes in as it is instead of through a transpose (applied by the
   * converter, not to the graph).
   */
  nchwInput?: boolean;
}

/** Ops that keep their input's channel count and work on each channel alone (zeros stay zeros). */
const PER_CHANNEL = new Set(['Relu', 'Relu6', 'MaxPool', 'Identity', 'StopGradient', 'Snapshot']);

/** A copy of the graph with the rewrites applied; the input graph is not changed. */
export function rewriteGraph(graph: TfGraph, rewrites: GraphRewrites): TfGraph {
  let g: TfGraph = {
    ...graph,
    nodes: graph.nodes.map((n) => ({ ...n, input: [...n.input] })),
    weights: new Map(graph.weights),
  };
  if (rewrites.widenChannels) g = widenChannels(g, rewrites.widenChannels.from, rewrites.widenChannels.to);
  if (rewrites.channelPadsAsConvs) g = channelPadsAsConvs(g);
  return g;
}

/** Rewrite names, as a build stamp records them: what was done to the graph, in order. */
export function describeRewrites(rewrites: GraphRewrites): string[] {
  const out: string[] = [];
  if (rewrites.widenChannels)
    out.push(`widen-${rewrites.widenChannels.from}-to-${rewrites.widenChannels.to}`);
  if (rewrites.channelPadsAsConvs) out.push('channel-pads-as-convs');
  if (rewrites.nchwInput) out.push('nchw-input');
  return out;
}

/**
 * The channel count of every node whose output is an NHWC activation that can be told from the
 * graph alone (undefined where it cannot: such nodes are left alone by the rewrites).
 */
export function channelCounts(graph: TfGraph): Map<string, number> {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const counts = new Map<string, number>();
  const visiting = new Set<string>();
  const of = (name: string): number | undefined => {
    if (counts.has(name)) return counts.get(name);
    const node = byName.get(name);
    if (!node || visiting.has(name)) return undefined;
    visiting.add(name);
    const c = channelsOf(node, graph, (ref) => {
      const r = parseInputRef(ref);
      return r ? of(r.node) : undefined;
    });
    visiting.delete(name);
    if (c !== undefined) counts.set(name, c);
    return c;
  };
  for (const n of graph.nodes) of(n.name);
  return counts;
}

function channelsOf(
  node: TfNode,
  graph: TfGraph,
  input: (ref: string) => number | undefined,
): number | undefined {
  switch (node.op) {
    case 'Placeholder': {
      const shape = graph.inputs.find((i) => i.name === node.name)?.shape;
      return shape?.length === 4 && shape[3] > 0 ? shape[3] : undefined;
    }
    case 'Conv2D':
    case '_FusedConv2D': {
      const k = graph.weights.get(refNode(node.input[1]));
      return k?.shape.length === 4 ? k.shape[3] : undefined;
    }
    case 'DepthwiseConv2dNative': {
      const k = graph.weights.get(refNode(node.input[1]));
      const c = input(node.input[0]);
      return k?.shape.length === 4 && c !== undefined ? c * k.shape[3] : undefined;
    }
    case 'AddV2':
    case 'Add': {
      const a = input(node.input[0]);
      return a !== undefined && a === input(node.input[1]) ? a : undefined;
    }
    case 'Pad': {
      const c = input(node.input[0]);
      const p = graph.weights.get(refNode(node.input[1]));
      return c !== undefined && p?.data.length === 8 ? c + Number(p.data[6]) + Number(p.data[7]) : undefined;
    }
    default:
      return PER_CHANNEL.has(node.op) ? input(node.input[0]) : undefined;
  }
}

function refNode(ref: string | undefined): string {
  return (ref === undefined ? null : parseInputRef(ref))?.node ?? '';
}

/**
 * Give every activation of `from` channels `to` channels. Convolutions get zero rows and columns for
 * the new channels, so the new channels are zero wherever they appear and nothing downstream sees them;
 * a channel `Pad` after a widened activation pads less. Throws when a widened activation reaches an op
 * that would see the new channels (an output, a reshape, a bias add of a constant, ...).
 */
function widenChannels(g: TfGraph, from: number, to: number): TfGraph {
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 1 || to <= from) {
    throw new RangeError(`widenChannels: need whole numbers with 1 ≤ from < to, got ${from} → ${to}`);
  }
  const counts = channelCounts(g);
  const wide = (ref: string | undefined) => counts.get(refNode(ref)) === from;
  const fail = (node: TfNode, why: string) =>
    new Error(`widenChannels ${from} → ${to}: ${node.op} node '${node.name}': ${why}`);
  for (const o of g.outputs) {
    if (counts.get(o.name) === from)
      throw new Error(`widenChannels: output '${o.name}' has ${from} channels`);
  }
  for (const node of g.nodes) {
    const inputs = node.input.filter((ref) => !g.weights.has(refNode(ref)));
    const wideIn = inputs.some(wide);
    const wideOut = counts.get(node.name) === from;
    if (!wideIn && !wideOut) continue;
    switch (node.op) {
      case 'Conv2D':
      case '_FusedConv2D':
        // The new input channels meet zero filter weights; the new output channels get zero filters.
        if (wideIn) padWeight(g, node, 1, 2, to);
        if (wideOut) widenConvOutput(g, node, from, to);
        break;
      case 'DepthwiseConv2dNative':
        if (!wideIn) throw fail(node, `makes ${from} channels from fewer`);
        if (g.weights.get(refNode(node.input[1]))?.shape[3] !== 1)
          throw fail(node, 'a multiplier other than 1');
        padWeight(g, node, 1, 2, to);
        break;
      case 'AddV2':
      case 'Add':
        if (!node.input.every(wide)) throw fail(node, 'adds a widened activation to something else');
        break;
      case 'Pad': {
        const p = g.weights.get(refNode(node.input[1]));
        if (!p || p.data.length !== 8) throw fail(node, 'paddings that are not 4×2');
        const data = Int32Array.from(p.data, Number);
        data[7] += (wideOut ? to - from : 0) - (wideIn ? to - from : 0);
        if (data[7] < 0)
          throw fail(node, `pads ${Number(p.data[7])} channels, fewer than the ${to - from} added`);
        const name = `${refNode(node.input[1])}/${node.name}/widened`;
        g.weights.set(name, { ...p, name, dtype: 'int32', data });
        node.input[1] = name;
        addConst(g, name);
        break;
      }
      default:
        if (!PER_CHANNEL.has(node.op)) throw fail(node, `a ${node.op} would see the added channels`);
    }
  }
  return g;
}

/** A convolution's output widened: zero filters and zero biases for the new channels. */
function widenConvOutput(g: TfGraph, node: TfNode, from: number, to: number): void {
  padWeight(g, node, 1, 3, to);
  if (attrStrings(node, 'fused_ops')[0] === 'BiasAdd') padWeight(g, node, 2, 0, to);
  // Only an activation that maps 0 to 0 keeps the new channels zero.
  const after = attrStrings(node, 'fused_ops').slice(1);
  if (after.some((op) => op !== 'Relu' && op !== 'Relu6')) {
    throw new Error(`widenChannels ${from} → ${to}: node '${node.name}' applies ${after.join(', ')}`);
  }
}

/** Replace input `i`'s weight by a copy with axis `axis` zero-padded to `size`. */
function padWeight(g: TfGraph, node: TfNode, i: number, axis: number, size: number): void {
  const src = refNode(node.input[i]);
  const w = g.weights.get(src);
  if (!w) throw new Error(`node '${node.name}': input ${i} is not a weight`);
  if (w.shape[axis] === size) return;
  const name = `${src}/${node.name}/widened`;
  g.weights.set(name, padAxis(w, name, axis, size));
  node.input[i] = name;
  addConst(g, name);
}

function padAxis(w: LoadedWeight, name: string, axis: number, size: number): LoadedWeight {
  const shape = [...w.shape];
  const old = shape[axis];
  if (size < old) throw new RangeError(`cannot pad axis ${axis} of ${w.name} from ${old} down to ${size}`);
  shape[axis] = size;
  const inner = w.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = w.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const data =
    w.dtype === 'int32' ? new Int32Array(outer * size * inner) : new Float32Array(outer * size * inner);
  for (let o = 0; o < outer; o++) {
    data.set(w.data.subarray(o * old * inner, (o + 1) * old * inner), o * size * inner);
  }
  return { name, shape, dtype: w.dtype, data };
}

/** `Pad`s that only append zero channels become 1×1 convolutions with an identity kernel. */
function channelPadsAsConvs(g: TfGraph): TfGraph {
  const counts = channelCounts(g);
  for (const node of g.nodes) {
    if (node.op !== 'Pad') continue;
    const p = g.weights.get(refNode(node.input[1]));
    const inC = counts.get(refNode(node.input[0]));
    if (!p || p.data.length !== 8 || inC === undefined) continue;
    const pads = Array.from(p.data, Number);
    if (pads.slice(0, 7).some((v) => v !== 0) || pads[7] <= 0) continue;
    const outC = inC + pads[7];
    const kernel = new Float32Array(inC * outC);
    for (let c = 0; c < inC; c++) kernel[c * outC + c] = 1;
    const kName = `${node.name}/identity_kernel`;
    const bName = `${node.name}/zero_bias`;
    g.weights.set(kName, { name: kName, shape: [1, 1, inC, outC], dtype: 'float32', data: kernel });
    g.weights.set(bName, { name: bName, shape: [outC], dtype: 'float32', data: new Float32Array(outC) });
    addConst(g, kName);
    addConst(g, bName);
    node.op = '_FusedConv2D';
    node.input = [node.input[0], kName, bName];
    node.attr = pointwiseConvAttrs();
  }
  return g;
}

function pointwiseConvAttrs(): Record<string, TfAttr> {
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  return {
    T: { type: 'DT_FLOAT' },
    strides: { list: { i: ['1', '1', '1', '1'] } },
    dilations: { list: { i: ['1', '1', '1', '1'] } },
    padding: { s: b64('VALID') },
    data_format: { s: b64('NHWC') },
    fused_ops: { list: { s: [b64('BiasAdd')] } },
    num_args: { i: '1' },
  };
}

function addConst(g: TfGraph, name: string): void {
  if (!g.nodes.some((n) => n.name === name)) g.nodes.push({ name, op: 'Const', input: [], attr: {} });
}
