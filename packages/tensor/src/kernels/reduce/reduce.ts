import { record } from "../../autograd.js";
import type { Device } from "../../device.js";
import { type DType, isFloat } from "../../dtype.js";
import { DTypeError, fmtShape, ShapeError } from "../../errors.js";
import { normAxis, Tensor } from "../../tensor.js";
import { grid1d } from "../elementwise/elementwise.js";
import maxGradTemplate from "./reduce-max-grad.wgsl";
import maxRowsTemplate from "./reduce-max-rows.wgsl";
import maxStridedTemplate from "./reduce-max-strided.wgsl";
import sumColumnsTemplate from "./reduce-sum-columns.wgsl";
import sumRowsTemplate from "./reduce-sum-rows.wgsl";
import sumStridedTemplate from "./reduce-sum-strided.wgsl";
import {
  columnTiling,
  type RowBuffer,
  type RowPlan,
  rowGrid,
  rowPlan,
  rowShader,
  vec4Ok,
} from "./row-kernel.js";

/** One invocation per output, `ELEMENT_WG` per workgroup (strided reductions, the max backward). */
const ELEMENT_WG = 64;
const elementPlan: RowPlan = { wg: ELEMENT_WG, lanes: 1, subgroups: false };

type Kind = "sum" | "max";

/** [outer, len, inner] around `axis` of a shape. */
function split3(shape: readonly number[], a: number): [number, number, number] {
  const outer = shape.slice(0, a).reduce((p, d) => p * d, 1);
  const inner = shape.slice(a + 1).reduce((p, d) => p * d, 1);
  return [outer, shape[a]!, inner];
}

function idxFn(indirect: boolean): string {
  return indirect
    ? "fn idx_of(e: u32, k: u32) -> u32 { return u32(ld_xi(e)); }"
    : "fn idx_of(e: u32, k: u32) -> u32 { return k; }";
}

/** How many pieces to cut each reduced run into so that enough invocations work at once. */
function chunking(
  device: Device,
  outputs: number,
  len: number,
  rows: boolean,
): { chunks: number; chunkLen: number } {
  const want = device.info.isSoftware ? (rows ? 64 : 256) : rows ? 512 : 16384;
  const minChunk = rows ? 2048 : 256;
  if (outputs >= want || len < 2 * minChunk) return { chunks: 1, chunkLen: Math.max(len, 1) };
  const chunks = Math.min(Math.ceil(want / Math.max(outputs, 1)), Math.floor(len / minChunk));
  const chunkLen = Math.ceil(len / chunks / 4) * 4;
  return { chunks: Math.ceil(len / chunkLen), chunkLen };
}

interface Partial {
  values: Tensor;
  indices: Tensor | null;
}

/**
 * One reduction pass over the middle axis of the contiguous [outer, len, inner] view of `x`
 * (`xi`: original indices for a second max pass). Output layout: [outer, chunks] (rows kernel,
 * inner = 1) or [chunks, outer, inner] (strided kernel); one pass when chunks = 1.
 */
