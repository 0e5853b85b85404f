import { record } from "../../autograd.js";
import { isFloat } from "../../dtype.js";
import { DTypeError, fmtShape, ShapeError } from "../../errors.js";
import { Tensor } from "../../tensor.js";
import { cast } from "../elementwise/elementwise.js";
import { type RowBuffer, type RowPlan, rowGrid, rowPlan, rowShader, vec4Ok } from "../reduce/row-kernel.js";
import template from "./cross-entropy.wgsl";
import gradTemplate from "./cross-entropy-grad.wgsl";
import reduceTemplate from "./cross-entropy-reduce.wgsl";

export interface CrossEntropyOptions {
  /** Rows whose target equals this are skipped (loss 0, no gradient, not counted). Default -100. */
  ignoreIndex?: number;
  /** 'mean' (default) over non-ignored rows, 'sum', or 'none' for per-row losses [N]. */
  reduction?: "mean" | "sum" | "none";
}

const FINAL_WG = 64;
const finalPlan: RowPlan = { wg: FINAL_WG, lanes: FINAL_WG, subgroups: false };

/** Throws naming the first target outside [0, numClasses) that is not `ignoreIndex`. */
export function checkTargetValues(targets: ArrayLike<number>, numClasses: number, ignoreIndex: number): void {
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i]!;
    if (t !== ignoreIndex && !(t >= 0 && t < numClasses)) {
      throw new ShapeError(
        `crossEntropy: target ${t} at row ${i} is outside [0, ${numClasses}) and is not ignoreIndex ${ignoreIndex}`,
      );
    }
  }
}

/**
 * Reads targets back and throws on any outside [0, numClasses) that is not `ignoreIndex`: the GPU
 * kernel can only turn those into NaN. One readback of N int32s.
 */
export async function validateTargets(
  targets: Tensor | Int32Array,
  numClasses: number,
  ignoreIndex = -100,
): Promise<void> {
  const data = targets instanceof Tensor ? await targets.data() : targets;
  checkTargetValues(data, numClasses, ignoreIndex);
}

