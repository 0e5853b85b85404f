import { noGrad, record } from "../../autograd.js";
import type { Device, KernelBinding } from "../../device.js";
import { bytesPerElement, type DType, isFloat } from "../../dtype.js";
import { DTypeError, fmtShape, ShapeError } from "../../errors.js";
import { contiguousStrides, normAxis, numel, Tensor } from "../../tensor.js";
import { full, grid1d } from "../elementwise/elementwise.js";
import forwardSrc from "./gather.wgsl";
import gradSrc from "./gather-grad.wgsl";
import linksSrc from "./gather-links.wgsl";
import { type HostIndices, hostLinks, type IndexInput, indexShape, resolveIndices } from "./indices.js";

const MAX_RANK = 8;

export function typed(template: string, dtype: DType): string {
  return template.replace("{{ENABLE}}", dtype === "f16" ? "enable f16;" : "").replaceAll("{{T}}", dtype);
}

/** Bytes from x's first element to just past its last (0 for an empty view). */
function spanBytes(x: View, sizes: readonly number[] = x.shape): number {
  if (sizes.some((d) => d === 0)) return 0;
  let last = 0;
  sizes.forEach((d, i) => {
    last += (d - 1) * Math.abs(x.strides[i]!);
  });
  return (last + 1) * bytesPerElement(x.dtype);
}

interface View {
  shape: readonly number[];
  strides: readonly number[];
  dtype: DType;
  device: Device;
}

/**
 * Chunks of x along `dim` whose binding windows fit: [[start, length], ...]. One chunk when x
 * fits; otherwise as many rows per chunk as fit (after the alignment slack), balanced.
 */
function chunksAlong(op: string, x: View, dim: number): [number, number][] {
  const len = x.shape[dim]!;
  const max = x.device.maxBindingBytes;
  const slack = x.device.gpu.limits.minStorageBufferOffsetAlignment + 16;
  if (spanBytes(x) + slack <= max || len <= 1) return [[0, len]];
  const one = [...x.shape];
  one[dim] = 1;
  const room = max - slack - spanBytes(x, one);
  const step = Math.abs(x.strides[dim]!) * bytesPerElement(x.dtype);
  if (room < 0 || step === 0) {
    throw new ShapeError(
      `${op}: one slice of x ${fmtShape(x.shape)} along dim ${dim} exceeds the storage binding limit ${max}`,
    );
  }
  const fit = Math.max(1, Math.floor(room / step) + 1);
  const rows = Math.ceil(len / Math.ceil(len / fit));
  const out: [number, number][] = [];
  for (let r0 = 0; r0 < len; r0 += rows) out.push([r0, Math.min(rows, len - r0)]);
  return out;
}

/** The binding window covering view x, and x's offset in elements within it. */
function windowOf(op: string, x: Tensor): { binding: KernelBinding; offset: number } {
  const bpe = bytesPerElement(x.dtype);
  const first = x.offset * bpe;
  const w = x.device.bindBytes(x.storage.buffer, first, first + Math.max(spanBytes(x), bpe), op);
  return { binding: w.binding, offset: w.slack / bpe };
}

/**
 * y = x.index_select(dim, index) for a 1-D i32 index on the device. No validation, no autograd.
 * An x over one storage binding (an embedding table on a small-binding adapter) is read in
 * chunks along `dim`, one dispatch each, every dispatch writing only the indices in its chunk.
 */
export function gatherForward(op: string, x: Tensor, dim: number, index: Tensor): Tensor {
  const m = index.shape[0]!;
  const shape = [...x.shape];
  shape[dim] = m;
  const y = Tensor.empty(shape, { dtype: x.dtype, device: x.device });
  const n = numel(shape);
  if (n === 0) return y;
  const chunks = chunksAlong(op, x, dim);
  // Chunked: y starts at zero, so indices outside every chunk read 0 as in one dispatch.
  if (chunks.length > 1) x.device.clearBuffer(y.storage.buffer, 0, y.storage.buffer.size);
  for (const [lo, rows] of chunks) {
    const xc = chunks.length > 1 ? noGrad(() => x.narrow(dim, lo, rows)) : x;
    const win = windowOf(op, xc);
    const u = new Uint32Array(28);
    u.set([
      n,
      shape.length,
      dim,
      lo + rows,
      win.offset,
      index.offset,
      index.strides[0]!,
      lo,
      chunks.length > 1 ? 1 : 0,
    ]);
    for (let d = 0; d < shape.length; d++) {
      u[12 + d] = shape[d]!;
      u[20 + d] = x.strides[d]!;
    }
    x.device.dispatch({
      op,
      code: typed(forwardSrc, x.dtype),
      buffers: [win.binding, { buffer: index.storage.buffer }, { buffer: y.storage.buffer }],
      uniforms: u,
      workgroups: grid1d(x.device, n),
    });
    if (xc !== x) xc.dispose();
  }
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
  const chunks = chunksAlong(
    op,
    { shape: xShape, strides: contiguousStrides(xShape), dtype: g.dtype, device },
    dim,
  );
  let gx: Tensor;
  if (chunks.length > 1) {
    // Over one binding (the gradient of an oversize embedding table): zero it with a copy-engine
    // clear, then scatter one window of rows per dispatch.
    gx = Tensor.empty(xShape, { dtype: g.dtype, device });
    device.clearBuffer(gx.storage.buffer, 0, gx.storage.buffer.size);
  } else {
    gx = full(xShape, 0, { dtype: g.dtype, device });
  }
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
  const bpe = bytesPerElement(g.dtype);
  for (const [lo, rows] of chunks) {
    // gx is contiguous [outer, len, inner]: rows [lo, lo + rows) of every outer index.
    const first = lo * inner;
    const end = ((outer - 1) * len + lo + rows) * inner;
    const win =
      chunks.length > 1
        ? device.bindBytes(gx.storage.buffer, first * bpe, end * bpe, `${op}_backward`)
        : { binding: { buffer: gx.storage.buffer }, slack: first * bpe };
    const gxoff = first - win.slack / bpe;
    device.dispatch({
      op: `${op}_backward`,
      code: typed(gradSrc, g.dtype),
      buffers: [
        { buffer: gc.storage.buffer },
        { buffer: index.storage.buffer },
        { buffer: links.storage.buffer },
        win.binding,
      ],
      uniforms: new Uint32Array([
        total,
        m,
        inner,
        len,
        gc.offset,
        index.offset,
        index.strides[0]!,
        lo,
        lo + rows,
        gxoff,
        0,
        0,
      ]),
      workgroups: grid1d(device, total),
    });
  }
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
