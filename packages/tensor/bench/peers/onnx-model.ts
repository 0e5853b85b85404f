// A minimal ONNX ModelProto encoder, enough to give onnxruntime-node one-node (or few-node) graphs
// to time against. Field numbers from onnx.proto3.

type Bytes = number[];

function varint(n: number, out: Bytes): void {
  // Negative int64 attributes are two's complement on the wire.
  let v = BigInt.asUintN(64, BigInt(n));
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
}
function key(field: number, wire: number, out: Bytes): void {
  varint((field << 3) | wire, out);
}
function fieldVarint(field: number, n: number, out: Bytes): void {
  key(field, 0, out);
  varint(n, out);
}
function fieldBytes(field: number, bytes: Bytes | Uint8Array, out: Bytes): void {
  key(field, 2, out);
  varint(bytes.length, out);
  for (const b of bytes) out.push(b);
}
function fieldString(field: number, s: string, out: Bytes): void {
  fieldBytes(field, Array.from(new TextEncoder().encode(s)), out);
}
function fieldFloat(field: number, f: number, out: Bytes): void {
  key(field, 5, out);
  const b = new Uint8Array(new Float32Array([f]).buffer);
  for (const x of b) out.push(x);
}

export type Attr = { name: string; i?: number; f?: number; ints?: number[] };
export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Attr[];
  domain?: string;
}
export interface OnnxValue {
  name: string;
  /** 1 = float, 10 = float16, 6 = int32, 7 = int64 */
  elemType: number;
  shape: number[];
}

function attribute(a: Attr): Bytes {
  const out: Bytes = [];
  fieldString(1, a.name, out);
  if (a.f !== undefined) {
    fieldFloat(2, a.f, out);
    fieldVarint(20, 1, out); // FLOAT
  } else if (a.ints) {
    for (const v of a.ints) fieldVarint(8, v, out);
    fieldVarint(20, 7, out); // INTS
  } else {
    fieldVarint(3, a.i ?? 0, out);
    fieldVarint(20, 2, out); // INT
  }
  return out;
}

function node(n: OnnxNode): Bytes {
  const out: Bytes = [];
  for (const i of n.inputs) fieldString(1, i, out);
  for (const o of n.outputs) fieldString(2, o, out);
  fieldString(4, n.op, out);
  for (const a of n.attrs ?? []) fieldBytes(5, attribute(a), out);
  if (n.domain) fieldString(7, n.domain, out);
  return out;
}

function valueInfo(v: OnnxValue): Bytes {
  const dims: Bytes = [];
  for (const d of v.shape) {
    const dim: Bytes = [];
    fieldVarint(1, d, dim);
    fieldBytes(1, dim, dims);
  }
  const tensorType: Bytes = [];
  fieldVarint(1, v.elemType, tensorType);
  fieldBytes(2, dims, tensorType);
  const type: Bytes = [];
  fieldBytes(1, tensorType, type);
  const out: Bytes = [];
  fieldString(1, v.name, out);
  fieldBytes(2, type, out);
  return out;
}

export function onnxModel(
  nodes: OnnxNode[],
  inputs: OnnxValue[],
  outputs: OnnxValue[],
  opset = 17,
): Uint8Array {
  const graph: Bytes = [];
  for (const n of nodes) fieldBytes(1, node(n), graph);
  fieldString(2, "bench", graph);
  for (const i of inputs) fieldBytes(11, valueInfo(i), graph);
  for (const o of outputs) fieldBytes(12, valueInfo(o), graph);
  const model: Bytes = [];
  fieldVarint(1, 8, model); // ir_version
  const opsetId: Bytes = [];
  fieldString(1, "", opsetId);
  fieldVarint(2, opset, opsetId);
  fieldBytes(8, opsetId, model);
  fieldBytes(7, graph, model);
  return Uint8Array.from(model);
}
