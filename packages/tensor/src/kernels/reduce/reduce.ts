import { record } from "../../autograd.js";
import { isFloat } from "../../dtype.js";
import { DTypeError } from "../../errors.js";
import { Tensor, normAxis } from "../../tensor.js";
import { grid1d } from "../elementwise/elementwise.js";
import template from "./reduce.wgsl";

function shader(dtype: string): string {
  return template.replace("{{ENABLE}}", dtype === "f16" ? "enable f16;" : "").replaceAll("{{T}}", dtype);
}

/** Sum (times `scale`) over one axis. Gradient: broadcast back. */
export function sumAxis(x: Tensor, axis: number, keepDim = false, scale = 1): Tensor {
  if (!isFloat(x.dtype)) throw new DTypeError(`sum: needs a float tensor, got ${x.dtype}`);
  const a = normAxis("sum", axis, x.rank);
  const src = x.contiguous();
  const outer = x.shape.slice(0, a).reduce((p, d) => p * d, 1);
  const len = x.shape[a]!;
  const inner = x.shape.slice(a + 1).reduce((p, d) => p * d, 1);
  const keptShape = x.shape.map((d, i) => (i === a ? 1 : d));
  const out = Tensor.empty(keptShape, { dtype: x.dtype, device: x.device });
  const u = new ArrayBuffer(32);
  new Uint32Array(u).set([outer, len, inner, src.offset]);
  new Float32Array(u)[4] = scale;
  x.device.dispatch({
    op: "sum",
    code: shader(x.dtype),
    buffers: [{ buffer: src.storage.buffer }, { buffer: out.storage.buffer }],
    uniforms: u,
    workgroups: grid1d(x.device, outer * inner),
  });
  if (src !== x) src.dispose();
  const inShape = x.shape;
  record("sum", out, [x], (g) => {
    const e = g.expand(inShape);
    const r = scale === 1 ? e.contiguous() : e.mul(scale);
    if (e !== r) e.dispose();
    return [r];
  });
  if (keepDim) return out;
  const squeezed = out.reshape(x.shape.filter((_, i) => i !== a));
  return squeezed;
}
