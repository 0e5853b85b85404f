import { record } from "../../autograd.js";
import { isFloat } from "../../dtype.js";
import { DTypeError, fmtShape, ShapeError } from "../../errors.js";
import { normAxis, numel, Tensor } from "../../tensor.js";
import { grid1d } from "../elementwise/elementwise.js";
import { typed } from "../gather/gather.js";
import code from "./concat.wgsl";

const MAX_RANK = 8;
/** Inputs per dispatch: storage bindings are a scarce per-stage resource (WebGPU guarantees 8). */
const PER_DISPATCH = 4;

/**
 * torch.cat: joins tensors (any strided views, same dtype, equal except along `dim`) into one
 * contiguous tensor, in one pass per four inputs. Gradient: each input gets its narrow of g.
 */
export function concat(tensors: readonly Tensor[], dimIn: number): Tensor {
  if (tensors.length === 0) throw new ShapeError("concat: no tensors given");
  const first = tensors[0]!;
  const all = tensors.map((t) => fmtShape(t.shape)).join(", ");
  const rank = first.rank;
  const dim = normAxis("concat", dimIn, rank);
  if (rank > MAX_RANK) throw new ShapeError(`concat: rank ${rank} exceeds ${MAX_RANK}`);
  let total = 0;
  for (const [k, t] of tensors.entries()) {
    if (t.dtype !== first.dtype)
      throw new DTypeError(`concat: tensor ${k} is ${t.dtype}, tensor 0 is ${first.dtype} (shapes ${all})`);
    if (t.device !== first.device) throw new ShapeError(`concat: tensor ${k} lives on another device`);
    if (t.rank !== rank || t.shape.some((d, i) => i !== dim && d !== first.shape[i])) {
      throw new ShapeError(
        `concat: tensor ${k} ${fmtShape(t.shape)} does not match tensor 0 outside dim ${dim} (shapes ${all})`,
      );
    }
    total += t.shape[dim]!;
  }
  const shape = [...first.shape];
  shape[dim] = total;
  const device = first.device;
  const y = Tensor.empty(shape, { dtype: first.dtype, device });
  const inner = numel(shape.slice(dim + 1));
  const outer = numel(shape.slice(0, dim));
  const src = typed(code, first.dtype);
  let base = 0;
  for (let g = 0; g < tensors.length; g += PER_DISPATCH) {
    const group = tensors.slice(g, g + PER_DISPATCH);
    const width = group.reduce((s, t) => s + t.shape[dim]!, 0);
    const n = outer * width * inner;
    if (n > 0) {
      const u = new Uint32Array(56);
      u.set([n, rank, dim, base, total, width, inner, group.length]);
      let end = 0;
      group.forEach((t, k) => {
        end += t.shape[dim]!;
        u[8 + k] = end;
        u[12 + k] = t.offset;
        for (let d = 0; d < rank; d++) u[24 + k * 8 + d] = t.strides[d]!;
      });
      for (let d = 0; d < rank; d++) u[16 + d] = d === dim ? width : shape[d]!;
      const buffers = [0, 1, 2, 3].map((k) => ({ buffer: (group[k] ?? group[0]!).storage.buffer }));
      device.dispatch({
        op: "concat",
        code: src,
        buffers: [...buffers, { buffer: y.storage.buffer }],
        uniforms: u,
        workgroups: grid1d(device, n),
      });
    }
    base += width;
  }
  if (isFloat(first.dtype)) {
    const extents = tensors.map((t) => t.shape[dim]!);
    record("concat", y, tensors, (gy) => {
      let start = 0;
      return extents.map((len) => {
        const part = gy.narrow(dim, start, len);
        start += len;
        return part;
      });
    });
  }
  return y;
}
