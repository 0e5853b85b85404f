import { type Device, DTypeError, fmtShape, full, ShapeError, Tensor } from "@webvlm/tensor";
import { OptimizerError } from "../errors.js";
import { FlatParams, sameShape } from "../flat-params/flat-params.js";
import {
  bindWindow,
  concatTileTables,
  planTiles,
  type Segment,
  tileGrid,
  type Window,
  windowElements,
} from "../tiles.js";
import finishCode from "./clip-grad-norm-finish.wgsl";
import partialCode from "./clip-grad-norm-partial.wgsl";
import scaleCode from "./clip-grad-norm-scale.wgsl";

export interface ClipGradNormOptions {
  /** Cap on bytes per storage binding (default: the device limit); lower only to test windowing. */
  maxBindingBytes?: number;
}

/**
 * torch.nn.utils.clip_grad_norm_ with norm_type 2: scales every gradient in place by
 * min(1, maxNorm / (norm + 1e-6)), where norm is the 2-norm of all gradient elements together,
 * and returns that norm (before clipping) as a scalar f32 tensor. Nothing is read back: the
 * coefficient is computed and applied on the GPU, so `await norm.item()` is the only sync, and
 * only if you ask for it.
 *
 * Gradients are reduced per storage buffer: all members of a FlatParams chunk (their gradients
 * are gathered into the chunk first) in one pass; a separate gradient tensor in a pass of its own.
 * Dispatches: one per storage buffer to reduce, one to finish, one per storage buffer to scale.
 */
export function clipGradNorm(
  params: Iterable<Tensor> | FlatParams,
  maxNorm: number,
  options: ClipGradNormOptions = {},
): Tensor {
  if (!(typeof maxNorm === "number" && maxNorm >= 0))
    throw new OptimizerError(`clipGradNorm: maxNorm must be a number >= 0, got ${maxNorm}`);
  const list = params instanceof FlatParams ? [...params.params] : [...params];
  // FlatParams members: their gradients move into the grad chunk, so each chunk is one segment list.
  const byFlat = new Map<FlatParams, number[]>();
  for (const p of list) {
    const at = FlatParams.of(p);
    if (!at) continue;
    const l = byFlat.get(at.flat);
    if (l) l.push(at.index);
    else byFlat.set(at.flat, [at.index]);
  }
  for (const [flat, indices] of byFlat) flat.gatherGrads(indices);

  // Group gradient regions by the buffer that holds them.
  const groups = new Map<GPUBuffer, { segments: Segment[] }>();
  let device: Device | null = null;
  list.forEach((p, i) => {
    const g0 = p.grad;
    if (!g0) return;
    if (g0.dtype !== "f32")
      throw new DTypeError(`clipGradNorm: gradient of param ${i} is ${g0.dtype}, expected f32`);
    if (!sameShape(g0.shape, p.shape))
      throw new ShapeError(
        `clipGradNorm: gradient of param ${i} is ${fmtShape(g0.shape)}, the parameter ${fmtShape(p.shape)}`,
      );
    let g = g0;
    if (!g.isContiguous()) {
      g = g0.contiguous().keep();
      g0.dispose();
      p.grad = g;
    }
    device ??= g.device;
    const buffer = g.storage.buffer;
    const segment = { id: i, start: g.offset, length: g.size };
    const entry = groups.get(buffer);
    if (entry) entry.segments.push(segment);
    else groups.set(buffer, { segments: [segment] });
  });
  if (!device) return full([], 0, { dtype: "f32" });
  const dev: Device = device;

  // Plans: segments relative to the lowest start in their buffer; the same region twice counts once.
  const windowElems = windowElements(dev, options.maxBindingBytes);
  const plans: { buffer: GPUBuffer; base: number; windows: Window[] }[] = [];
  const tables: Uint32Array[] = [];
  let tileCount = 0;
  for (const [buffer, entry] of groups) {
    const sorted = entry.segments.sort((a, b) => a.start - b.start || a.length - b.length);
    const unique: Segment[] = [];
    for (const s of sorted) {
      const prev = unique[unique.length - 1];
      if (prev && prev.start === s.start && prev.length === s.length) continue;
      if (prev && s.start < prev.start + prev.length) {
        throw new OptimizerError(
          `clipGradNorm: gradients of param ${prev.id} and param ${s.id} overlap in memory`,
        );
      }
      unique.push(s);
    }
    const base = unique[0]!.start;
    const plan = planTiles(
      unique.map((s) => ({ ...s, start: s.start - base })),
      windowElems,
      tileCount,
    );
    plans.push({ buffer, base, windows: plan.windows });
    tables.push(plan.tiles);
    tileCount += plan.tiles.length / 4;
  }
  const table = concatTileTables(tables);
  const tiles = Tensor.from(table, [table.length], { dtype: "u32", device: dev });
  const partials = Tensor.empty([Math.max(tileCount, 1)], { dtype: "f32", device: dev });
  const result = Tensor.empty([2], { dtype: "f32", device: dev });

  // One dispatch per binding window of every gradient buffer; `out` is the kernel's third binding.
  const overWindows = (op: string, code: string, out: Tensor) => {
    for (const plan of plans) {
      for (const win of plan.windows) {
        const g = bindWindow(dev, plan.buffer, plan.base, win);
        dev.dispatch({
          op,
          code,
          buffers: [g.binding, { buffer: tiles.storage.buffer }, { buffer: out.storage.buffer }],
          uniforms: new Uint32Array([win.tileBase, win.tileCount, g.offset]),
          workgroups: tileGrid(dev, win.tileCount),
        });
      }
    }
  };
  overWindows("clip_grad_norm_partial", partialCode, partials);
  const u = new ArrayBuffer(8);
  new Uint32Array(u)[0] = tileCount;
  new Float32Array(u)[1] = maxNorm;
  dev.dispatch({
    op: "clip_grad_norm_finish",
    code: finishCode,
    buffers: [{ buffer: partials.storage.buffer }, { buffer: result.storage.buffer }],
    uniforms: u,
    workgroups: [1],
  });
  overWindows("clip_grad_norm_scale", scaleCode, result);
  // Queued work keeps using these buffers; returning them to the pool now is safe (later work is ordered after it).
  tiles.dispose();
  partials.dispose();
  const first = result.narrow(0, 0, 1);
  const norm = first.reshape([]);
  first.dispose();
  result.dispose();
  return norm;
}
