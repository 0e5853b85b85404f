import { beforeAll, describe, expect, it } from "vitest";
import { fmtShape } from "../../errors.js";
import { getDevice, ShapeError, Tensor, tidy } from "../../index.js";
import { assertClose, checkGradients, Rng } from "../../testing.js";
import { BINARY_REF, broadcastRef, UNARY_REF } from "./elementwise.ref.js";

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
      assertClose(
        got,
        Array.from(x, (v) => UNARY_REF[op]!(v, 0, 0)),
        { atol: 1e-6, rtol: 1e-6, what: op },
      );
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
    [
      [2, 1, 5],
      [3, 1],
    ],
    [[1], [6, 7]],
    [[3, 0], [1]],
  ];
  for (const [op, ref] of Object.entries(BINARY_REF)) {
    it(`${op} broadcasts like numpy`, async () => {
      for (const [as, bs] of cases) {
        const a = rng.uniform(
          as.reduce((p, d) => p * d, 1),
          op === "pow" ? 0.2 : -3,
          3,
        );
        const b = rng.uniform(
          bs.reduce((p, d) => p * d, 1),
          -3,
          3,
        );
        if (op === "div") for (let i = 0; i < b.length; i++) if (Math.abs(b[i]!) < 0.3) b[i] = 0.5;
        // Comparisons on equal values need exact ties.
        if (op === "eq" || op === "ne")
          for (let i = 0; i < Math.min(a.length, b.length); i += 2) a[i] = b[i]!;
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
    assertClose(
      await n.mul(2).toFloat32(),
      [0, 1, 2].flatMap((i) => [a[i * 4 + 1]! * 2, a[i * 4 + 2]! * 2]),
      { atol: 1e-6 },
    );
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
      if (op === "relu" || op === "abs" || op === "clamp")
        for (let i = 0; i < x.length; i++)
          if (Math.abs(x[i]! - alpha) < 0.05 || Math.abs(x[i]! - beta) < 0.05 || Math.abs(x[i]!) < 0.05)
            x[i] = 0.3;
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

describe("strided views: tiled permutes and transposes", () => {
  /** Logical values of a view: walk its strides over the host copy of its storage. */
  function viewRef(
    phys: ArrayLike<number>,
    shape: readonly number[],
    strides: readonly number[],
    offset: number,
  ): number[] {
    const n = shape.reduce((p, d) => p * d, 1);
    const out: number[] = [];
    const idx = new Array<number>(shape.length).fill(0);
    for (let e = 0; e < n; e++) {
      let at = offset;
      for (let a = 0; a < shape.length; a++) at += idx[a]! * strides[a]!;
      out.push(phys[at]!);
      for (let a = shape.length - 1; a >= 0; a--) {
        if (++idx[a]! < shape[a]!) break;
        idx[a] = 0;
      }
    }
    return out;
  }
  function randomPermutation(rank: number): number[] {
    const p = Array.from({ length: rank }, (_, i) => i);
    for (let i = rank - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      [p[i], p[j]] = [p[j]!, p[i]!];
    }
    return p;
  }
  const shapes = [
    [37, 53],
    [64, 48], // every stride a multiple of 4: vec4 loads and stores
    [5, 9, 7],
    [3, 16, 20],
    [2, 1, 33, 3],
    [4, 12, 5, 8],
    [6, 7, 5, 11],
  ];

  it("contiguous() of random permutations matches the reference (f32, f16, i32, offset views)", async () => {
    for (const shape of shapes) {
      for (let trial = 0; trial < 3; trial++) {
        const perm = randomPermutation(shape.length);
        const n = shape.reduce((p, d) => p * d, 1);
        for (const dtype of ["f32", "f16", "i32"] as const) {
          // One extra leading row, then narrowed away: a view at a non-zero (odd) offset.
          const extra = trial === 2 ? 1 : 0;
          const host =
            dtype === "i32" ? rng.int(n + extra * n, -1000, 1000) : rng.uniform(n + extra * n, -4, 4);
          const full = Tensor.from(host, [extra + 1, ...shape], { dtype });
          const base = full.narrow(0, extra, 1).squeeze(0);
          const phys = dtype === "f16" ? await full.toFloat32() : Array.from(await full.data());
          const v = base.permute(perm);
          const got = tidy(() => v.contiguous());
          expect(got.shape).toEqual(perm.map((d) => shape[d]));
          const want = viewRef(phys, v.shape, v.strides, v.offset);
          const what = `${dtype} ${fmtShape(shape)} permute ${fmtShape(perm)} offset ${v.offset}`;
          assertClose(dtype === "f16" ? await got.toFloat32() : Array.from(await got.data()), want, {
            atol: 0,
            what,
          });
          for (const t of [full, base, v, got]) t.dispose();
        }
      }
    }
  });

  it("binary ops on a transposed operand, broadcasting, and assign into a transposed view", async () => {
    for (const [r, c] of [
      [37, 53],
      [64, 48],
      [3, 130],
    ] as const) {
      const a = rng.uniform(r * c, -2, 2);
      const b = rng.uniform(c * r, -2, 2);
      const bias = rng.uniform(r, -1, 1);
      const ta = Tensor.from(a, [r, c]);
      const tb = Tensor.from(b, [c, r]);
      const tbias = Tensor.from(bias, [r]);
      // a^T [c, r] * b [c, r] - bias [r]
      const got = tidy(() => ta.transpose().mul(tb).sub(tbias));
      const want: number[] = [];
      for (let i = 0; i < c; i++)
        for (let j = 0; j < r; j++) want.push(a[j * c + i]! * b[i * r + j]! - bias[j]!);
      assertClose(await got.toFloat32(), want, { atol: 1e-5, what: `a^T * b - bias [${r}, ${c}]` });
      // Write b [c, r] through a transposed view of a fresh [r, c] tensor: the tensor becomes b^T.
      const dst = Tensor.from(new Float32Array(r * c), [r, c]);
      const { assign } = await import("./elementwise.js");
      assign(dst.transpose(), tb);
      const wantT: number[] = [];
      for (let j = 0; j < r; j++) for (let i = 0; i < c; i++) wantT.push(b[i * r + j]!);
      assertClose(await dst.toFloat32(), wantT, {
        atol: 0,
        what: `assign into transposed view [${r}, ${c}]`,
      });
      for (const t of [ta, tb, tbias, got, dst]) t.dispose();
    }
  });

  it("plans a tile for transposes and leaves tiny tiles to the generic kernel", async () => {
    const { planTiles } = await import("./elementwise.js");
    // [5, 7] read transposed from a contiguous [7, 5]: X is the output's axis 1, Y the input's unit axis 0.
    const p = planTiles(
      [5, 7],
      [
        [1, 5],
        [7, 1],
      ],
    );
    expect(p).toMatchObject({ nx: 7, ny: 5, sx: [5, 1], sy: [1, 7], batchShape: [] });
    // Axes every operand walks as one merge: [2, 3, 4] with an inner [3, 4] block contiguous in both.
    const q = planTiles(
      [2, 3, 4],
      [
        [1, 8, 2],
        [12, 4, 1],
      ],
    );
    expect(q?.batchShape).toEqual([]);
    expect(
      planTiles(
        [1000, 2, 2],
        [
          [4, 1, 2],
          [4, 2, 1],
        ],
      ),
    ).toBeNull();
  });
});
