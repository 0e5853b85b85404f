import { beforeAll, describe, expect, it } from "vitest";
import { DTypeError, getDevice, ShapeError, Tensor } from "../../index.js";
import { assertClose, checkGradients, Rng } from "../../testing.js";
import { type RowVariant, withRowVariant } from "../reduce/row-kernel.js";
import { crossEntropy, validateTargets } from "./cross-entropy.js";
import { crossEntropyRef } from "./cross-entropy.ref.js";

beforeAll(async () => {
  await getDevice();
});

const rng = new Rng(9);
const reductions = ["mean", "sum", "none"] as const;

function targetsFor(n: number, v: number, ignoreEvery = 0): Int32Array {
  const t = rng.int(n, 0, v);
  if (ignoreEvery) for (let i = 0; i < n; i += ignoreEvery) t[i] = -100;
  return t;
}

describe("crossEntropy forward", () => {
  for (const variant of ["rows", "subgroup", "tree"] as RowVariant[]) {
    it(`matches the f64 reference (${variant})`, async () => {
      await withRowVariant(variant, async () => {
        for (const [n, v] of [
          [1, 1],
          [1, 5],
          [4, 7],
          [9, 32],
          [130, 13],
          [3, 1001],
        ] as [number, number][]) {
          const x = rng.uniform(n * v, -4, 4);
          const t = targetsFor(n, v, n > 3 ? 3 : 0);
          for (const reduction of reductions) {
            const tt = reduction === "sum" ? Tensor.from(t, [n]) : t; // host and device targets
            const loss = crossEntropy(Tensor.from(x, [n, v]), tt, { reduction });
            expect(loss.shape).toEqual(reduction === "none" ? [n] : []);
            assertClose(await loss.toFloat32(), crossEntropyRef(x, t, v, -100, reduction), {
              atol: 1e-5,
              rtol: 1e-5,
              what: `${variant} [${n}, ${v}] ${reduction}`,
            });
          }
        }
      });
    });
  }

  it("huge logits stay finite", async () => {
    const x = Float32Array.from([1e30, -1e30, 0, 3e38, 3e38, 1, 1e4, -1e4, 5e3]);
    const t = Int32Array.from([1, 2, 0]);
    const got = await crossEntropy(Tensor.from(x, [3, 3]), t, { reduction: "none" }).toFloat32();
    assertClose(got, crossEntropyRef(x, t, 3, -100, "none"), { atol: 1e-2, rtol: 1e-6 });
    expect(Array.from(got).every(Number.isFinite)).toBe(true);
  });

  it("custom ignoreIndex; all rows ignored gives NaN for the mean (like torch), 0 for the sum", async () => {
    const x = rng.uniform(12, -1, 1);
    const t = Int32Array.from([2, 7, 1]);
    assertClose(
      [await crossEntropy(Tensor.from(x, [3, 4]), t, { ignoreIndex: 7 }).item()],
      crossEntropyRef(x, t, 4, 7, "mean"),
      { atol: 1e-6 },
    );
    const all = Int32Array.from([-100, -100, -100]);
    expect(Number.isNaN(await crossEntropy(Tensor.from(x, [3, 4]), all).item())).toBe(true);
    expect(await crossEntropy(Tensor.from(x, [3, 4]), all, { reduction: "sum" }).item()).toBe(0);
    expect(Number.isNaN(await crossEntropy(Tensor.empty([0, 4], {}), new Int32Array(0)).item())).toBe(true);
  });

  it("non-contiguous logits and f16 logits", async () => {
    const x = rng.uniform(5 * 6, -3, 3);
    const t = Int32Array.from([0, 5, 2, 3, 1]);
    const lt = Tensor.from(x, [6, 5]).transpose(); // [5, 6]
    const xt = new Float32Array(30);
    for (let i = 0; i < 6; i++) for (let j = 0; j < 5; j++) xt[j * 6 + i] = x[i * 5 + j]!;
    assertClose([await crossEntropy(lt, t).item()], crossEntropyRef(xt, t, 6, -100, "mean"), { atol: 1e-5 });
    const h = Tensor.from(xt, [5, 6], { dtype: "f16" });
    const hr = await h.toFloat32();
    const loss = crossEntropy(h, t, { reduction: "none" });
    expect(loss.dtype).toBe("f16");
    assertClose(await loss.toFloat32(), crossEntropyRef(hr, t, 6, -100, "none"), { atol: 1e-2, rtol: 2e-3 });
  });

  it("bad targets: host targets throw naming the row; device targets give NaN and validateTargets throws", async () => {
    const x = Tensor.from(new Float32Array(12), [3, 4]);
    expect(() => crossEntropy(x, Int32Array.from([0, 4, 1]))).toThrow(ShapeError);
    expect(() => crossEntropy(x, Int32Array.from([0, 4, 1]))).toThrow("target 4 at row 1 is outside [0, 4)");
    expect(() => crossEntropy(x, Int32Array.from([0, 1]))).toThrow(
      "targets [2] must be [3] for logits [3, 4]",
    );
    expect(() =>
      crossEntropy(Tensor.from(new Float32Array(12), [3, 2, 2]), Int32Array.from([0, 1, 1])),
    ).toThrow("[N, V]");
    expect(() => crossEntropy(x, Tensor.from([0, 1, 1], [3]))).toThrow(DTypeError);
    const bad = Tensor.from(Int32Array.from([0, -3, 1]), [3]);
    const rows = await crossEntropy(x, bad, { reduction: "none" }).toFloat32();
    expect(Number.isNaN(rows[1])).toBe(true);
    expect(rows[0]).toBeCloseTo(Math.log(4), 5);
    await expect(validateTargets(bad, 4)).rejects.toThrow("target -3 at row 1");
    await validateTargets(Tensor.from(Int32Array.from([0, -100, 3]), [3]), 4);
  });
});

describe("crossEntropy gradients", () => {
  for (const reduction of reductions) {
    for (const variant of ["rows", "tree"] as RowVariant[]) {
      it(`finite differences, ${reduction} (${variant})`, async () => {
        const [n, v] = [5, 6];
        const x = rng.uniform(n * v, -2, 2);
        const t = Int32Array.from([3, -100, 0, 5, 2]);
        await withRowVariant(variant, () =>
          checkGradients({
            what: `crossEntropy ${reduction}`,
            inputs: [{ shape: [n, v], data: x }],
            gpu: ([a]) => crossEntropy(a!, t, { reduction }),
            reference: ([a]) => crossEntropyRef(a!, t, v, -100, reduction),
          }),
        );
      });
    }
  }

  it("ignored rows get a zero gradient; mean divides by the non-ignored count", async () => {
    const x = rng.uniform(3 * 4, -1, 1);
    const lt = Tensor.from(x, [3, 4]);
    lt.requiresGrad = true;
    crossEntropy(lt, Tensor.from(Int32Array.from([1, -100, 2]), [3])).backward();
    const g = await lt.grad!.toFloat32();
    expect(Array.from(g.slice(4, 8))).toEqual([0, 0, 0, 0]);
    // Each valid row's gradient sums to zero (softmax - onehot) and has -(1 - p)/2 at the target.
    assertClose([g[0]! + g[1]! + g[2]! + g[3]!], [0], { atol: 1e-6 });
    expect(g[1]!).toBeLessThan(0);
  });
});
