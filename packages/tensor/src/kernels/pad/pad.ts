import { record } from "../../autograd.js";
import { type DType, isFloat } from "../../dtype.js";
import { fmtShape, ShapeError } from "../../errors.js";
import { numel, Tensor } from "../../tensor.js";
import { grid1d } from "../elementwise/elementwise.js";
import { typed } from "../gather/gather.js";
import code from "./pad.wgsl";

const MAX_RANK = 8;

/** WGSL expression that turns the uniform's `value` bits into the element type. */
function fillExpr(dtype: DType): string {
  switch (dtype) {
    case "f32":
      return "bitcast<f32>(p.value)";
    case "f16":
      return "f16(bitcast<f32>(p.value))";
    case "i32":
      return "bitcast<i32>(p.value)";
    case "u32":
      return "p.value";
  }
}

/** Value bits as the uniform carries them. */
export function scalarBits(dtype: DType, value: number): number {
  if (dtype === "i32" || dtype === "u32") {
    if (!Number.isInteger(value))
      throw new ShapeError(`fill value ${value} is not an integer for a ${dtype} tensor`);
    return value >>> 0;
  }
  return new Uint32Array(Float32Array.of(value).buffer)[0]!;
}

/**
 * Constant padding: `widths[d] = [before, after]` elements added around dim d (fewer entries pad
 * the trailing dims, like torch's F.pad reversed into natural order). Negative widths crop.
 * x may be any strided view. Gradient: pad(g, negated widths), i.e. the crop of g.
 */
export function pad(x: Tensor, widths: readonly (readonly [number, number])[], value = 0): Tensor {
  if (widths.length > x.rank)
    throw new ShapeError(
      `pad: ${widths.length} [before, after] pairs for x ${fmtShape(x.shape)} of rank ${x.rank}`,
    );
  if (x.rank > MAX_RANK) throw new ShapeError(`pad: rank ${x.rank} exceeds ${MAX_RANK}`);
  const lead = x.rank - widths.length;
  const before = x.shape.map((_, d) => (d < lead ? 0 : widths[d - lead]![0]));
  const after = x.shape.map((_, d) => (d < lead ? 0 : widths[d - lead]![1]));
  const shape = x.shape.map((s, d) => s + before[d]! + after[d]!);
  const list = `[${widths.map((w) => `[${w[0]}, ${w[1]}]`).join(", ")}]`;
  if ([...before, ...after].some((w) => !Number.isInteger(w)))
    throw new ShapeError(`pad: widths ${list} must be integers`);
  if (shape.some((s) => s < 0))
    throw new ShapeError(`pad: widths ${list} crop x ${fmtShape(x.shape)} below zero size`);
  const y = Tensor.empty(shape, { dtype: x.dtype, device: x.device });
  const n = numel(shape);
  if (n > 0) {
    const u = new Uint32Array(40);
    const ui = new Int32Array(u.buffer);
    u.set([n, x.rank, x.offset, scalarBits(x.dtype, value)]);
    for (let d = 0; d < x.rank; d++) {
      u[4 + d] = shape[d]!;
      u[12 + d] = x.shape[d]!;
      ui[20 + d] = before[d]!;
      u[28 + d] = x.strides[d]!;
    }
    x.device.dispatch({
      op: "pad",
      code: typed(code, x.dtype).replace("{{FILL}}", fillExpr(x.dtype)),
      buffers: [{ buffer: x.storage.buffer }, { buffer: y.storage.buffer }],
      uniforms: u,
      workgroups: grid1d(x.device, n),
    });
  }
  if (isFloat(x.dtype)) {
    const back = before.map((b, d) => [-b, -after[d]!] as [number, number]);
    record("pad", y, [x], (g) => [pad(g, back, 0)]);
  }
  return y;
}
