import { record } from "../../autograd.js";
import type { Device } from "../../device.js";
import { type DType, isFloat } from "../../dtype.js";
import { DTypeError, fmtShape, ShapeError } from "../../errors.js";
import { normAxis, numel, Tensor } from "../../tensor.js";
import { full, grid1d } from "../elementwise/elementwise.js";
import forwardSrc from "./gather.wgsl";
import gradSrc from "./gather-grad.wgsl";
import linksSrc from "./gather-links.wgsl";
import { type HostIndices, hostLinks, type IndexInput, indexShape, resolveIndices } from "./indices.js";

const MAX_RANK = 8;

export function typed(template: string, dtype: DType): string {
  return template.replace("{{ENABLE}}", dtype === "f16" ? "enable f16;" : "").replaceAll("{{T}}", dtype);
}

/** y = x.index_select(dim, index) for a 1-D i32 index on the device. No validation, no autograd. */
export function gatherForward(op: string, x: Tensor, dim: number, index: Tensor): Tensor {
  const m = index.shape[0]!;
  const shape = [...x.shape];
  shape[dim] = m;
  const y = Tensor.empty(shape, { dtype: x.dtype, device: x.device });
  const n = numel(shape);
  if (n === 0) return y;
  const u = new Uint32Array(24);
  u.set([n, shape.length, dim, x.shape[dim]!, x.offset, index.offset, index.strides[0]!]);
  for (let d = 0; d < shape.length; d++) {
    u[8 + d] = shape[d]!;
    u[16 + d] = x.strides[d]!;
  }
  x.device.dispatch({
    op,
    code: typed(forwardSrc, x.dtype),
    buffers: [{ buffer: x.storage.buffer }, { buffer: index.storage.buffer }, { buffer: y.storage.buffer }],
    uniforms: u,
    workgroups: grid1d(x.device, n),
  });
  return y;
}

/** [next, head] chains over the index positions, computed on the GPU (indices never on the host). */
function deviceLinks(device: Device, index: Tensor, len: number): Tensor {
  const m = index.shape[0]!;
  const links = Tensor.empty([2 * m], { dtype: "i32", device });
  device.dispatch({
    op: "index_select_links",
    code: linksSrc,
    buffers: [{ buffer: index.storage.buffer }, { buffer: links.storage.buffer }],
    uniforms: new Uint32Array([m, len, index.offset, index.strides[0]!]),
    workgroups: grid1d(device, m, 64),
  });
  return links;
}

/**
 * Deterministic scatter-add: gx (shape `xShape`) with gx[.., index[n], ..] = Σ g[.., n, ..].
 * `hostIndex` (when the indices came from the host) builds the duplicate chains in O(M) on the
 * CPU; otherwise a GPU pass builds them in O(M²) compares.
 */
export function scatterAdd(
  op: string,
  g: Tensor,
  xShape: readonly number[],
  dim: number,
  index: Tensor,
  hostIndex: Int32Array | null,
): Tensor {
  const device = g.device;
  const gx = full(xShape, 0, { dtype: g.dtype, device });
  const m = index.shape[0]!;
  const len = xShape[dim]!;
  const inner = numel(xShape.slice(dim + 1));
  const outer = numel(xShape.slice(0, dim));
  const total = outer * m * inner;
  if (total === 0 || len === 0) return gx;
  const gc = g.contiguous();
  const links = hostIndex
    ? Tensor.from(hostLinks(hostIndex, len), [2 * m], { dtype: "i32", device })
    : deviceLinks(device, index, len);
  device.dispatch({
    op: `${op}_backward`,
    code: typed(gradSrc, g.dtype),
    buffers: [
      { buffer: gc.storage.buffer },
      { buffer: index.storage.buffer },
      { buffer: links.storage.buffer },
      { buffer: gx.storage.buffer },
    ],
    uniforms: new Uint32Array([total, m, inner, len, gc.offset, index.offset, index.strides[0]!, 0]),
    workgroups: grid1d(device, total),
  });
  links.dispose();
  if (gc !== g) gc.dispose();
  return gx;
}

/**
 * torch.index_select: picks entries `index` (1-D i32) along `dim` of x (any strided view).
 * Host indices are range-checked naming the bad position; device indices outside [0, len) give 0.
 * Backward: a deterministic scatter-add into dx along `dim` (duplicates accumulate).
 */
export function indexSelect(x: Tensor, dim: number, index: IndexInput): Tensor {
  return indexSelectImpl("index_select", x, dim, index);
}

function indexSelectImpl(op: string, x: Tensor, dimIn: number, index: IndexInput, context?: string): Tensor {
  const dim = normAxis(op, dimIn, x.rank);
  if (x.rank > MAX_RANK)
    throw new ShapeError(`${op}: rank ${x.rank} exceeds ${MAX_RANK} (x ${fmtShape(x.shape)})`);
  const ishape = indexShape(index);
  if (ishape.length !== 1)
    throw new ShapeError(`${op}: index must be 1-D, got ${fmtShape(ishape)} (x ${fmtShape(x.shape)})`);
  const len = x.shape[dim]!;
  const idx = resolveIndices(op, "index", index, len, context ?? `dim ${dim} of x ${fmtShape(x.shape)}`);
  if (idx.tensor.device !== x.device) throw new ShapeError(`${op}: index and x live on different devices`);
  const y = gatherForward(op, x, dim, idx.tensor);
  if (isFloat(x.dtype)) {
    const xShape = x.shape;
    const host = idx.host;
    record(op, y, [x], (g, [saved]) => [scatterAdd(op, g, xShape, dim, saved!, host)], [idx.tensor]);
  }
  if (idx.owned) idx.tensor.dispose();
  return y;
}

/**
 * Token embedding lookup: ids (i32, any shape, device or host) into weight [V, D] → [...ids, D].
 * Host ids are checked against V, naming the first bad position. The weight's gradient is a
 * deterministic scatter-add of rows (repeated ids accumulate); its cost is a V×D zero fill plus
 * O(N·D) reads, and O(N²) id compares on the GPU when the ids were never on the host.
 */
export function embedding(ids: IndexInput, weight: Tensor): Tensor {
  if (weight.rank !== 2)
    throw new ShapeError(`embedding: weight must be [vocab, dim], got ${fmtShape(weight.shape)}`);
  if (!isFloat(weight.dtype))
    throw new DTypeError(`embedding: weight must be f32 or f16, got ${weight.dtype}`);
  const shape = indexShape(ids);
  const n = numel(shape);
  let flat: IndexInput;
  let owned: Tensor | null = null;
  if (ids instanceof Tensor) {
    if (ids.dtype !== "i32")
      throw new DTypeError(`embedding: ids must be i32, got ${ids.dtype} ${fmtShape(ids.shape)}`);
    flat = owned = ids.reshape([n]);
  } else {
    const data =
      ids instanceof Int32Array || Array.isArray(ids)
        ? (ids as ArrayLike<number>)
        : (ids as HostIndices).data;
    if (data.length !== n)
      throw new ShapeError(`embedding: ${data.length} ids given for shape ${fmtShape(shape)}`);
    flat = { data, shape: [n] };
  }
  const context = `weight ${fmtShape(weight.shape)} (vocab ${weight.shape[0]}); ids ${fmtShape(shape)}`;
  const rows = indexSelectImpl("embedding", weight, 0, flat, context);
  owned?.dispose();
  const out = rows.reshape([...shape, weight.shape[1]!]);
  rows.dispose();
  return out;
}

export type { HostIndices, IndexInput } from "./indices.js";
export { validateIndices } from "./indices.js";
