import { beforeAll, describe, expect, it } from "vitest";
import { ShapeError, Tensor, getDevice, tidy } from "../../index.js";
import { Rng, assertClose, checkGradients } from "../../testing.js";
import { BINARY_REF, UNARY_REF, broadcastRef } from "./elementwise.ref.js";

beforeAll(async () => {
  await getDevice();
});

const rng = new Rng(1);

// Inputs per op kept inside each op's domain.
const domain: Record<string, [number, number]> = {
  log: [0.1, 3],
  sqrt: [0.1, 3],
  rsqrt: [0.1, 3],
  reciprocal: [0.5, 3],
  pow_scalar: [0.2, 2],
};
const params: Record<string, [number, number]> = {
  scale: [1.7, 0],
  add_scalar: [-0.3, 0],
  pow_scalar: [2.5, 0],
  clamp: [-0.4, 0.6],
};

describe("unary ops", () => {
  for (const [op, ref] of Object.entries(UNARY_REF)) {
    it(`${op} matches the f64 reference on odd sizes and large inputs`, async () => {
      const [lo, hi] = domain[op] ?? [-6, 6];
      const [alpha, beta] = params[op] ?? [0, 0];
      for (const shape of [[1], [7, 13], [3, 1, 257], [0, 4]]) {
        const n = shape.reduce((p, d) => p * d, 1);
        const x = rng.uniform(n, lo, hi);
        const { unary } = await import("./elementwise.js");
        const got = await tidy(() => unary(op, Tensor.from(x, shape), alpha, beta)).toFloat32();
        const want = Array.from(x, (v) => ref(v, alpha, beta));
        assertClose(got, want, { atol: 2e-6, rtol: 2e-6, what: `${op} ${shape}` });
      }
    });
  }

  it("tanh, sigmoid, silu and gelu stay finite for huge inputs", async () => {
    const x = Float32Array.from([-1e4, -100, -30, 30, 100, 1e4]);
    for (const op of ["tanh", "sigmoid", "silu", "gelu", "gelu_tanh"]) {
      const { unary } = await import("./elementwise.js");
      const got = await unary(op, Tensor.from(x, [6])).toFloat32();
      assertClose(got, Array.from(x, (v) => UNARY_REF[op]!(v, 0, 0)), { atol: 1e-6, rtol: 1e-6, what: op });
    }
  });

  it("pow with an integer exponent accepts negative bases, like torch.pow", async () => {
    const x = Float32Array.from([-2, -0.5, 0, 0.5, 3]);
    const t = Tensor.from(x, [5]);
    assertClose(await t.pow(3).toFloat32(), [-8, -0.125, 0, 0.125, 27], { atol: 1e-6 });
    assertClose(await t.pow(2).toFloat32(), [4, 0.25, 0, 0.25, 9], { atol: 1e-6 });
    assertClose(await t.pow(0).toFloat32(), [1, 1, 1, 1, 1], { atol: 0 });
    const half = await t.pow(0.5).toFloat32();
    expect(Number.isNaN(half[0])).toBe(true);
  });
});

