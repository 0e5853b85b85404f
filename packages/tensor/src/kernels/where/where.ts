import { record } from "../../autograd.js";
import { type DType, isFloat } from "../../dtype.js";
import { DTypeError, fmtShape, ShapeError } from "../../errors.js";
import { numel, Tensor } from "../../tensor.js";
import { broadcastShapes, broadcastStrides, grid1d, sumTo } from "../elementwise/elementwise.js";
import { scalarBits } from "../pad/pad.js";
import code from "./where.wgsl";

const MAX_RANK = 8;

function scalarExpr(dtype: DType, field: string): string {
  switch (dtype) {
    case "f32":
      return `bitcast<f32>(p.${field})`;
    case "f16":
      return `f16(bitcast<f32>(p.${field}))`;
    case "i32":
      return `bitcast<i32>(p.${field})`;
    case "u32":
      return `p.${field}`;
  }
}

/** A scalar operand gets no binding (auto layouts drop unused ones), so bindings are numbered here. */
function shader(c: DType, t: DType, aScalar: boolean, bScalar: boolean): string {
  const decls = [`var<storage, read> cond: array<${c}>;`];
  if (!aScalar) decls.push(`var<storage, read> in_a: array<${t}>;`);
  if (!bScalar) decls.push(`var<storage, read> in_b: array<${t}>;`);
  decls.push(`var<storage, read_write> y: array<${t}>;`);
  const test = isFloat(c) ? "(bitcast<u32>(f32(cond[ic])) & 0x7fffffffu) != 0u" : `cond[ic] != ${c}(0)`;
  return code
    .replace("{{ENABLE}}", c === "f16" || t === "f16" ? "enable f16;" : "")
    .replace("{{BINDINGS}}", decls.map((d, k) => `@group(0) @binding(${k}) ${d}`).join("\n"))
    .replace("{{PARAMS}}", String(decls.length))
    .replace("{{TEST}}", test)
    .replace("{{A}}", aScalar ? scalarExpr(t, "scalar_a") : "in_a[ia]")
    .replace("{{B}}", bScalar ? scalarExpr(t, "scalar_b") : "in_b[ib]");
}

/** The raw select, no autograd. */
function select(op: string, cond: Tensor, a: Tensor | number, b: Tensor | number, dtype: DType): Tensor {
  const shape = [
    cond.shape,
    typeof a === "number" ? [] : a.shape,
    typeof b === "number" ? [] : b.shape,
  ].reduce((s, t) => broadcastShapes(op, s, t));
  if (shape.length > MAX_RANK) throw new ShapeError(`${op}: rank ${shape.length} exceeds ${MAX_RANK}`);
  const y = Tensor.empty(shape, { dtype, device: cond.device });
  const n = numel(shape);
  if (n === 0) return y;
  const u = new Uint32Array(40);
  const sc = broadcastStrides(cond, shape);
  const sa = typeof a === "number" ? [] : broadcastStrides(a, shape);
  const sb = typeof b === "number" ? [] : broadcastStrides(b, shape);
  u.set([
    n,
    shape.length,
    cond.offset,
    typeof a === "number" ? 0 : a.offset,
    typeof b === "number" ? 0 : b.offset,
    typeof a === "number" ? scalarBits(dtype, a) : 0,
    typeof b === "number" ? scalarBits(dtype, b) : 0,
  ]);
  for (let d = 0; d < shape.length; d++) {
    u[8 + d] = shape[d]!;
    u[16 + d] = sc[d]!;
    u[24 + d] = sa[d] ?? 0;
    u[32 + d] = sb[d] ?? 0;
  }
  const operands = [cond, a, b].filter((t): t is Tensor => typeof t !== "number");
  cond.device.dispatch({
    op,
    code: shader(cond.dtype, dtype, typeof a === "number", typeof b === "number"),
    buffers: [...operands.map((t) => ({ buffer: t.storage.buffer })), { buffer: y.storage.buffer }],
    uniforms: u,
    workgroups: grid1d(cond.device, n),
  });
  return y;
}

/**
 * torch.where: a where cond is non-zero (NaN counts as true), else b; cond, a and b broadcast
 * together. cond may be any dtype; a and b share one (a number takes the other's dtype, f32 if
 * both are numbers). Gradients flow to tensor a and b (zero where the other was chosen).
 */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  const op = "where";
  const dtype = typeof a !== "number" ? a.dtype : typeof b !== "number" ? b.dtype : "f32";
  const shapes = `cond ${fmtShape(cond.shape)}, a ${typeof a === "number" ? a : fmtShape(a.shape)}, b ${typeof b === "number" ? b : fmtShape(b.shape)}`;
  if (typeof a !== "number" && typeof b !== "number" && a.dtype !== b.dtype) {
    throw new DTypeError(`${op}: a is ${a.dtype} but b is ${b.dtype} (${shapes})`);
  }
  for (const t of [a, b])
    if (typeof t !== "number" && t.device !== cond.device)
      throw new ShapeError(`${op}: operands live on different devices`);
  const y = select(op, cond, a, b, dtype);
  const inputs = [a, b].filter((t): t is Tensor => typeof t !== "number");
  if (isFloat(dtype) && inputs.length > 0) {
    const aShape = typeof a === "number" ? null : a.shape;
    const bShape = typeof b === "number" ? null : b.shape;
    record(
      op,
      y,
      inputs,
      (g, [c]) => {
        const grads: Tensor[] = [];
        if (aShape) grads.push(reduceTo(select(`${op}_backward`, c!, g, 0, g.dtype), aShape));
        if (bShape) grads.push(reduceTo(select(`${op}_backward`, c!, 0, g, g.dtype), bShape));
        return grads;
      },
      [cond],
    );
  }
  return y;
}

function reduceTo(g: Tensor, shape: readonly number[]): Tensor {
  const r = sumTo(g, shape);
  if (r !== g) g.dispose();
  return r;
}

/** torch.masked_fill: x with `value` where mask (any dtype, broadcast to x's shape) is non-zero. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  const shape = broadcastShapes("masked_fill", x.shape, mask.shape);
  if (shape.length !== x.rank || shape.some((d, i) => d !== x.shape[i])) {
    throw new ShapeError(
      `masked_fill: mask ${fmtShape(mask.shape)} does not broadcast to x ${fmtShape(x.shape)}`,
    );
  }
  return where(mask, value, x);
}
