import { needsGrad, record } from "../../autograd.js";
import type { Device } from "../../device.js";
import { isFloat } from "../../dtype.js";
import { DTypeError, fmtShape, ShapeError } from "../../errors.js";
import { Tensor } from "../../tensor.js";
import { cast, full } from "../elementwise/elementwise.js";
import { sumAxis } from "../reduce/reduce.js";
import {
  columnTiling,
  type RowBuffer,
  type RowPlan,
  rowGrid,
  rowPlan,
  rowShader,
  vec4Ok,
} from "../reduce/row-kernel.js";
import layerTemplate from "./layer-norm.wgsl";
import layerGradTemplate from "./layer-norm-grad.wgsl";
import layerGradParamsTemplate from "./layer-norm-grad-params.wgsl";
import layerGradParams4Template from "./layer-norm-grad-params4.wgsl";
import rmsTemplate from "./rms-norm.wgsl";
import rmsGradTemplate from "./rms-norm-grad.wgsl";
import rmsGradParamsTemplate from "./rms-norm-grad-params.wgsl";
import rmsGradParams4Template from "./rms-norm-grad-params4.wgsl";

const COLUMN_WG = 64;
const columnPlan: RowPlan = { wg: COLUMN_WG, lanes: 1, subgroups: false };

function validate(op: string, x: Tensor, params: [string, Tensor][], eps: number): number {
  if (!isFloat(x.dtype))
    throw new DTypeError(`${op}: x must be f32 or f16, got ${fmtShape(x.shape)} ${x.dtype}`);
  if (x.rank === 0) throw new ShapeError(`${op}: x must have at least one dim, got a scalar`);
  const d = x.shape[x.rank - 1]!;
  for (const [name, t] of params) {
    if (t.rank !== 1 || t.shape[0] !== d) {
      throw new ShapeError(
        `${op}: ${name} ${fmtShape(t.shape)} must be [${d}] to match the last dim of x ${fmtShape(x.shape)}`,
      );
    }
    if (!isFloat(t.dtype)) throw new DTypeError(`${op}: ${name} must be f32 or f16, got ${t.dtype}`);
    if (t.device !== x.device) throw new ShapeError(`${op}: ${name} lives on another device than x`);
  }
  if (!(eps >= 0) || !Number.isFinite(eps))
    throw new ShapeError(`${op}: eps must be a finite number >= 0, got ${eps}`);
  return d;
}

/**
 * How the dweight/dbias column sums are cut: D % 4 == 0 takes the vec4 column-block kernels
 * (u vec4 columns per invocation); otherwise one scalar column per invocation. Either way rows
 * are cut into chunks summed by a second pass.
 */
function columnPlanFor(
  device: Device,
  rows: number,
  cols: number,
): { u: number; chunks: number; chunkRows: number; invocations: number } {
  if (cols % 4 === 0) {
    const { u, chunkRows } = columnTiling(device, cols / 4);
    const chunks = Math.max(1, Math.ceil(rows / chunkRows));
    return { u, chunks, chunkRows, invocations: chunks * (cols / (4 * u)) };
  }
  const want = device.info.isSoftware ? 256 : 16384;
  const chunks0 = Math.max(1, Math.min(Math.ceil(want / cols), Math.floor(rows / 64)));
  const chunkRows = Math.ceil(rows / chunks0);
  const chunks = Math.ceil(rows / chunkRows);
  return { u: 0, chunks, chunkRows, invocations: chunks * cols };
}

/** [chunks, D] f32 partials → [D] in `dtype`. */
function finishColumns(partials: Tensor, dtype: Tensor["dtype"]): Tensor {
  const summed = sumAxis(partials, 0, false);
  partials.dispose();
  if (dtype === "f32") return summed;
  const c = cast(summed, dtype);
  summed.dispose();
  return c;
}

function u32f32(ints: number[], floatsAt: Record<number, number>): ArrayBuffer {
  const u = new ArrayBuffer(Math.ceil((ints.length + Object.keys(floatsAt).length) / 4) * 16);
  new Uint32Array(u).set(ints);
  for (const [i, v] of Object.entries(floatsAt)) new Float32Array(u)[Number(i)] = v;
  return u;
}