function pass(
  kind: Kind,
  x: Tensor,
  xi: Tensor | null,
  outer: number,
  len: number,
  inner: number,
  outDType: DType,
  scale: number,
  allowChunks: boolean,
): { out: Partial; chunks: number } {
  const device = x.device;
  const rows = inner === 1;
  const columns = !rows && kind === "sum" && inner % 4 === 0;
  const outputs = outer * inner;
  const tiling = columnTiling(device, inner / 4);
  const { chunks, chunkLen } = !allowChunks
    ? { chunks: 1, chunkLen: Math.max(len, 1) }
    : columns
      ? len > 2 * tiling.chunkRows
        ? { chunks: Math.ceil(len / tiling.chunkRows), chunkLen: tiling.chunkRows }
        : { chunks: 1, chunkLen: Math.max(len, 1) }
      : chunking(device, outputs, len, rows);
  const final = chunks === 1;
  const values = Tensor.empty([outputs * chunks], { dtype: final ? outDType : "f32", device });
  const indices = kind === "max" ? Tensor.empty([outputs * chunks], { dtype: "i32", device }) : null;
  const buffers: RowBuffer[] = [{ name: "x", dtype: x.dtype }];
  const bindings = [{ buffer: x.storage.buffer }];
  if (xi) {
    buffers.push({ name: "xi", dtype: "i32" });
    bindings.push({ buffer: xi.storage.buffer });
  }
  buffers.push({ name: "y", dtype: values.dtype, write: true });
  bindings.push({ buffer: values.storage.buffer });
  if (indices) {
    buffers.push({ name: "yi", dtype: "i32", write: true });
    bindings.push({ buffer: indices.storage.buffer });
  }
  const u = new ArrayBuffer(32);
  const u32 = new Uint32Array(u);
  const f32 = new Float32Array(u);
  let plan: RowPlan;
  let template: string;
  let groups: [number, number];
  if (rows) {
    plan = rowPlan(device, outputs * chunks);
    buffers[0]!.vec4 = vec4Ok(len, x.offset) && chunkLen % 4 === 0;
    template = kind === "sum" ? sumRowsTemplate : maxRowsTemplate;
    u32.set([outer, len, chunks, chunkLen, x.offset]);
    if (kind === "sum") f32[5] = final ? scale : 1;
    else u32[5] = xi?.offset ?? 0;
    groups = rowGrid(device, outputs * chunks, plan);
  } else if (columns) {
    plan = elementPlan;
    buffers[0]!.vec4 = x.offset % 4 === 0;
    buffers[1]!.vec4 = true;
    template = sumColumnsTemplate.replace("{{U}}", String(tiling.u));
    u32.set([outer, len, inner / 4, chunks, chunkLen, x.offset]);
    f32[6] = final ? scale : 1;
    groups = grid1d(device, (outputs / (4 * tiling.u)) * chunks, ELEMENT_WG);
  } else {
    plan = elementPlan;
    template = kind === "sum" ? sumStridedTemplate : maxStridedTemplate;
    u32.set([outer, len, inner, chunks, chunkLen, x.offset]);
    if (kind === "sum") f32[6] = final ? scale : 1;
    else u32[6] = xi?.offset ?? 0;
    groups = grid1d(device, outputs * chunks, ELEMENT_WG);
  }
  let code = rowShader(template, plan, buffers);
  if (kind === "max") code = code.replace("{{IDX}}", idxFn(xi !== null));
  device.dispatch({
    op: kind === "sum" ? "sum" : "max",
    code,
    buffers: bindings,
    uniforms: u,
    workgroups: groups,
  });
  return { out: { values, indices }, chunks };
}

/** Reduces axis `a` of x (any view) to the kept-dim shape; values in x's dtype, indices for max. */
function reduce(kind: Kind, x: Tensor, a: number, scale: number): Partial {
  const keptShape = x.shape.map((d, i) => (i === a ? 1 : d));
  const [outer, len, inner] = split3(x.shape, a);
  if (outer * inner === 0) {
    return {
      values: Tensor.empty(keptShape, { dtype: x.dtype, device: x.device }),
      indices: kind === "max" ? Tensor.empty(keptShape, { dtype: "i32", device: x.device }) : null,
    };
  }
  const src = x.contiguous();
  const first = pass(kind, src, null, outer, len, inner, x.dtype, scale, true);
  if (src !== x) src.dispose();
  let result = first.out;
  if (first.chunks > 1) {
    // Second pass over the partials: [outer, chunks] for rows, [chunks, outer * inner] strided.
    const rows = inner === 1;
    const second = rows
      ? pass(kind, result.values, result.indices, outer, first.chunks, 1, x.dtype, scale, false)
      : pass(kind, result.values, result.indices, 1, first.chunks, outer * inner, x.dtype, scale, false);
    result.values.dispose();
    result.indices?.dispose();
    result = second.out;
  }
  const values = result.values.reshape(keptShape);
  const indices = result.indices ? result.indices.reshape(keptShape) : null;
  result.values.dispose();
  result.indices?.dispose();
  return { values, indices };
}

function squeezeAxis(t: Tensor, a: number): Tensor {
  const s = t.reshape(t.shape.filter((_, i) => i !== a));
  t.dispose();
  return s;
}

function checkFloat(op: string, x: Tensor): void {
  if (!isFloat(x.dtype))
    throw new DTypeError(`${op}: needs a float tensor, got ${fmtShape(x.shape)} ${x.dtype}`);
}

/** Rank-0 tensors reduce like a [1] tensor over axis 0. */
function asRank1<T>(x: Tensor, fn: (v: Tensor) => T): T | null {
  if (x.rank !== 0) return null;
  const v = x.reshape([1]);
  const r = fn(v);
  v.dispose();
  return r;
}

