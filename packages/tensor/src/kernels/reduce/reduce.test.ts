import { beforeAll, describe, expect, it } from "vitest";
import { argmax, getDevice, max, mean, ShapeError, sum, Tensor } from "../../index.js";
import { assertClose, checkGradients, Rng } from "../../testing.js";
import { argmaxAxis, maxAxis, meanAxis, sumAxis } from "./reduce.js";
import { maxRef, meanRef, sumRef } from "./reduce.ref.js";
import { type RowVariant, withRowVariant } from "./row-kernel.js";

beforeAll(async () => {
  await getDevice();
});

const rng = new Rng(11);
const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);

// Shapes × axes covering: innermost and strided axes, odd and size-1 extents, long rows that are
// split into chunks (≥ 4096), and few outputs over a long strided axis.
const cases: [number[], number][] = [
  [[7], 0],
  [[1], 0],
  [[3, 5], 1],
  [[3, 5], 0],
  [[4, 1, 6], 1],
  [[2, 13, 3], 1],
  [[2, 3, 257], 2],
  [[130, 33], 1],
  [[5, 9000], 1],
  [[3, 40001], 1],
  [[1200, 3], 0],
  [[2, 1000, 2], 1],
  [[16, 16], 0],
  [[600, 8], 0],
  [[3, 700, 12], 1],
  [[2, 5, 40], 0],
];

const variants: RowVariant[] = ["rows", "subgroup", "tree"];

describe("sum / mean / max / argmax over one axis", () => {
  for (const variant of variants) {
    it(`match the f64 reference (${variant} row kernels)`, async () => {
      await withRowVariant(variant, async () => {
        for (const [shape, axis] of cases) {
          const x = rng.uniform(size(shape), -2, 2);
          // Exact ties in some rows: the first index must win.
          if (shape[axis]! > 3) for (let i = 0; i < x.length; i += 7) x[i] = 2;
          const t = Tensor.from(x, shape);
          const what = `${variant} ${JSON.stringify(shape)} axis ${axis}`;
          const s = sumAxis(t, axis, false);
          expect(s.shape).toEqual(shape.filter((_, i) => i !== axis));
          assertClose(await s.toFloat32(), sumRef(x, shape, axis), {
            atol: 1e-4,
            rtol: 1e-5,
            what: `sum ${what}`,
          });
          assertClose(await meanAxis(t, axis, true).toFloat32(), meanRef(x, shape, axis), {
            atol: 1e-6,
            rtol: 1e-5,
            what: `mean ${what}`,
          });
          const m = maxAxis(t, axis, true);
          expect(m.values.shape).toEqual(shape.map((d, i) => (i === axis ? 1 : d)));
          const want = maxRef(x, shape, axis);
          assertClose(await m.values.toFloat32(), want.values, { atol: 0, what: `max ${what}` });
          expect(Array.from(await m.indices.data()), `argmax ${what}`).toEqual(Array.from(want.indices));
          expect(Array.from(await argmaxAxis(t, axis).data())).toEqual(Array.from(want.indices));
          for (const u of [s, m.values, m.indices, t]) u.dispose();
        }
      });
    });
  }

  it("all-element variants, fluent methods and negative axes", async () => {
    const shape = [37, 211];
    const x = rng.uniform(size(shape), -3, 3);
    const t = Tensor.from(x, shape);
    const total = x.reduce((p, v) => p + v, 0);
    assertClose([await sum(t).item()], [total], { atol: 1e-3 });
    assertClose([await t.mean().item()], [total / x.length], { atol: 1e-6 });
    let mi = 0;
    for (let i = 1; i < x.length; i++) if (x[i]! > x[mi]!) mi = i;
    expect(await max(t).item()).toBe(x[mi]);
    expect(await argmax(t).item()).toBe(mi);
    expect(t.max(-1).shape).toEqual([37]);
    assertClose(await t.mean(-2).toFloat32(), meanRef(x, shape, 0), { atol: 1e-6 });
    assertClose(await mean(t, 1, true).toFloat32(), meanRef(x, shape, 1), { atol: 1e-6 });
    expect(t.argmax(0, true).shape).toEqual([1, 211]);
  });

  it("sums 2^22 elements in f32 without drift", async () => {
    const n = 1 << 22;
    const x = new Float32Array(n).fill(0.5);
    for (let i = 0; i < n; i += 3) x[i] = -0.25;
    const want = x.reduce((p, v) => p + v, 0);
    assertClose([await sum(Tensor.from(x, [n])).item()], [want], { atol: 0, rtol: 1e-6 });
  });

  it("reads non-contiguous views (transpose, narrow)", async () => {
    const x = rng.uniform(6 * 10, -1, 1);
    const t = Tensor.from(x, [6, 10]);
    const tt = t.transpose(); // [10, 6]
    const xt = new Float32Array(60);
    for (let i = 0; i < 6; i++) for (let j = 0; j < 10; j++) xt[j * 6 + i] = x[i * 10 + j]!;
    assertClose(await sumAxis(tt, 1).toFloat32(), sumRef(xt, [10, 6], 1), { atol: 1e-5 });
    const mt = maxAxis(tt, 0);
    expect(Array.from(await mt.indices.data())).toEqual(Array.from(maxRef(xt, [10, 6], 0).indices));
    // A contiguous view at offset 1: the vec4 column kernel falls back to scalar loads.
    const flat = rng.uniform(81, -1, 1);
    const shifted = Tensor.from(flat, [81]).narrow(0, 1, 80).reshape([10, 8]);
    assertClose(await sumAxis(shifted, 0).toFloat32(), sumRef(flat.slice(1), [10, 8], 0), {
      atol: 1e-5,
      what: "offset 1",
    });
    const nr = t.narrow(0, 2, 3); // rows 2..4, offset 20
    assertClose(await sumAxis(nr, 1).toFloat32(), sumRef(x.slice(20, 50), [3, 10], 1), { atol: 1e-5 });
    assertClose(await maxAxis(nr, 1).values.toFloat32(), maxRef(x.slice(20, 50), [3, 10], 1).values, {
      atol: 0,
    });
  });

  it("f16 storage accumulates in f32", async () => {
    const shape = [9, 517];
    const x = rng.uniform(size(shape), -1, 1);
    const t = Tensor.from(x, shape, { dtype: "f16" });
    const xr = await t.toFloat32(); // the values as f16 holds them
    const s = sumAxis(t, 1);
    expect(s.dtype).toBe("f16");
    assertClose(await s.toFloat32(), sumRef(xr, shape, 1), { atol: 2e-2, rtol: 2e-3, what: "f16 sum" });
    assertClose(await meanAxis(t, 0).toFloat32(), meanRef(xr, shape, 0), {
      atol: 1e-3,
      rtol: 2e-3,
      what: "f16 mean",
    });
    const m = maxAxis(t, 1);
    const want = maxRef(xr, shape, 1);
    assertClose(await m.values.toFloat32(), want.values, { atol: 0 });
    expect(Array.from(await m.indices.data())).toEqual(Array.from(want.indices));
  });

  it("empty dims: sum is 0, mean is NaN, max throws naming the shape", async () => {
    const e = Tensor.empty([3, 0], {});
    assertClose(await sumAxis(e, 1).toFloat32(), [0, 0, 0], { atol: 0 });
    const m = await meanAxis(e, 1).toFloat32();
    expect(Array.from(m).every(Number.isNaN)).toBe(true);
    expect(sumAxis(e, 0).shape).toEqual([0]);
    expect(maxAxis(e, 0).values.shape).toEqual([0]);
    expect(() => maxAxis(e, 1)).toThrow(ShapeError);
    expect(() => maxAxis(e, 1)).toThrow("[3, 0]");
    expect(() => sumAxis(e, 2)).toThrow("axis 2 is out of range for rank 2");
    expect(() => sumAxis(Tensor.from(Int32Array.from([1]), [1]), 0)).toThrow("i32");
  });

  it("all -inf rows still give an index (0), like torch", async () => {
    const t = Tensor.from([-Infinity, -Infinity, -Infinity, 1, -Infinity, 1], [2, 3]);
    expect(Array.from(await argmaxAxis(t, 1).data())).toEqual([0, 0]);
  });
});