/**
 * LayerNorm over the last dim: (x - mean) / sqrt(var + eps) * weight + bias, one fused kernel with
 * f32 math (SigLIP uses eps = 1e-6). Backward gives dx, dweight, dbias (summed over rows).
 */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor {
  const d = validate(
    "layerNorm",
    x,
    [
      ["weight", weight],
      ["bias", bias],
    ],
    eps,
  );
  const device = x.device;
  const rows = d === 0 ? 0 : x.size / d;
  const out = Tensor.empty(x.shape, { dtype: x.dtype, device });
  const mean = Tensor.empty([rows], { dtype: "f32", device });
  const rstd = Tensor.empty([rows], { dtype: "f32", device });
  const xc = x.contiguous();
  const wc = weight.contiguous();
  const bc = bias.contiguous();
  if (rows > 0) {
    const plan = rowPlan(device, rows);
    const code = rowShader(layerTemplate, plan, [
      { name: "x", dtype: xc.dtype, vec4: vec4Ok(d, xc.offset) },
      { name: "w", dtype: wc.dtype, vec4: vec4Ok(d, wc.offset) },
      { name: "b", dtype: bc.dtype, vec4: vec4Ok(d, bc.offset) },
      { name: "y", dtype: out.dtype, write: true, vec4: vec4Ok(d, 0) },
      { name: "mean", dtype: "f32", write: true },
      { name: "rstd", dtype: "f32", write: true },
    ]);
    device.dispatch({
      op: "layerNorm",
      code,
      buffers: [xc, wc, bc, out, mean, rstd].map((t) => ({ buffer: t.storage.buffer })),
      uniforms: u32f32([rows, d, xc.offset, wc.offset, bc.offset], { 5: eps }),
      workgroups: rowGrid(device, rows, plan),
    });
  }
  // Frozen weights (LoRA) skip their column sums; an x without grad skips dx.
  const needX = needsGrad(x);
  const needParams = needsGrad(weight) || needsGrad(bias);
  record(
    "layerNorm",
    out,
    [x, weight, bias],
    (g, saved) => {
      const [xs, ws, ms, rs] = saved as [Tensor, Tensor, Tensor, Tensor];
      const gc = g.contiguous();
      const dx = needX ? Tensor.empty(xs.shape, { dtype: xs.dtype, device }) : null;
      const { u, chunks, chunkRows, invocations } = columnPlanFor(device, rows, d);
      const dwp = needParams ? Tensor.empty([chunks, d], { dtype: "f32", device }) : null;
      const dbp = needParams ? Tensor.empty([chunks, d], { dtype: "f32", device }) : null;
      if (rows > 0 && dx) {
        const plan = rowPlan(device, rows);
        const code = rowShader(layerGradTemplate, plan, [
          { name: "x", dtype: xs.dtype, vec4: vec4Ok(d, xs.offset) },
          { name: "g", dtype: gc.dtype, vec4: vec4Ok(d, gc.offset) },
          { name: "w", dtype: ws.dtype, vec4: vec4Ok(d, ws.offset) },
          { name: "mean", dtype: "f32" },
          { name: "rstd", dtype: "f32" },
          { name: "dx", dtype: dx.dtype, write: true, vec4: vec4Ok(d, 0) },
        ]);
        device.dispatch({
          op: "layerNorm-grad",
          code,
          buffers: [xs, gc, ws, ms, rs, dx].map((t) => ({ buffer: t.storage.buffer })),
          uniforms: new Uint32Array([rows, d, xs.offset, gc.offset, ws.offset, 0, 0, 0]),
          workgroups: rowGrid(device, rows, plan),
        });
      }
      if (rows > 0 && dwp && dbp) {
        const pcode = rowShader(
          u ? layerGradParams4Template.replace("{{U}}", String(u)) : layerGradParamsTemplate,
          columnPlan,
          [
            { name: "x", dtype: xs.dtype, vec4: u > 0 && xs.offset % 4 === 0 },
            { name: "g", dtype: gc.dtype, vec4: u > 0 && gc.offset % 4 === 0 },
            { name: "mean", dtype: "f32" },
            { name: "rstd", dtype: "f32" },
            { name: "dw", dtype: "f32", write: true, vec4: u > 0 },
            { name: "db", dtype: "f32", write: true, vec4: u > 0 },
          ],
        );
        device.dispatch({
          op: "layerNorm-grad-params",
          code: pcode,
          buffers: [xs, gc, ms, rs, dwp, dbp].map((t) => ({ buffer: t.storage.buffer })),
          uniforms: new Uint32Array([rows, d, chunks, chunkRows, xs.offset, gc.offset, 0, 0]),
          workgroups: rowGrid(device, invocations, columnPlan),
        });
      }
      if (gc !== g) gc.dispose();
      const zeros = (dt: Tensor["dtype"]) => full([d], 0, { dtype: dt, device });
      let dw: Tensor | null = null;
      let db: Tensor | null = null;
      if (dwp && dbp && rows > 0) {
        dw = finishColumns(dwp, ws.dtype);
        db = finishColumns(dbp, bias.dtype);
      } else if (dwp && dbp) {
        dwp.dispose();
        dbp.dispose();
        dw = zeros(ws.dtype);
        db = zeros(bias.dtype);
      }
      return [dx, dw, db];
    },
    [xc, wc, mean, rstd],
  );
  if (xc !== x) xc.dispose();
  if (wc !== weight) wc.dispose();
  if (bc !== bias) bc.dispose();
  mean.dispose();
  rstd.dispose();
  return out;
}