/** Sum (times `scale`) over one axis, accumulated in f32. Gradient: broadcast back. */
export function sumAxis(x: Tensor, axis: number, keepDim = false, scale = 1): Tensor {
  checkFloat("sum", x);
  const a = normAxis("sum", axis, x.rank);
  const r0 = asRank1(x, (v) => sumAxis(v, 0, false, scale));
  if (r0) return r0;
  const out = reduce("sum", x, a, scale).values;
  const inShape = x.shape;
  record("sum", out, [x], (g) => {
    const e = g.expand(inShape);
    const r = scale === 1 ? e.contiguous() : e.mul(scale);
    if (e !== r) e.dispose();
    return [r];
  });
  return keepDim ? out : squeezeAxis(out, a);
}

/** Mean over one axis (NaN for an empty axis, like torch). */
export function meanAxis(x: Tensor, axis: number, keepDim = false): Tensor {
  checkFloat("mean", x);
  const a = normAxis("mean", axis, x.rank);
  const len = x.rank === 0 ? 1 : x.shape[a]!;
  return sumAxis(x, a, keepDim, 1 / len);
}

export interface MaxResult {
  values: Tensor;
  /** i32 positions along the axis; the first on ties. */
  indices: Tensor;
}

/** Max over one axis with its argmax (like torch.max(x, dim)). Gradient flows to the argmax. */
export function maxAxis(x: Tensor, axis: number, keepDim = false): MaxResult {
  checkFloat("max", x);
  const a = normAxis("max", axis, x.rank);
  const r0 = asRank1(x, (v) => maxAxis(v, 0, false));
  if (r0) return r0;
  if (x.shape[a] === 0) {
    throw new ShapeError(
      `max: cannot reduce the empty axis ${a} of ${fmtShape(x.shape)} (no identity for max)`,
    );
  }
  const r = reduce("max", x, a, 1);
  const [outer, len, inner] = split3(x.shape, a);
  const inShape = x.shape;
  const device = x.device;
  const dtype = x.dtype;
  record(
    "max",
    r.values,
    [x],
    (g, saved) => {
      const idx = saved[0]!;
      const gc = g.contiguous();
      const dx = Tensor.empty(inShape, { dtype, device });
      const code = rowShader(maxGradTemplate, elementPlan, [
        { name: "g", dtype: gc.dtype },
        { name: "idx", dtype: "i32" },
        { name: "dx", dtype, write: true },
      ]);
      device.dispatch({
        op: "max-grad",
        code,
        buffers: [
          { buffer: gc.storage.buffer },
          { buffer: idx.storage.buffer },
          { buffer: dx.storage.buffer },
        ],
        uniforms: new Uint32Array([outer, len, inner, gc.offset, idx.offset, 0, 0, 0]),
        workgroups: grid1d(device, outer * len * inner, ELEMENT_WG),
      });
      if (gc !== g) gc.dispose();
      return [dx];
    },
    [r.indices!],
  );
  if (keepDim) return { values: r.values, indices: r.indices! };
  return { values: squeezeAxis(r.values, a), indices: squeezeAxis(r.indices!, a) };
}

/** i32 index of the max along one axis (first on ties). Not differentiable. */
export function argmaxAxis(x: Tensor, axis: number, keepDim = false): Tensor {
  checkFloat("argmax", x);
  const a = normAxis("argmax", axis, x.rank);
  const r0 = asRank1(x, (v) => argmaxAxis(v, 0, false));
  if (r0) return r0;
  if (x.shape[a] === 0)
    throw new ShapeError(`argmax: cannot reduce the empty axis ${a} of ${fmtShape(x.shape)}`);
  const r = reduce("max", x, a, 1);
  r.values.dispose();
  return keepDim ? r.indices! : squeezeAxis(r.indices!, a);
}

function flatten(x: Tensor): Tensor {
  return x.reshape([x.size]);
}

/** Sum of every element, as a rank-0 tensor. */
export function sumAll(x: Tensor): Tensor {
  const f = flatten(x);
  const s = sumAxis(f, 0, false);
  f.dispose();
  return s;
}

/** Mean of every element (NaN when x is empty). */
export function meanAll(x: Tensor): Tensor {
  const f = flatten(x);
  const s = meanAxis(f, 0, false);
  f.dispose();
  return s;
}

/** Max of every element, as a rank-0 tensor. */
export function maxAll(x: Tensor): Tensor {
  const f = flatten(x);
  const r = maxAxis(f, 0, false);
  f.dispose();
  r.indices.dispose();
  return r.values;
}

/** Flat (row-major) i32 index of the max element, as a rank-0 tensor. */
export function argmaxAll(x: Tensor): Tensor {
  const f = flatten(x);
  const r = argmaxAxis(f, 0, false);
  f.dispose();
  return r;
}
