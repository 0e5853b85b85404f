import { type Device, getDevice, numel, Tensor } from "@webvlm/tensor";
import { assertClose, Rng } from "@webvlm/tensor/testing";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { FlatParams } from "../flat-params/flat-params.js";
import { clipGradNorm } from "./clip-grad-norm.js";
import { clipGradNormRef } from "./clip-grad-norm.ref.js";

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const SHAPES = [[5, 3], [1], [4097], [2, 2, 3], [9000]];

interface Setup {
  params: Tensor[];
  grads: Float32Array[];
  dispose: () => void;
}

/** FlatParams members (the first three shapes) and separate tensors (the rest), with random gradients. */
function setup(seed: number, std: number): Setup {
  const rng = new Rng(seed);
  const flat = FlatParams.create(SHAPES.slice(0, 3));
  const separate = SHAPES.slice(3).map((s) => Tensor.from(rng.normal(numel(s)), s).keep());
  const params = [...flat.params, ...separate];
  const grads = SHAPES.map((s) => rng.normal(numel(s), std));
  params.forEach((p, i) => {
    p.grad = Tensor.from(grads[i]!, SHAPES[i]!).keep();
  });
  return {
    params,
    grads,
    dispose: () => {
      flat.dispose();
      for (const t of separate) t.dispose();
    },
  };
}

describe("clipGradNorm", () => {
  for (const [label, std, maxNorm] of [
    ["clips when the norm exceeds maxNorm", 1, 5],
    ["leaves gradients as they are when the norm is below maxNorm", 0.01, 5],
  ] as const) {
    it(label, async () => {
      const s = setup(label.length, std);
      const reads = vi.spyOn(device, "read");
      const norm = clipGradNorm(s.params, maxNorm);
      // The coefficient is applied on the GPU: nothing came back to the CPU.
      expect(reads).not.toHaveBeenCalled();
      reads.mockRestore();
      const ref = clipGradNormRef(s.grads, maxNorm);
      expect(norm.shape).toEqual([]);
      expect(norm.dtype).toBe("f32");
      const got = await norm.item();
      expect(Math.abs(got - ref.norm) / ref.norm).toBeLessThan(1e-5);
      if (std === 1) expect(ref.norm).toBeGreaterThan(maxNorm);
      else expect(ref.norm).toBeLessThan(maxNorm);
      for (let i = 0; i < SHAPES.length; i++) {
        assertClose(await s.params[i]!.grad!.toFloat32(), ref.grads[i]!, {
          atol: 1e-7,
          rtol: 2e-6,
          what: `grad ${i}`,
        });
      }
      norm.dispose();
      s.dispose();
    });
  }

  it("reduces a FlatParams in one pass and works across binding windows", async () => {
    const s = setup(7, 0.5);
    const counts = new Map<string, number>();
    const original = device.dispatch.bind(device);
    vi.spyOn(device, "dispatch").mockImplementation((spec) => {
      counts.set(spec.op, (counts.get(spec.op) ?? 0) + 1);
      original(spec);
    });
    const norm = clipGradNorm(s.params.slice(0, 3), 1);
    // Flat members only: one reduce pass, one finish, one scale pass.
    expect(counts.get("clip_grad_norm_partial")).toBe(1);
    expect(counts.get("clip_grad_norm_finish")).toBe(1);
    expect(counts.get("clip_grad_norm_scale")).toBe(1);
    const ref = clipGradNormRef(s.grads.slice(0, 3), 1);
    expect(Math.abs((await norm.item()) - ref.norm) / ref.norm).toBeLessThan(1e-5);
    norm.dispose();
    s.dispose();
    vi.restoreAllMocks();

    // The same with 1 KiB bindings: the reduction and the scaling walk each buffer in windows.
    const w = setup(8, 0.5);
    const n2 = clipGradNorm(w.params, 3, { maxBindingBytes: 1024 });
    const ref2 = clipGradNormRef(w.grads, 3);
    expect(Math.abs((await n2.item()) - ref2.norm) / ref2.norm).toBeLessThan(1e-5);
    for (let i = 0; i < SHAPES.length; i++) {
      assertClose(await w.params[i]!.grad!.toFloat32(), ref2.grads[i]!, {
        atol: 1e-7,
        rtol: 2e-6,
        what: `windowed grad ${i}`,
      });
    }
    n2.dispose();
    w.dispose();
  });

  it("propagates a non-finite norm into every gradient, as torch does", async () => {
    const a = Tensor.from([1, 2], [2]).keep();
    const b = Tensor.from([3], [1]).keep();
    a.grad = Tensor.from([1, Number.NaN], [2]).keep();
    b.grad = Tensor.from([4], [1]).keep();
    const n = clipGradNorm([a, b], 1);
    expect(await n.item()).toBeNaN();
    expect(Array.from(await b.grad.toFloat32())).toEqual([Number.NaN]);
    for (const t of [n, a, b]) t.dispose();
  });

  it("returns 0 when no parameter has a gradient, and skips parameters without one", async () => {
    const a = Tensor.from([1, 2], [2]).keep();
    const b = Tensor.from([3], [1]).keep();
    const none = clipGradNorm([a, b], 1);
    expect(await none.item()).toBe(0);
    b.grad = Tensor.from([4], [1]).keep();
    const n = clipGradNorm([a, b], 2);
    expect(await n.item()).toBeCloseTo(4, 5);
    assertClose(await b.grad.toFloat32(), [2 * (4 / (4 + 1e-6))], { atol: 1e-6 });
    expect(() => clipGradNorm([a], -1)).toThrow(/maxNorm must be a number >= 0/);
    for (const t of [none, n, a, b]) t.dispose();
  });
});