/**
 * RMSNorm over the last dim, Mistral-style: weight * (x * rsqrt(mean(x²) + eps)) with f32 math.
 * Backward gives dx and dweight (summed over rows).
 */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  const d = validate("rmsNorm", x, [["weight", weight]], eps);
  const device = x.device;
  const rows = d === 0 ? 0 : x.size / d;
  const out = Tensor.empty(x.shape, { dtype: x.dtype, device });
  const rstd = Tensor.empty([rows], { dtype: "f32", device });
  const xc = x.contiguous();
  const wc = weight.contiguous();
  if (rows > 0) {
    const plan = rowPlan(device, rows);
    const buffers: RowBuffer[] = [
      { name: "x", dtype: xc.dtype, vec4: vec4Ok(d, xc.offset) },
      { name: "w", dtype: wc.dtype, vec4: vec4Ok(d, wc.offset) },
      { name: "y", dtype: out.dtype, write: true, vec4: vec4Ok(d, 0) },
      { name: "rstd", dtype: "f32", write: true },
    ];
    device.dispatch({
      op: "rmsNorm",
      code: rowShader(rmsTemplate, plan, buffers).replace("{{T}}", x.dtype),
      buffers: [xc, wc, out, rstd].map((t) => ({ buffer: t.storage.buffer })),
      uniforms: u32f32([rows, d, xc.offset, wc.offset], { 4: eps }),
      workgroups: rowGrid(device, rows, plan),
    });
  }
  const needX = needsGrad(x);
  const needW = needsGrad(weight);
  record(
    "rmsNorm",
    out,
    [x, weight],
    (g, saved) => {
      const [xs, ws, rs] = saved as [Tensor, Tensor, Tensor];
      const gc = g.contiguous();
      const dx = needX ? Tensor.empty(xs.shape, { dtype: xs.dtype, device }) : null;
      let dw: Tensor | null = null;
      if (rows > 0 && dx) {
        const plan = rowPlan(device, rows);
        const code = rowShader(rmsGradTemplate, plan, [
          { name: "x", dtype: xs.dtype, vec4: vec4Ok(d, xs.offset) },
          { name: "g", dtype: gc.dtype, vec4: vec4Ok(d, gc.offset) },
          { name: "w", dtype: ws.dtype, vec4: vec4Ok(d, ws.offset) },
          { name: "rstd", dtype: "f32" },
          { name: "dx", dtype: dx.dtype, write: true, vec4: vec4Ok(d, 0) },
        ]);
        device.dispatch({
          op: "rmsNorm-grad",
          code,
          buffers: [xs, gc, ws, rs, dx].map((t) => ({ buffer: t.storage.buffer })),
          uniforms: new Uint32Array([rows, d, xs.offset, gc.offset, ws.offset, 0, 0, 0]),
          workgroups: rowGrid(device, rows, plan),
        });
      }
      if (rows > 0 && needW) {
        const { u, chunks, chunkRows, invocations } = columnPlanFor(device, rows, d);
        const dwp = Tensor.empty([chunks, d], { dtype: "f32", device });
        const pcode = rowShader(
          u ? rmsGradParams4Template.replace("{{U}}", String(u)) : rmsGradParamsTemplate,
          columnPlan,
          [
            { name: "x", dtype: xs.dtype, vec4: u > 0 && xs.offset % 4 === 0 },
            { name: "g", dtype: gc.dtype, vec4: u > 0 && gc.offset % 4 === 0 },
            { name: "rstd", dtype: "f32" },
            { name: "dw", dtype: "f32", write: true, vec4: u > 0 },
          ],
        );
        device.dispatch({
          op: "rmsNorm-grad-params",
          code: pcode,
          buffers: [xs, gc, rs, dwp].map((t) => ({ buffer: t.storage.buffer })),
          uniforms: new Uint32Array([rows, d, chunks, chunkRows, xs.offset, gc.offset, 0, 0]),
          workgroups: rowGrid(device, invocations, columnPlan),
        });
        dw = finishColumns(dwp, ws.dtype);
      } else if (needW) {
        dw = full([d], 0, { dtype: ws.dtype, device });
      }
      if (gc !== g) gc.dispose();
      return [dx, dw];
    },
    [xc, wc, rstd],
  );
  if (xc !== x) xc.dispose();
  if (wc !== weight) wc.dispose();
  rstd.dispose();
  return out;
}
