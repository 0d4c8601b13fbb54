import { AttributeType, DataType, ModelProto, type TensorType } from './schema';

/** A float attribute whose value happens to be whole (`alpha: float(1)`), so it is not taken for an int. */
export interface FloatAttr {
  float: number;
}
export interface FloatsAttr {
  floats: number[];
}
export type AttrValue = number | string | number[] | FloatAttr | FloatsAttr;

export const float = (value: number): FloatAttr => ({ float: value });
export const floats = (values: number[]): FloatsAttr => ({ floats: values });

type TypedData = Float32Array | Int32Array | BigInt64Array | Uint8Array;

interface Tensor {
  name: string;
  dataType: number;
  dims: number[];
  rawData: Uint8Array;
}

interface Node {
  name: string;
  opType: string;
  input: string[];
  output: string[];
  attribute: object[];
}

interface ValueInfo {
  name: string;
  type: { tensorType: { elemType: number; shape: { dim: object[] } } };
}

/**
 * Builds an ONNX model node by node. Names are made unique by the builder, so graph-building code
 * can use readable hints ("conv1/weight") without tracking clashes.
 */
export class OnnxGraphBuilder {
  private readonly nodes: Node[] = [];
  private readonly initializers: Tensor[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly used = new Set<string>();

  constructor(
    readonly name: string,
    readonly opset = 13,
  ) {}

  /** A fresh name based on `hint`. */
  unique(hint: string): string {
    const base = hint.replace(/[^A-Za-z0-9_./:-]/g, '_') || 'v';
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  /** Declare a graph input; a string dimension is dynamic (named). */
  input(name: string, shape: (number | string)[], type: TensorType = 'float32'): string {
    if (this.used.has(name)) throw new Error(`name '${name}' is already used`);
    this.used.add(name);
    this.inputs.push(valueInfo(name, shape, type));
    return name;
  }

  /** Mark a value as a graph output, under its own name. */
  output(name: string, shape?: (number | string)[], type: TensorType = 'float32'): void {
    this.outputs.push(valueInfo(name, shape, type));
  }

  /** A constant tensor (an initializer); returns its name. */
  constant(hint: string, data: TypedData | number[], dims: number[], type?: TensorType): string {
    const typed = toTyped(data, type ?? (Array.isArray(data) ? 'float32' : typeOf(data)));
    const count = dims.reduce((a, b) => a * b, 1);
    if (typed.length !== count) {
      throw new Error(`constant '${hint}': ${typed.length} values for shape [${dims.join(',')}]`);
    }
    const name = this.unique(hint);
    this.initializers.push({
      name,
      dataType: DataType[typeOf(typed)],
      dims,
      rawData: new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength),
    });
    return name;
  }

  /** int64 constant, the type ONNX wants for shapes, axes and pads. */
  int64(hint: string, values: number[]): string {
    return this.constant(hint, BigInt64Array.from(values.map((v) => BigInt(v))), [values.length], 'int64');
  }

  /** Add a node with one output; returns the output's name. */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputHint?: string): string {
    return this.nodeN(opType, inputs, 1, attrs, outputHint)[0];
  }

  /** Add a node with `count` outputs. */
  nodeN(
    opType: string,
    inputs: string[],
    count: number,
    attrs: Record<string, AttrValue> = {},
    outputHint?: string,
  ): string[] {
    const base = outputHint ?? opType.toLowerCase();
    const output = Array.from({ length: count }, (_, i) => this.unique(count > 1 ? `${base}:${i}` : base));
    this.nodes.push({
      name: this.unique(`${base}/node`),
      opType,
      input: inputs,
      output,
      attribute: Object.entries(attrs).map(([name, value]) => attribute(name, value)),
    });
    return output;
  }

  /** Rename the value `from` to the graph-output name `to` through an Identity node. */
  alias(from: string, to: string): string {
    if (this.used.has(to)) throw new Error(`name '${to}' is already used`);
    this.used.add(to);
    this.nodes.push({
      name: this.unique(`${to}/node`),
      opType: 'Identity',
      input: [from],
      output: [to],
      attribute: [],
    });
    return to;
  }

  toBuffer(metadata: Record<string, string> = {}, producer = 'faceflow'): Buffer {
    const model = ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: this.opset }],
      producerName: producer,
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    });
    return Buffer.from(ModelProto.encode(model).finish());
  }
}

function valueInfo(name: string, shape: (number | string)[] | undefined, type: TensorType): ValueInfo {
  const dim = (shape ?? []).map((d) =>
    typeof d === 'number' && d >= 0 ? { dimValue: d } : { dimParam: String(d) },
  );
  return { name, type: { tensorType: { elemType: DataType[type], shape: { dim } } } };
}

function typeOf(data: TypedData): 'float32' | 'int32' | 'int64' | 'uint8' {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  return 'uint8';
}

function toTyped(data: TypedData | number[], type: TensorType): TypedData {
  if (!Array.isArray(data)) return data;
  switch (type) {
    case 'float32':
      return Float32Array.from(data);
    case 'int32':
      return Int32Array.from(data);
    case 'int64':
      return BigInt64Array.from(data.map((v) => BigInt(v)));
    case 'uint8':
      return Uint8Array.from(data);
    default:
      throw new Error(`constants of type ${type} are not supported`);
  }
}

function attribute(name: string, value: AttrValue): object {
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: Buffer.from(value) };
  if (typeof value === 'number') {
    return Number.isInteger(value)
      ? { name, type: AttributeType.INT, i: value }
      : { name, type: AttributeType.FLOAT, f: value };
  }
  if (Array.isArray(value)) {
    return value.every(Number.isInteger)
      ? { name, type: AttributeType.INTS, ints: value }
      : { name, type: AttributeType.FLOATS, floats: value };
  }
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  return { name, type: AttributeType.FLOATS, floats: value.floats };
}
