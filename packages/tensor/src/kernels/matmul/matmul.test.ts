import { beforeAll, describe, expect, it } from "vitest";
import type { Device } from "../../device.js";
import { f16ArrayToF32, f32ArrayToF16 } from "../../dtype.js";
import { DTypeError, getDevice, ShapeError, Tensor } from "../../index.js";
import { assertClose, checkGradients, Rng } from "../../testing.js";
import { matmul } from "./matmul.js";
import { matmulRef } from "./matmul.ref.js";
import { type MatmulVariant, matmulShader } from "./matmul-shader.js";

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

interface Case {
  a: number[];
  b: number[];
  transposeA?: boolean;
  transposeB?: boolean;
  bias?: boolean;
}

/** Runs one case on the GPU and on the reference; f32 tolerance scales with √K. */
async function check(
  c: Case,
  options: { dtype?: "f32" | "f16"; variant?: MatmulVariant; seed?: number } = {},
): Promise<void> {
  const dtype = options.dtype ?? "f32";
  const rng = new Rng(options.seed ?? 1);
  const size = (s: number[]) => s.reduce((p, d) => p * d, 1);
  let ad = rng.uniform(size(c.a));
  let bd = rng.uniform(size(c.b));
  const N = c.transposeB ? c.b[c.b.length - 2]! : c.b[c.b.length - 1]!;
  let biasd = c.bias ? rng.uniform(N) : undefined;
  if (dtype === "f16") {
    // The reference sees exactly the halves the GPU reads.
    ad = f16ArrayToF32(f32ArrayToF16(ad));
    bd = f16ArrayToF32(f32ArrayToF16(bd));
    if (biasd) biasd = f16ArrayToF32(f32ArrayToF16(biasd));
  }
  const a = Tensor.from(ad, c.a, { dtype });
  const b = Tensor.from(bd, c.b, { dtype });
  const bias = biasd ? Tensor.from(biasd, [N], { dtype }) : undefined;
  const y = matmul(a, b, {
    transposeA: c.transposeA,
    transposeB: c.transposeB,
    bias,
    variant: options.variant,
  });
  const ref = matmulRef({ data: ad, shape: c.a }, { data: bd, shape: c.b }, { ...c, bias: biasd });
  expect(y.shape).toEqual(ref.shape);
  expect(y.dtype).toBe(dtype);
  const got = await y.toFloat32();
  const K = c.transposeA ? c.a[c.a.length - 2]! : c.a[c.a.length - 1]!;
  // Inputs in [-1, 1]: f32 error grows like √K ulps; f16 output rounds to 11 bits.
  const tol =
    dtype === "f32"
      ? { atol: 1e-5 * Math.sqrt(K + 1), rtol: 1e-5 }
      : { atol: 2e-3 * Math.sqrt(K + 1), rtol: 1e-3 };
  assertClose(got, ref.data, { ...tol, what: `matmul ${JSON.stringify(c)} ${dtype}` });
  for (const t of [a, b, bias, y]) t?.dispose();
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [65, 33, 129],
  [257, 100, 3],
  [64, 64, 64],
  [3, 1, 200],
  [1, 77, 40],
];