describe("reduction gradients against finite differences", () => {
  for (const [shape, axis] of [
    [[3, 5], 1],
    [[4, 3, 2], 1],
    [[5, 4], 0],
    [[6], 0],
  ] as [number[], number][]) {
    it(`sum, mean, max over axis ${axis} of ${JSON.stringify(shape)}`, async () => {
      const x = rng.uniform(size(shape), -1, 1);
      await checkGradients({
        what: "sum",
        inputs: [{ shape, data: x }],
        gpu: ([t]) => sumAxis(t!, axis),
        reference: ([v]) => sumRef(v!, shape, axis),
      });
      await checkGradients({
        what: "mean",
        inputs: [{ shape, data: x }],
        gpu: ([t]) => meanAxis(t!, axis, true),
        reference: ([v]) => meanRef(v!, shape, axis),
      });
      await checkGradients({
        what: "max",
        inputs: [{ shape, data: x }],
        gpu: ([t]) => maxAxis(t!, axis).values,
        reference: ([v]) => maxRef(v!, shape, axis).values,
      });
    });
  }

  it("max sends the gradient to the first of tied maxima only", async () => {
    const t = Tensor.from([1, 3, 3, 2], [4]);
    t.requiresGrad = true;
    t.max(0).backward();
    expect(Array.from(await t.grad!.toFloat32())).toEqual([0, 1, 0, 0]);
  });

  it("max over a long split row (two passes) routes the gradient to the argmax", async () => {
    const n = 9000;
    const x = rng.uniform(n, -1, 1);
    x[6789] = 5;
    const t = Tensor.from(x, [1, n]);
    t.requiresGrad = true;
    maxAxis(t, 1).values.sum().backward();
    const g = await t.grad!.toFloat32();
    expect(g[6789]).toBe(1);
    expect(g.reduce((p, v) => p + v, 0)).toBe(1);
  });
});