/**
 * Cross-entropy of logits [N, V] against integer targets [N], fused log-softmax + NLL, like
 * torch.nn.functional.cross_entropy. Targets as an Int32Array are validated on the host (a bad
 * one throws, naming its row); as an i32 Tensor they are not read back: a target outside [0, V)
 * gives a NaN loss (see `validateTargets`). 'mean' over zero non-ignored rows is NaN, like torch.
 * The gradient flows to the logits only.
 */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor | Int32Array,
  options: CrossEntropyOptions = {},
): Tensor {
  const ignore = options.ignoreIndex ?? -100;
  const reduction = options.reduction ?? "mean";
  if (!["mean", "sum", "none"].includes(reduction)) {
    throw new ShapeError(`crossEntropy: reduction must be 'mean', 'sum' or 'none', got '${reduction}'`);
  }
  if (!Number.isInteger(ignore))
    throw new ShapeError(`crossEntropy: ignoreIndex must be an integer, got ${ignore}`);
  if (!isFloat(logits.dtype))
    throw new DTypeError(
      `crossEntropy: logits must be f32 or f16, got ${fmtShape(logits.shape)} ${logits.dtype}`,
    );
  if (logits.rank !== 2) {
    throw new ShapeError(
      `crossEntropy: logits must be [N, V], got ${fmtShape(logits.shape)}; reshape to [-1, V] first`,
    );
  }
  const [n, v] = logits.shape as [number, number];
  const tShape = targets instanceof Tensor ? targets.shape : [targets.length];
  if (tShape.length !== 1 || tShape[0] !== n) {
    throw new ShapeError(
      `crossEntropy: targets ${fmtShape(tShape)} must be [${n}] for logits ${fmtShape(logits.shape)}`,
    );
  }
  if (targets instanceof Tensor && targets.dtype !== "i32") {
    throw new DTypeError(
      `crossEntropy: targets must be i32, got ${fmtShape(targets.shape)} ${targets.dtype}`,
    );
  }
  if (v === 0 && n > 0)
    throw new ShapeError(`crossEntropy: logits ${fmtShape(logits.shape)} have no classes`);
  const device = logits.device;
  let t: Tensor;
  if (targets instanceof Tensor) {
    t = targets.contiguous();
  } else {
    checkTargetValues(targets, v, ignore);
    t = Tensor.from(targets, [n], { dtype: "i32", device });
  }
  const x = logits.contiguous();
  const rowLoss = Tensor.empty([n], { dtype: "f32", device });
  const lse = Tensor.empty([n], { dtype: "f32", device });
  const u = new ArrayBuffer(32);
  new Uint32Array(u).set([n, v, x.offset, t.offset]);
  new Int32Array(u)[4] = ignore;
  if (n > 0) {
    const plan = rowPlan(device, n);
    device.dispatch({
      op: "crossEntropy",
      code: rowShader(template, plan, [
        { name: "x", dtype: x.dtype, vec4: vec4Ok(v, x.offset) },
        { name: "t", dtype: "i32" },
        { name: "loss", dtype: "f32", write: true },
        { name: "lse", dtype: "f32", write: true },
      ]),
      buffers: [x, t, rowLoss, lse].map((b) => ({ buffer: b.storage.buffer })),
      uniforms: u,
      workgroups: rowGrid(device, n, plan),
    });
  }
  let out: Tensor;
  let count: Tensor | null = null;
  if (reduction === "none") {
    out = logits.dtype === "f32" ? rowLoss : cast(rowLoss, logits.dtype);
  } else {
    out = Tensor.empty([], { dtype: logits.dtype, device });
    count = Tensor.empty([], { dtype: "f32", device });
    const ru = new ArrayBuffer(16);
    new Uint32Array(ru).set([n, t.offset]);
    new Int32Array(ru)[2] = ignore;
    device.dispatch({
      op: "crossEntropy-reduce",
      code: rowShader(reduceTemplate, finalPlan, [
        { name: "loss", dtype: "f32" },
        { name: "t", dtype: "i32" },
        { name: "out", dtype: out.dtype, write: true },
        { name: "cnt", dtype: "f32", write: true },
      ]).replace("{{MEAN}}", String(reduction === "mean")),
      buffers: [rowLoss, t, out, count].map((b) => ({ buffer: b.storage.buffer })),
      uniforms: ru,
      workgroups: [1],
    });
  }
  const saved = [x, t, lse, ...(count ? [count] : [])];
  record(
    "crossEntropy",
    out,
    [logits],
    (g, s) => {
      const [xs, ts, ls, cs] = s as [Tensor, Tensor, Tensor, Tensor | undefined];
      const gc = g.contiguous();
      const dx = Tensor.empty([n, v], { dtype: xs.dtype, device });
      if (n > 0) {
        const plan = rowPlan(device, n);
        const buffers: RowBuffer[] = [
          { name: "x", dtype: xs.dtype, vec4: vec4Ok(v, xs.offset) },
          { name: "t", dtype: "i32" },
          { name: "lse", dtype: "f32" },
          { name: "g", dtype: gc.dtype },
        ];
        const bound = [xs, ts, ls, gc];
        if (reduction === "mean") {
          buffers.push({ name: "cnt", dtype: "f32" });
          bound.push(cs!);
        }
        buffers.push({ name: "dx", dtype: dx.dtype, write: true, vec4: vec4Ok(v, 0) });
        bound.push(dx);
        const gr =
          reduction === "none"
            ? "ld_g(p.off_g + r)"
            : reduction === "sum"
              ? "ld_g(p.off_g)"
              : "ld_g(p.off_g) / ld_cnt(0u)";
        const gu = new ArrayBuffer(32);
        new Uint32Array(gu).set([n, v, xs.offset, ts.offset, 0, gc.offset]);
        new Int32Array(gu)[4] = ignore;
        device.dispatch({
          op: "crossEntropy-grad",
          code: rowShader(gradTemplate, plan, buffers).replace("{{GR}}", gr),
          buffers: bound.map((b) => ({ buffer: b.storage.buffer })),
          uniforms: gu,
          workgroups: rowGrid(device, n, plan),
        });
      }
      if (gc !== g) gc.dispose();
      return [dx];
    },
    saved,
  );
  // The saved handles (if recorded) keep these alive for the backward.
  if (x !== logits) x.dispose();
  if (t !== targets) t.dispose();
  lse.dispose();
  count?.dispose();
  if (out !== rowLoss) rowLoss.dispose();
  return out;
}
