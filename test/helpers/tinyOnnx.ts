/**
 * A hand-encoded ONNX model with one Identity node, float32 in and out of a given shape: a valid
 * model that is no face model, for testing how the registry refuses it.
 */
function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

function field(num: number, value: Buffer | string | number): Buffer {
  if (typeof value === 'number') return Buffer.concat([varint(num << 3), varint(value)]);
  const body = typeof value === 'string' ? Buffer.from(value) : value;
  return Buffer.concat([varint((num << 3) | 2), varint(body.length), body]);
}

function valueInfo(name: string, shape: number[]): Buffer {
  const dims = Buffer.concat(shape.map((d) => field(1, field(1, d))));
  const tensorType = Buffer.concat([field(1, 1 /* FLOAT */), field(2, dims)]);
  return Buffer.concat([field(1, name), field(2, field(1, tensorType))]);
}

export function identityOnnx(shape: number[]): Buffer {
  const node = Buffer.concat([field(1, 'x'), field(2, 'y'), field(4, 'Identity')]);
  const graph = Buffer.concat([
    field(1, node),
    field(2, 'g'),
    field(11, valueInfo('x', shape)),
    field(12, valueInfo('y', shape)),
  ]);
  const opset = Buffer.concat([field(1, ''), field(2, 13)]);
  return Buffer.concat([field(1, 8 /* IR version */), field(8, opset), field(7, graph)]);
}
