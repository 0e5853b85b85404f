import { beforeAll, describe, expect, it } from "vitest";
import { DTypeError, getDevice, ShapeError, Tensor } from "../../index.js";
import { assertClose, checkGradients, Rng } from "../../testing.js";
import { maskedFill, where } from "./where.js";
import { whereRef } from "./where.ref.js";

beforeAll(async () => {
  await getDevice();
});

const rng = new Rng(51);
const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
const mask = (n: number) => Float32Array.from(rng.uniform(n), (v) => (v > 0 ? 1 : 0));

describe("where", () => {
  const cases: [number[], number[], number[]][] = [
    [
      [7, 5],
      [7, 5],
      [7, 5],
    ],
    [[7, 1], [1, 5], [5]],
    [[1], [3, 4], [2, 3, 1]],
    [[2, 1, 3], [1], [4, 1]],
    [[0, 3], [3], [1]],
  ];
  for (const [cs, as, bs] of cases) {
    it(`broadcasts cond [${cs}], a [${as}], b [${bs}]`, async () => {
      const c = mask(size(cs));
      const a = rng.uniform(size(as));
      const b = rng.uniform(size(bs));
      const want = whereRef({ data: c, shape: cs }, { data: a, shape: as }, { data: b, shape: bs });
      const y = where(Tensor.from(c, cs), Tensor.from(a, as), Tensor.from(b, bs));
      expect(y.shape).toEqual(want.shape);
      assertClose(await y.toFloat32(), want.data, { atol: 0 });
    });
  }

  it("takes cond of any dtype (non-zero, NaN and -0 handled like torch), scalars, views, f16", async () => {
    const a = Tensor.from([1, 2, 3, 4, 5], [5]);
    const b = Tensor.from([-1, -2, -3, -4, -5], [5]);
    const cf = Tensor.from([0, Number.NaN, -0, 0.5, -3], [5]);
    expect(Array.from(await where(cf, a, b).toFloat32())).toEqual([-1, 2, -3, 4, 5]);
    const ci = Tensor.from(Int32Array.from([0, -7, 0, 1, 0]), [5]);
    expect(Array.from(await where(ci, a, b).toFloat32())).toEqual([-1, 2, -3, 4, -5]);
    const cu = Tensor.from(Uint32Array.from([4e9, 0, 0, 0, 1]), [5]);
    expect(Array.from(await where(cu, a, 9).toFloat32())).toEqual([1, 9, 9, 9, 5]);
    const ch = Tensor.from([0, 1, 0, 1, 0], [5], { dtype: "f16" });
    expect(Array.from(await where(ch, -0.5, b).toFloat32())).toEqual([-1, -0.5, -3, -0.5, -5]);
    // Transposed a, expanded b.
    const ad = rng.uniform(12);
    const at = Tensor.from(ad, [4, 3]).transpose(); // [3, 4]
    const be = Tensor.from([10, 20, 30], [3, 1]).expand([3, 4]);
    const cd = mask(12);
    const want = whereRef(
      { data: cd, shape: [3, 4] },
      { data: Array.from({ length: 12 }, (_, i) => ad[(i % 4) * 3 + Math.floor(i / 4)]!), shape: [3, 4] },
      { data: [10, 20, 30], shape: [3, 1] },
    );
    assertClose(await where(Tensor.from(cd, [3, 4]), at, be).toFloat32(), want.data, { atol: 0 });
    const h = where(
      ci,
      Tensor.from([1.5, 2, 3, 4, 5], [5], { dtype: "f16" }),
      Tensor.from([0, 0, 0, 0, 0], [5], { dtype: "f16" }),
    );
    expect(h.dtype).toBe("f16");
    expect(Array.from(await h.toFloat32())).toEqual([0, 2, 0, 4, 0]);
    const ints = where(ci, Tensor.from(Int32Array.from([7, 8, 9, 10, 11]), [5]), -2147483647);
    expect(Array.from(await ints.data())).toEqual([-2147483647, 8, -2147483647, 10, -2147483647]);
  });

  it("names shapes and dtypes on bad input", () => {
    const c = Tensor.from([1, 0], [2]);
    expect(() => where(c, Tensor.from([1, 2, 3], [3]), 0)).toThrow(ShapeError);
    expect(() => where(c, Tensor.from([1, 2, 3], [3]), 0)).toThrow("[2] and [3]");
    expect(() => where(c, Tensor.from([1, 2], [2]), Tensor.from([1, 2], [2], { dtype: "f16" }))).toThrow(
      DTypeError,
    );
    expect(() => maskedFill(Tensor.from([1], [1]), c, 0)).toThrow(
      "masked_fill: mask [2] does not broadcast to x [1]",
    );
  });

  it("gradients flow to a and b, summed over their broadcast dims", async () => {
    const c = mask(4 * 3);
    await checkGradients({
      what: "where",
      inputs: [
        { shape: [4, 1], data: rng.uniform(4) },
        { shape: [3], data: rng.uniform(3) },
      ],
      gpu: ([a, b]) => where(Tensor.from(c, [4, 3]), a!, b!),
      reference: ([a, b]) =>
        whereRef({ data: c, shape: [4, 3] }, { data: a!, shape: [4, 1] }, { data: b!, shape: [3] }).data,
    });
  });
});

describe("maskedFill", () => {
  it("fills where a broadcast mask is set, and its gradient is zero there", async () => {
    const x = rng.uniform(2 * 3 * 5);
    const m = Int32Array.from([1, 0, 0, 1, 1]);
    const want = whereRef(
      { data: m, shape: [5] },
      { data: [-1e9], shape: [1] },
      { data: x, shape: [2, 3, 5] },
    );
    const y = maskedFill(Tensor.from(x, [2, 3, 5]), Tensor.from(m, [5]), -1e9);
    assertClose(await y.toFloat32(), Array.from(want.data, Math.fround), { atol: 0 });
    await checkGradients({
      what: "masked_fill",
      inputs: [{ shape: [2, 3, 5], data: x }],
      gpu: ([t]) => maskedFill(t!, Tensor.from(m, [5]), 3),
      reference: ([t]) =>
        whereRef({ data: m, shape: [5] }, { data: [3], shape: [1] }, { data: t!, shape: [2, 3, 5] }).data,
    });
  });
});
