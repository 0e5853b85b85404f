import { type Device, DTypeError, getDevice, numel, ShapeError, Tensor, tidy } from "@webvlm/tensor";
import { assertClose, Rng } from "@webvlm/tensor/testing";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { OptimizerError } from "../errors.js";
import { FlatParams } from "../flat-params/flat-params.js";
import { AdamW } from "./adamw.js";
import { type AdamWRefHyper, adamwRefState, adamwRefStep } from "./adamw.ref.js";

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const TOL = { atol: 2e-6, rtol: 2e-5 };

/** Counts dispatches per op name while `fn` runs. */
function countDispatches(fn: () => void): Map<string, number> {
  const counts = new Map<string, number>();
  const original = device.dispatch.bind(device);
  const spy = vi.spyOn(device, "dispatch").mockImplementation((spec) => {
    counts.set(spec.op, (counts.get(spec.op) ?? 0) + 1);
    original(spec);
  });
  fn();
  spy.mockRestore();
  return counts;
}

function hyperOf(o: {
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
}): AdamWRefHyper {
  return { lr: o.lr, beta1: o.betas[0], beta2: o.betas[1], eps: o.eps, weightDecay: o.weightDecay };
}

describe("AdamW", () => {
  it("follows torch's trajectory over 20 steps on separate tensors (one dispatch per tensor)", async () => {
    const rng = new Rng(1);
    const shapes = [[7], [3, 5], [1], [129], [2, 2, 2]];
    const init = shapes.map((s) => rng.normal(numel(s)));
    const params = shapes.map((s, i) => Tensor.from(init[i]!, s).keep());
    const opts = { lr: 1e-2, betas: [0.9, 0.99] as const, eps: 1e-8, weightDecay: 0.1 };
    const opt = new AdamW(params, opts);
    const ref = init.map((x) => adamwRefState(x));
    for (let step = 0; step < 20; step++) {
      const grads = shapes.map((s) => rng.normal(numel(s)));
      params.forEach((p, i) => {
        p.grad = Tensor.from(grads[i]!, shapes[i]!).keep();
      });
      const counts = countDispatches(() => opt.step());
      expect(counts.get("adamw")).toBe(shapes.length);
      opt.zeroGrad();
      ref.forEach((r, i) => {
        adamwRefStep(r, grads[i]!, hyperOf(opts));
      });
    }
    const state = await opt.state();
    for (let i = 0; i < shapes.length; i++) {
      assertClose(await params[i]!.toFloat32(), ref[i]!.param, { ...TOL, what: `param ${i}` });
      assertClose(state.tensors[`optimizer.exp_avg.${i}`]!.data as Float32Array, ref[i]!.expAvg, {
        ...TOL,
        what: `exp_avg ${i}`,
      });
      assertClose(state.tensors[`optimizer.exp_avg_sq.${i}`]!.data as Float32Array, ref[i]!.expAvgSq, {
        ...TOL,
        what: `exp_avg_sq ${i}`,
      });
    }
    expect(opt.steps).toEqual(shapes.map(() => 20));
    opt.dispose();
    for (const p of params) p.dispose();
  });

  it("updates every parameter of a FlatParams in one dispatch, across groups, equal to the per-parameter reference", async () => {
    const rng = new Rng(2);
    // Odd sizes, one spanning several 4096-element tiles, one scalar.
    const shapes = [[5, 3], [1], [17], [4097], [2, 2, 3], [], [0]];
    const flat = FlatParams.create(shapes);
    const init = shapes.map((s) => rng.normal(numel(s)));
    init.forEach((x, i) => {
      flat.set(i, x);
    });
    const decay = [0, 3, 4]; // matrices decay; biases and norms do not
    const noDecay = [1, 2, 5, 6];
    const g0 = { lr: 3e-3, betas: [0.9, 0.999] as const, eps: 1e-8, weightDecay: 0.05 };
    // beta1 = 0.3 takes the other branch of torch's lerp (weight 0.7 >= 0.5).
    const g1 = { lr: 1e-2, betas: [0.3, 0.95] as const, eps: 1e-6, weightDecay: 0 };
    const opt = new AdamW([
      { params: decay.map((i) => flat.params[i]!), ...g0 },
      { params: noDecay.map((i) => flat.params[i]!), ...g1 },
    ]);
    const hyper = new Map<number, AdamWRefHyper>();
    for (const i of decay) hyper.set(i, hyperOf(g0));
    for (const i of noDecay) hyper.set(i, hyperOf(g1));
    const ref = init.map((x) => adamwRefState(x));
    for (let step = 0; step < 20; step++) {
      const grads = shapes.map((s) => rng.normal(numel(s)));
      flat.params.forEach((p, i) => {
        p.grad = Tensor.from(grads[i]!, shapes[i]!).keep();
      });
      const counts = countDispatches(() => opt.step());
      expect(counts.get("adamw")).toBe(1);
      expect(opt.lastStepDispatches).toBe(1);
      opt.zeroGrad();
      ref.forEach((r, i) => {
        adamwRefStep(r, grads[i]!, hyper.get(i)!);
      });
    }
    for (let i = 0; i < shapes.length; i++) {
      assertClose(await flat.params[i]!.toFloat32(), ref[i]!.param, {
        ...TOL,
        what: `flat param ${i} ${JSON.stringify(shapes[i])}`,
      });
    }
    opt.dispose();
    flat.dispose();
  });

  it("walks buffers larger than one binding in windows (flat chunk and an offset view)", async () => {
    const rng = new Rng(3);
    const shapes = [[300], [1], [70], [511]];
    const flat = FlatParams.create(shapes, { align: 1 });
    const init = shapes.map((s) => rng.uniform(numel(s)));
    init.forEach((x, i) => {
      flat.set(i, x);
    });
    // A separate parameter that starts 1000 elements into its storage: the windows' bindings start at aligned offsets.
    const bigInit = rng.uniform(2000);
    const big = Tensor.from(bigInit, [2000]).keep();
    const view = big.narrow(0, 1000, 999).keep();
    const viewInit = (await view.toFloat32()).slice();
    const opts = { lr: 5e-3, betas: [0.8, 0.9] as const, eps: 1e-8, weightDecay: 0.2 };
    // 1024-byte bindings: windows of 192 elements.
    const opt = new AdamW([...flat.params, view], { ...opts, maxBindingBytes: 1024 });
    const ref = [...init, viewInit].map((x) => adamwRefState(x));
    for (let step = 0; step < 5; step++) {
      const grads = [...shapes, [999]].map((s) => rng.normal(numel(s)));
      [...flat.params, view].forEach((p, i) => {
        p.grad = Tensor.from(grads[i]!, p.shape).keep();
      });
      opt.step();
      expect(opt.lastStepDispatches).toBe(Math.ceil(882 / 192) + Math.ceil(999 / 192));
      opt.zeroGrad();
      ref.forEach((r, i) => {
        adamwRefStep(r, grads[i]!, hyperOf(opts));
      });
    }
    for (let i = 0; i < shapes.length; i++)
      assertClose(await flat.params[i]!.toFloat32(), ref[i]!.param, { ...TOL, what: `param ${i}` });
    assertClose(await view.toFloat32(), ref[4]!.param, { ...TOL, what: "offset view" });
    // The rest of the storage is untouched.
    const all = await big.toFloat32();
    expect(Array.from(all.subarray(0, 1000))).toEqual(Array.from(bigInit.subarray(0, 1000)));
    expect(all[1999]).toBe(bigInit[1999]);
    opt.dispose();
    flat.dispose();
    view.dispose();
    big.dispose();
  });

  it("adds eps after the bias correction of sqrt(v) and decays before the step (torch's order)", async () => {
    // Small gradients and a large eps make the placement visible: (sqrt(v) + eps) / sqrt(bc2) would
    // differ from sqrt(v) / sqrt(bc2) + eps by far more than f32 rounding in the first steps.
    const rng = new Rng(9);
    const init = rng.normal(64);
    const p = Tensor.from(init, [64]).keep();
    const o = { lr: 0.1, betas: [0.9, 0.999] as const, eps: 1e-3, weightDecay: 0.5 };
    const opt = new AdamW([p], o);
    const ref = adamwRefState(init);
    const wrong = Float64Array.from(init);
    let m = new Float64Array(64);
    let v = new Float64Array(64);
    for (let step = 1; step <= 3; step++) {
      const g = rng.normal(64, 1e-3);
      p.grad = Tensor.from(g, [64]).keep();
      opt.step();
      opt.zeroGrad();
      adamwRefStep(ref, g, hyperOf(o));
      m = m.map((x, i) => 0.9 * x + 0.1 * g[i]!);
      v = v.map((x, i) => 0.999 * x + 0.001 * g[i]! * g[i]!);
      for (let i = 0; i < 64; i++) {
        const denom = (Math.sqrt(v[i]!) + o.eps) / Math.sqrt(1 - 0.999 ** step);
        wrong[i] = wrong[i]! * (1 - o.lr * o.weightDecay) - (o.lr / (1 - 0.9 ** step)) * (m[i]! / denom);
      }
    }
    const got = await p.toFloat32();
    assertClose(got, ref.param, TOL);
    expect(Math.max(...Array.from(got, (x, i) => Math.abs(x - wrong[i]!)))).toBeGreaterThan(1e-2);
    opt.dispose();
    p.dispose();
  });

  it("leaves parameters without a gradient alone and does not advance their step", async () => {
    const flat = FlatParams.create([[3], [4]]);
    flat.set(0, [1, 2, 3]);
    flat.set(1, [4, 5, 6, 7]);
    const opt = new AdamW(flat, { lr: 0.1, weightDecay: 0.5 });
    flat.params[0]!.grad = Tensor.from([1, -1, 0.5], [3]).keep();
    opt.step();
    expect(opt.steps).toEqual([1, 0]);
    expect(Array.from(await flat.params[1]!.toFloat32())).toEqual([4, 5, 6, 7]);
    const ref = adamwRefState([1, 2, 3]);
    adamwRefStep(ref, [1, -1, 0.5], { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.5 });
    assertClose(await flat.params[0]!.toFloat32(), ref.param, TOL);
    opt.zeroGrad();
    opt.step(); // no gradients at all: nothing dispatched
    expect(opt.lastStepDispatches).toBe(0);
    opt.dispose();
    flat.dispose();
  });

  it("takes gradients from backward, accumulated over two passes", async () => {
    const flat = FlatParams.create([[2, 3], [3]]);
    flat.set(0, [1, 2, 3, 4, 5, 6]);
    flat.set(1, [0.5, -0.5, 1]);
    const [w, b] = flat.params as [Tensor, Tensor];
    const x = Tensor.from([1, -2, 3, 1, -2, 3], [2, 3]).keep();
    const opt = new AdamW(flat, { lr: 0.01, weightDecay: 0 });
    // y = [w ∘ x, b ∘ b] seeded with ones: d/dw = x, d/db = 2b; two passes accumulate to twice that.
    for (let pass = 0; pass < 2; pass++) {
      tidy(() => {
        w.mul(x).backward({ gradient: Tensor.from([1, 1, 1, 1, 1, 1], [2, 3]) });
        b.mul(b).backward({ gradient: Tensor.from([1, 1, 1], [3]) });
      });
    }
    opt.step();
    const ref = [adamwRefState([1, 2, 3, 4, 5, 6]), adamwRefState([0.5, -0.5, 1])];
    const h = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
    adamwRefStep(ref[0]!, [2, -4, 6, 2, -4, 6], h);
    adamwRefStep(ref[1]!, [2, -2, 4], h);
    assertClose(await w.toFloat32(), ref[0]!.param, TOL);
    assertClose(await b.toFloat32(), ref[1]!.param, TOL);
    // After the step the gradients are views into the flat grad chunk.
    expect(w.grad!.storage).toBe(flat.chunks[0]!.grad.storage);
    opt.dispose();
    x.dispose();
    flat.dispose();
  });

  it("rejects bad parameters and options with messages naming them", () => {
    const a = Tensor.from([1, 2, 3, 4], [2, 2]).keep();
    expect(() => new AdamW([a, a])).toThrow(/param 1 \[2, 2\] appears more than once/);
    expect(() => new AdamW([a.transpose()])).toThrow(ShapeError);
    expect(() => new AdamW([Tensor.from(Int32Array.of(1), [1])])).toThrow(DTypeError);
    expect(() => new AdamW([a], { betas: [1, 0.9] })).toThrow(/group 0: betas\[0\] must be in \[0, 1\)/);
    expect(() => new AdamW([a], { lr: -1 })).toThrow(OptimizerError);
    expect(() => new AdamW([])).toThrow(/empty parameter list/);
    const opt = new AdamW([a]);
    a.grad = Tensor.from([1, 2, 3], [3]).keep();
    expect(() => opt.step()).toThrow(/gradient of param 0 is \[3\], the parameter \[2, 2\]/);
    opt.dispose();
    a.dispose();
  });
});
