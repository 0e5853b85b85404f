import { record } from "../../autograd.js";
import { isFloat } from "../../dtype.js";
import { DTypeError, fmtShape, ShapeError } from "../../errors.js";
import { normAxis, Tensor } from "../../tensor.js";
import { rowGrid, rowPlan, rowShader, vec4Ok } from "../reduce/row-kernel.js";
import template from "./softmax.wgsl";
import gradTemplate from "./softmax-grad.wgsl";

function lastAxis(op: string, x: Tensor, axis: number): void {
  if (!isFloat(x.dtype))
    throw new DTypeError(`${op}: needs a float tensor, got ${fmtShape(x.shape)} ${x.dtype}`);
  if (x.rank === 0) throw new ShapeError(`${op}: needs at least one dim, got a scalar`);
  const a = normAxis(op, axis, x.rank);
  if (a !== x.rank - 1) {
    throw new ShapeError(
      `${op}: only the last axis is supported (got axis ${axis} of ${fmtShape(x.shape)}); transpose first`,
    );
  }
}

function run(op: "softmax" | "logSoftmax", x: Tensor): Tensor {
  const log = op === "logSoftmax";
  const cols = x.shape[x.rank - 1]!;
  const rows = cols === 0 ? 0 : x.size / cols;
  const out = Tensor.empty(x.shape, { dtype: x.dtype, device: x.device });
  if (rows > 0) {
    const src = x.contiguous();
    const device = x.device;
    const plan = rowPlan(device, rows);
    const code = rowShader(template, plan, [
      { name: "x", dtype: src.dtype, vec4: vec4Ok(cols, src.offset) },
      { name: "y", dtype: out.dtype, write: true, vec4: vec4Ok(cols, 0) },
    ]).replace("{{LOG}}", String(log));
    device.dispatch({
      op,
      code,
      buffers: [{ buffer: src.storage.buffer }, { buffer: out.storage.buffer }],
      uniforms: new Uint32Array([rows, cols, src.offset, 0]),
      workgroups: rowGrid(device, rows, plan),
    });
    if (src !== x) src.dispose();
  }
  return record(
    op,
    out,
    [x],
    (g, saved) => {
      const y = saved[0]!;
      const gc = g.contiguous();
      const dx = Tensor.empty(y.shape, { dtype: y.dtype, device: y.device });
      if (rows > 0) {
        const device = y.device;
        const plan = rowPlan(device, rows);
        const code = rowShader(gradTemplate, plan, [
          { name: "y", dtype: y.dtype, vec4: vec4Ok(cols, y.offset) },
          { name: "g", dtype: gc.dtype, vec4: vec4Ok(cols, gc.offset) },
          { name: "dx", dtype: dx.dtype, write: true, vec4: vec4Ok(cols, 0) },
        ]).replace("{{LOG}}", String(log));
        device.dispatch({
          op: `${op}-grad`,
          code,
          buffers: [
            { buffer: y.storage.buffer },
            { buffer: gc.storage.buffer },
            { buffer: dx.storage.buffer },
          ],
          uniforms: new Uint32Array([rows, cols, y.offset, gc.offset]),
          workgroups: rowGrid(device, rows, plan),
        });
      }
      if (gc !== g) gc.dispose();
      return [dx];
    },
    [out],
  );
}

/** Softmax over the last axis, computed in f32 after subtracting the row max (safe for huge logits). */
export function softmax(x: Tensor, axis = -1): Tensor {
  lastAxis("softmax", x, axis);
  return run("softmax", x);
}

/** log(softmax(x)) over the last axis, as x - max - log Σ exp(x - max). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  lastAxis("logSoftmax", x, axis);
  return run("logSoftmax", x);
}