describe("matmul", () => {
  for (const [M, K, N] of SHAPES) {
    it(`[${M}, ${K}] x [${K}, ${N}]`, async () => {
      await check({ a: [M, K], b: [K, N] });
    });
  }

  it("reads transposed operands in place", async () => {
    for (const [M, K, N] of [
      [7, 13, 5],
      [65, 33, 129],
    ] as const) {
      await check({ a: [K, M], b: [K, N], transposeA: true });
      await check({ a: [M, K], b: [N, K], transposeB: true });
      await check({ a: [K, M], b: [N, K], transposeA: true, transposeB: true });
    }
  });

  it("adds a bias to every row", async () => {
    await check({ a: [7, 13], b: [13, 5], bias: true });
    await check({ a: [2, 65, 33], b: [129, 33], transposeB: true, bias: true });
  });

  it("K = 0 gives the bias, or zeros", async () => {
    await check({ a: [3, 0], b: [0, 4] });
    await check({ a: [3, 0], b: [0, 4], bias: true });
  });

  it("broadcasts batch dims", async () => {
    await check({ a: [3, 7, 13], b: [3, 13, 5] });
    await check({ a: [3, 7, 13], b: [13, 5] }); // b shared by every batch (stride 0)
    await check({ a: [7, 13], b: [4, 13, 5] });
    await check({ a: [2, 1, 7, 13], b: [3, 13, 5] });
    await check({ a: [2, 3, 9, 6], b: [1, 3, 5, 6], transposeB: true, bias: true });
  });

  it("handles views: narrowed and permuted operands", async () => {
    const rng = new Rng(5);
    const base = rng.uniform(4 * 10 * 12);
    const x = Tensor.from(base, [4, 10, 12]);
    // [4, 10, 12] -> permute to [10, 4, 12], narrow rows: a strided, offset batch.
    const a = x.permute([1, 0, 2]).narrow(0, 2, 5); // [5, 4, 12]
    const w = Tensor.from(rng.uniform(12 * 6), [12, 6]);
    const y = matmul(a, w);
    const aData = await a.contiguous().toFloat32();
    const ref = matmulRef({ data: aData, shape: [5, 4, 12] }, { data: await w.toFloat32(), shape: [12, 6] });
    assertClose(await y.toFloat32(), ref.data, { atol: 1e-5, what: "strided view" });
    // Rows padded to 40 with K = 37: vec4 loads along k, and the last row ends mid-vec4.
    const padded = Tensor.from(rng.uniform(20 * 40), [20, 40]);
    const a2 = padded.narrow(1, 0, 37);
    const w2 = Tensor.from(rng.uniform(37 * 9), [37, 9]);
    const y2 = matmul(a2, w2);
    const ref2 = matmulRef(
      { data: await a2.contiguous().toFloat32(), shape: [20, 37] },
      { data: await w2.toFloat32(), shape: [37, 9] },
    );
    assertClose(await y2.toFloat32(), ref2.data, { atol: 1e-4, what: "padded rows" });
    for (const t of [x, a, w, y, padded, a2, w2, y2]) t.dispose();
  });

  it("f16 storage with f32 accumulation", async () => {
    await check({ a: [1, 1], b: [1, 1] }, { dtype: "f16" });
    await check({ a: [7, 13], b: [13, 5] }, { dtype: "f16" });
    await check({ a: [12, 64], b: [24, 64], transposeB: true, bias: true }, { dtype: "f16" }); // 8 halves per load along k
    await check({ a: [12, 33], b: [24, 33], transposeB: true }, { dtype: "f16" }); // odd K: scalar halves
    await check({ a: [2, 3, 9, 6], b: [3, 5, 6], transposeB: true }, { dtype: "f16" });
    await check({ a: [3, 0], b: [0, 4], bias: true }, { dtype: "f16" });
  });

  it("every kernel variant agrees with the reference", async () => {
    // Broadcast variants must match the adapter's (fixed) subgroup size.
    const sg = device.info.subgroupMinSize ?? 8;
    const bc = device.hasSubgroups && sg === device.info.subgroupMaxSize;
    const cpu = (over: Partial<Extract<MatmulVariant, { kind: "cpu" }>>): MatmulVariant => ({
      kind: "cpu",
      dtype: "f32",
      sg,
      ra: 1,
      tn: 4,
      wgSubgroups: 2,
      ku: 4,
      broadcast: bc,
      aw: 1,
      bw: 1,
      bAxis: "k",
      ...over,
    });
    const gpu: MatmulVariant = {
      kind: "gpu",
      dtype: "f32",
      tm: 4,
      tn: 4,
      wgM: 4,
      wgN: 8,
      bk: 8,
      aKContig: false,
      bNContig: true,
    };
    // [variant, cases it supports]: wide loads need aligned, contiguous operands.
    const strided: Case[] = [
      { a: [65, 33], b: [33, 129] },
      { a: [2, 33, 7], b: [13, 33], transposeA: true, transposeB: true, bias: true },
      { a: [1, 1], b: [1, 1] },
    ];
    const runs: [MatmulVariant, Case[]][] = [
      [cpu({ broadcast: false, ku: 3 }), strided],
      [cpu({ ra: 2, tn: 2, ku: 3 }), strided],
      [gpu, strided],
      // A along k, B^T along k, with a K % ku tail.
      [cpu({ aw: 4, bw: 4, ku: 8 }), [{ a: [2, 9, 36], b: [21, 36], transposeB: true, bias: true }]],
      // B along n.
      [cpu({ aw: 4, bw: 4, bAxis: "n", ku: 4, tn: 4 }), [{ a: [9, 20], b: [3, 20, 28] }]],
    ];
    for (const [v, cases] of runs) {
      if (v.kind === "cpu" && v.broadcast && !bc) continue;
      for (const c of cases) await check(c, { variant: v });
    }
    // f16: half pairs and vec4<u32> (8 halves) along k, vec2<u32> along n.
    await check(
      { a: [9, 14], b: [17, 14], transposeB: true },
      { dtype: "f16", variant: cpu({ dtype: "f16", aw: 2, bw: 2, ku: 4 }) },
    );
    await check(
      { a: [40, 24], b: [17, 24], transposeB: true, bias: true },
      { dtype: "f16", variant: cpu({ dtype: "f16", ra: 2, tn: 2, aw: 8, bw: 8, ku: 8 }) },
    );
    await check(
      { a: [9, 13], b: [13, 20] },
      { dtype: "f16", variant: cpu({ dtype: "f16", bw: 4, bAxis: "n" }) },
    );
    await check({ a: [9, 13], b: [13, 17] }, { dtype: "f16", variant: { ...gpu, dtype: "f16" } });
  });

  it("backward matches finite differences (transposes, broadcast batch, bias)", async () => {
    const rng = new Rng(3);
    for (const opts of [
      { transposeA: false, transposeB: false },
      { transposeA: true, transposeB: false },
      { transposeA: false, transposeB: true },
      { transposeA: true, transposeB: true },
    ]) {
      const aShape = opts.transposeA ? [2, 4, 3] : [2, 3, 4];
      const bShape = opts.transposeB ? [5, 4] : [4, 5];
      await checkGradients({
        inputs: [
          { shape: aShape, data: rng.uniform(24) },
          { shape: bShape, data: rng.uniform(20) },
          { shape: [5], data: rng.uniform(5) },
        ],
        gpu: ([a, b, bias]) => matmul(a!, b!, { ...opts, bias }),
        reference: ([a, b, bias]) =>
          matmulRef({ data: a!, shape: aShape }, { data: b!, shape: bShape }, { ...opts, bias: bias! }).data,
        what: `matmul grad ${JSON.stringify(opts)}`,
      });
    }
  });

  it("names the shapes when they do not fit", () => {
    const a = Tensor.from(new Float32Array(6), [2, 3]);
    const b = Tensor.from(new Float32Array(8), [4, 2]);
    expect(() => matmul(a, b)).toThrow(ShapeError);
    expect(() => matmul(a, b)).toThrow("matmul: inner dims differ: a [2, 3], b [4, 2]: 3 vs 4; transpose b?");
    expect(() => matmul(a, Tensor.from(new Float32Array(3), [3]))).toThrow("rank >= 2");
    expect(() =>
      matmul(Tensor.from(new Float32Array(12), [2, 2, 3]), Tensor.from(new Float32Array(18), [3, 3, 2])),
    ).toThrow("batch dims do not broadcast");
    expect(() =>
      matmul(a, Tensor.from(new Float32Array(6), [3, 2]), { bias: Tensor.from([1, 2, 3], [3]) }),
    ).toThrow("bias [3] must be [2]");
    expect(() => matmul(a, Tensor.from(new Int32Array(6), [3, 2]))).toThrow(DTypeError);
  });

  it("generated WGSL passes Dawn's validation for every variant family", async () => {
    const cpu = { kind: "cpu", sg: 8, ra: 4, tn: 4, wgSubgroups: 8, broadcast: device.hasSubgroups } as const;
    const variants: MatmulVariant[] = [
      { ...cpu, dtype: "f32", ku: 4, aw: 4, bw: 4, bAxis: "k" },
      { ...cpu, dtype: "f32", ku: 4, aw: 1, bw: 4, bAxis: "n" },
      { ...cpu, dtype: "f16", ku: 8, aw: 8, bw: 8, bAxis: "k" },
      { ...cpu, dtype: "f16", ku: 4, aw: 2, bw: 4, bAxis: "n", broadcast: false },
      { kind: "gpu", dtype: "f32", tm: 4, tn: 4, wgM: 16, wgN: 16, bk: 16, aKContig: true, bNContig: false },
      { kind: "gpu", dtype: "f16", tm: 8, tn: 4, wgM: 8, wgN: 16, bk: 8, aKContig: false, bNContig: true },
    ];
    for (const v of variants) {
      const module = device.gpu.createShaderModule({ code: matmulShader(v) });
      const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === "error");
      expect(
        errors.map((e) => e.message),
        JSON.stringify(v),
      ).toEqual([]);
    }
    expect(() => matmulShader({ ...cpu, dtype: "f32", ku: 2, aw: 4, bw: 1, bAxis: "k" })).toThrow(
      "ku must be a multiple",
    );
  });
});
