import { beforeAll, describe, expect, it } from "vitest";
import type { Device } from "./device.js";
import { DisposedError, getDevice, noGrad, ShapeError, Tensor, tidy } from "./index.js";
import { assertClose, checkGradients, Rng } from "./testing.js";

let device: Device;
const STEPS = Number(process.env.MEM_STEPS ?? 10_000);
beforeAll(async () => {
  device = await getDevice();
});

describe("device", () => {
  it("reports the adapter, features and raised limits", () => {
    expect(device.info.vendor.length + device.info.description.length).toBeGreaterThan(0);
    expect(device.info.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 2 ** 20);
    expect(device.info.limits.maxBufferSize).toBeGreaterThan(256 * 2 ** 20);
  });

  it("surfaces WGSL validation errors naming the op", async () => {
    const t = Tensor.from([1, 2], [2]);
    device.dispatch({
      op: "broken_op",
      code: "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }",
      buffers: [],
      workgroups: [1],
    });
    await expect(device.sync()).rejects.toThrow("broken_op");
    t.dispose();
  });
});

describe("tensor", () => {
  it("round-trips every dtype", async () => {
    expect(Array.from(await Tensor.from([1.5, -2], [2]).data())).toEqual([1.5, -2]);
    expect(Array.from(await Tensor.from(Int32Array.from([-7, 9]), [2]).data())).toEqual([-7, 9]);
    expect(Array.from(await Tensor.from(Uint32Array.from([4e9, 1]), [2]).data())).toEqual([4e9, 1]);
    expect(Array.from(await Tensor.from([0.5, -65504, 1e-7], [3], { dtype: "f16" }).toFloat32())).toEqual([
      0.5, -65504, 1.1920928955078125e-7,
    ]);
  });

  it("refuses data that does not fill the shape", () => {
    expect(() => Tensor.from([1, 2, 3], [2, 2])).toThrow("3 values do not fill shape [2, 2]");
  });

  it("reshapes views without copying and copies when strides cannot express it", async () => {
    const x = Tensor.from(
      Float32Array.from({ length: 24 }, (_, i) => i),
      [2, 3, 4],
    );
    const r = x.reshape([6, -1]);
    expect(r.shape).toEqual([6, 4]);
    expect(r.storage).toBe(x.storage);
    const t = x.transpose(1, 2); // [2, 4, 3], non-contiguous
    const flat = t.reshape([24]);
    expect(flat.storage).not.toBe(x.storage);
    const want: number[] = [];
    for (let a = 0; a < 2; a++)
      for (let c = 0; c < 4; c++) for (let b = 0; b < 3; b++) want.push(a * 12 + b * 4 + c);
    expect(Array.from(await flat.data())).toEqual(want);
    expect(() => x.reshape([5, 5])).toThrow(ShapeError);
    // A view whose dims split one contiguous run stays a view.
    const s = x.narrow(0, 1, 1).reshape([3, 2, 2]);
    expect(s.storage).toBe(x.storage);
    expect(Array.from(await s.data())).toEqual(want.map((_, i) => 12 + i).slice(0, 12));
  });

  it("errors on use after dispose", () => {
    const x = Tensor.from([1], [1]);
    x.dispose();
    expect(() => x.add(1)).toThrow(DisposedError);
  });
});

describe("autograd", () => {
  it("chains through views and broadcasting (finite differences)", async () => {
    const rng = new Rng(3);
    await checkGradients({
      inputs: [
        { shape: [2, 3], data: rng.uniform(6) },
        { shape: [3, 1], data: rng.uniform(3) },
      ],
      gpu: ([a, b]) => a!.transpose().mul(b!).tanh().narrow(0, 1, 2).reshape([4]).expand([3, 4]).sum(0),
      reference: ([a, b]) => {
        const out = new Float64Array(4);
        let k = 0;
        for (let i = 1; i < 3; i++)
          for (let j = 0; j < 2; j++) out[k++] = 3 * Math.tanh(a![j * 3 + i]! * b![i]!);
        return out;
      },
    });
  });

  it("accumulates into .grad across backward calls and when a tensor is used twice", async () => {
    const x = Tensor.from([1, 2, 3], [3]);
    x.requiresGrad = true;
    tidy(() => x.mul(x).sum().backward());
    assertClose(await x.grad!.toFloat32(), [2, 4, 6], { atol: 1e-6 });
    tidy(() => x.add(x).sum().backward());
    assertClose(await x.grad!.toFloat32(), [4, 6, 8], { atol: 1e-6 });
  });

  it("records nothing under noGrad", () => {
    const x = Tensor.from([1], [1]);
    x.requiresGrad = true;
    const y = noGrad(() => x.mul(2));
    expect(y.gradFn).toBeNull();
  });

  it("refuses a second backward through a released graph", () => {
    const x = Tensor.from([1, 2], [2]);
    x.requiresGrad = true;
    const y = x.exp().sum();
    y.backward();
    expect(() => y.backward()).toThrow("released");
  });
});

describe("memory", () => {
  it("10,000 steps of forward + backward in tidy scopes keep live bytes flat", async () => {
    const w = Tensor.from(new Rng(5).uniform(64), [8, 8]).keep();
    w.requiresGrad = true;
    const x = Tensor.from(new Rng(6).uniform(32), [4, 8]).keep();
    const step = () =>
      tidy(() => {
        const y = x
          .mul(w.narrow(0, 0, 4))
          .silu()
          .sum(1)
          .square()
          .sum();
        y.backward();
        const g = w.grad!;
        w.grad = null;
        g.dispose();
      });
    for (let i = 0; i < 10; i++) step();
    await device.sync();
    const before = device.memory();
    // A training loop reads its loss every step or so; waiting every 100 steps is the lazy extreme.
    for (let i = 0; i < STEPS; i++) {
      step();
      if (i % 100 === 99) await device.sync();
    }
    await device.sync();
    const after = device.memory();
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.pooledBytes).toBeLessThanOrEqual(before.pooledBytes + 64 * 1024);
  });
});

describe("autograd across tidy scopes", () => {
  it("keeps gradients flowing when intermediates were disposed by the scope that made them", async () => {
    const { matmul } = await import("./index.js");
    const x = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
    x.requiresGrad = true;
    const w = Tensor.from([1, 1, 1, 1, 1, 1], [2, 3]);
    w.requiresGrad = true;
    const loss = tidy(() => matmul(x.mul(1), w, { transposeB: true }).sum());
    loss.backward();
    assertClose(await x.grad!.toFloat32(), [2, 2, 2, 2, 2, 2], { atol: 1e-6 });
    assertClose(await w.grad!.toFloat32(), [5, 7, 9, 5, 7, 9], { atol: 1e-6 });
  });
});

describe("backward outside tidy", () => {
  it("frees the backward's own temporaries", async () => {
    const { matmul } = await import("./index.js");
    const w = Tensor.from(new Rng(8).uniform(64), [8, 8]).keep();
    w.requiresGrad = true;
    const x = Tensor.from(new Rng(9).uniform(32), [4, 8]).keep();
    const step = () => {
      const l = tidy(() =>
        matmul(x, w)
          .silu()
          .add(Tensor.from(new Rng(1).uniform(8), [8]))
          .tanh()
          .sum(),
      );
      l.backward();
      l.dispose();
      w.grad!.dispose();
      w.grad = null;
    };
    for (let i = 0; i < 5; i++) step();
    await device.sync();
    const before = device.memory().liveBytes;
    for (let i = 0; i < 50; i++) step();
    await device.sync();
    expect(device.memory().liveBytes).toBe(before);
  });
});