describe("binary ops with broadcasting", () => {
  const cases: [number[], number[]][] = [
    [[5], [5]],
    [[4, 3], [3]],
    [[2, 1, 5], [3, 1]],
    [[1], [6, 7]],
    [[3, 0], [1]],
  ];
  for (const [op, ref] of Object.entries(BINARY_REF)) {
    it(`${op} broadcasts like numpy`, async () => {
      for (const [as, bs] of cases) {
        const a = rng.uniform(as.reduce((p, d) => p * d, 1), op === "pow" ? 0.2 : -3, 3);
        const b = rng.uniform(bs.reduce((p, d) => p * d, 1), -3, 3);
        if (op === "div") for (let i = 0; i < b.length; i++) if (Math.abs(b[i]!) < 0.3) b[i] = 0.5;
        // Comparisons on equal values need exact ties.
        if (op === "eq" || op === "ne") for (let i = 0; i < Math.min(a.length, b.length); i += 2) a[i] = b[i]!;
        const want = broadcastRef(ref, a, as, b, bs);
        const { binary } = await import("./elementwise.js");
        const out = binary(op, Tensor.from(a, as), Tensor.from(b, bs));
        expect(out.shape).toEqual(want.shape);
        assertClose(await out.toFloat32(), want.data, { atol: 2e-6, rtol: 2e-6, what: `${op} ${as} ${bs}` });
      }
    });
  }

  it("names both shapes when they do not broadcast", () => {
    const a = Tensor.from(new Float32Array(6), [2, 3]);
    const b = Tensor.from(new Float32Array(4), [4]);
    expect(() => a.add(b)).toThrow(ShapeError);
    expect(() => a.add(b)).toThrow("[2, 3] and [4]");
  });

  it("reads non-contiguous views (transpose, narrow, expand) without copies", async () => {
    const a = rng.uniform(12, -1, 1);
    const t = Tensor.from(a, [3, 4]);
    const tt = t.transpose(); // [4, 3]
    const got = await tt.add(1).toFloat32();
    const want: number[] = [];
    for (let j = 0; j < 4; j++) for (let i = 0; i < 3; i++) want.push(a[i * 4 + j]! + 1);
    assertClose(got, want, { atol: 1e-6 });
    const n = t.narrow(1, 1, 2); // [3, 2]
    assertClose(await n.mul(2).toFloat32(), [0, 1, 2].flatMap((i) => [a[i * 4 + 1]! * 2, a[i * 4 + 2]! * 2]), { atol: 1e-6 });
    expect(tt.storage).toBe(t.storage);
  });

  it("supports f16 storage with f16 tolerances", async () => {
    const a = rng.uniform(100, -4, 4);
    const b = rng.uniform(100, -4, 4);
    const ta = Tensor.from(a, [10, 10], { dtype: "f16" });
    const tb = Tensor.from(b, [10, 10], { dtype: "f16" });
    const got = await ta.mul(tb).silu().toFloat32();
    const want = Array.from(a, (v, i) => UNARY_REF.silu!(v * b[i]!, 0, 0));
    assertClose(got, want, { atol: 2e-2, rtol: 4e-3 });
  });

  it("integer add/mul and casts", async () => {
    const a = Tensor.from(Int32Array.from([1, -2, 3]), [3]);
    const b = Tensor.from(Int32Array.from([10, 20, 30]), [3]);
    expect(Array.from(await a.add(b).data())).toEqual([11, 18, 33]);
    expect(Array.from(await a.cast("f32").data())).toEqual([1, -2, 3]);
    const f = Tensor.from([1.9, -2.7], [2]);
    expect(Array.from(await f.cast("i32").data())).toEqual([1, -2]);
  });
});

describe("gradients against finite differences", () => {
  for (const op of Object.keys(UNARY_REF)) {
    it(`d ${op}`, async () => {
      const [lo, hi] = domain[op] ?? [-2, 2];
      const [alpha, beta] = params[op] ?? [0, 0];
      const x = rng.uniform(11, lo, hi);
      if (op === "relu" || op === "abs" || op === "clamp") for (let i = 0; i < x.length; i++) if (Math.abs(x[i]! - alpha) < 0.05 || Math.abs(x[i]! - beta) < 0.05 || Math.abs(x[i]!) < 0.05) x[i] = 0.3;
      const { unary } = await import("./elementwise.js");
      await checkGradients({
        what: op,
        inputs: [{ shape: [11], data: x }],
        gpu: ([t]) => unary(op, t!, alpha, beta),
        reference: ([v]) => v!.map((e) => UNARY_REF[op]!(e, alpha, beta)),
        atol: 2e-3,
        rtol: 2e-3,
      });
    });
  }
  for (const op of ["add", "sub", "mul", "div", "pow", "maximum", "minimum"]) {
    it(`d ${op} with broadcasting`, async () => {
      const a = rng.uniform(12, 0.5, 2);
      const b = rng.uniform(4, 0.6, 2.2);
      const { binary } = await import("./elementwise.js");
      await checkGradients({
        what: op,
        inputs: [
          { shape: [3, 4], data: a },
          { shape: [4], data: b },
        ],
        gpu: ([x, y]) => binary(op, x!, y!),
        reference: ([x, y]) => broadcastRef(BINARY_REF[op]!, x!, [3, 4], y!, [4]).data,
        atol: 2e-3,
        rtol: 2e-3,
      });
    });
  }
});
