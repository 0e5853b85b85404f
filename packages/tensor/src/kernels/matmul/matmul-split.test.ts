import { beforeAll, describe, expect, it } from "vitest";
import { type Device, requestDevice, setCurrentDevice } from "../../device.js";
import { f16ArrayToF32, f32ArrayToF16 } from "../../dtype.js";
import { Tensor } from "../../index.js";
import { assertClose, checkGradients, Rng } from "../../testing.js";
import { matmul } from "./matmul.js";
import { matmulRef } from "./matmul.ref.js";

// A device whose storage bindings cover at most 1 KiB: every operand below is several bindings
// wide, so matmul must split it (by rows of the weight, output blocks, or K with accumulation).
const LIMIT = 1024;
let small: Device;
beforeAll(async () => {
  small = await requestDevice({ maxBindingBytes: LIMIT });
  setCurrentDevice(small);
});

/** Counts matmul dispatches recorded while `fn` runs. */
function countDispatches<T>(fn: () => T): [T, number] {
  const orig = small.dispatch.bind(small);
  let n = 0;
  small.dispatch = (spec) => {
    if (spec.op === "matmul") n++;
    orig(spec);
  };
  try {
    return [fn(), n];
  } finally {
    small.dispatch = orig;
  }
}

const round16 = (x: Float32Array) => f16ArrayToF32(f32ArrayToF16(x));

interface Case {
  a: number[];
  b: number[];
  transposeA?: boolean;
  transposeB?: boolean;
  bias?: boolean;
}

async function check(c: Case, dtype: "f32" | "f16", seed = 1): Promise<number> {
  const rng = new Rng(seed);
  const size = (s: number[]) => s.reduce((p, d) => p * d, 1);
  const N = c.transposeB ? c.b[c.b.length - 2]! : c.b[c.b.length - 1]!;
  const K = c.transposeB ? c.b[c.b.length - 1]! : c.b[c.b.length - 2]!;
  let ad = rng.uniform(size(c.a));
  let bd = rng.uniform(size(c.b));
  let biasd = c.bias ? rng.uniform(N) : undefined;
  if (dtype === "f16") {
    ad = round16(ad);
    bd = round16(bd);
    if (biasd) biasd = round16(biasd);
  }
  const a = Tensor.from(ad, c.a, { dtype });
  const b = Tensor.from(bd, c.b, { dtype });
  expect(b.size * (dtype === "f16" ? 2 : 4)).toBeGreaterThan(LIMIT);
  const bias = biasd ? Tensor.from(biasd, [N], { dtype }) : undefined;
  const [y, dispatches] = countDispatches(() =>
    matmul(a, b, { transposeA: c.transposeA, transposeB: c.transposeB, bias }),
  );
  const ref = matmulRef({ data: ad, shape: c.a }, { data: bd, shape: c.b }, { ...c, bias: biasd });
  expect(y.shape).toEqual(ref.shape);
  const tol = dtype === "f16" ? 2e-2 : 1e-5 * Math.sqrt(K);
  assertClose(await y.toFloat32(), ref.data, { atol: tol, rtol: tol, what: `${dtype} ${JSON.stringify(c)}` });
  return dispatches;
}

describe("matmul with operands over the binding limit", () => {
  for (const dtype of ["f32", "f16"] as const) {
    it(`${dtype}: x·Wᵀ with W [101, 37] split by rows (odd N, K % 4 != 0), batched x, bias`, async () => {
      const n = await check({ a: [2, 3, 37], b: [101, 37], transposeB: true, bias: true }, dtype);
      expect(n).toBeGreaterThan(2);
    });

    it(`${dtype}: an output over the limit is written in row and column blocks`, async () => {
      await check({ a: [23, 9], b: [61, 9], transposeB: true }, dtype, 2);
    });

    it(`${dtype}: b [K, N] with K over the limit sums partial products over K`, async () => {
      await check({ a: [5, 101], b: [101, 37] }, dtype, 3);
      await check({ a: [101, 5], b: [101, 37], transposeA: true, bias: true }, dtype, 4);
    });

    it(`${dtype}: a batch that does not fold loops over its matrices`, async () => {
      await check({ a: [2, 6, 37], b: [2, 37, 30] }, dtype, 5);
    });
  }

  it("f32 backward through a split weight matches finite differences", async () => {
    const rng = new Rng(9);
    const [M, K, N] = [4, 13, 45]; // W is 45×13×4 = 2340 bytes
    await checkGradients({
      inputs: [
        { shape: [2, 2, K], data: rng.uniform(M * K) },
        { shape: [N, K], data: rng.uniform(N * K) },
        { shape: [N], data: rng.uniform(N) },
      ],
      gpu: ([x, w, b]) => matmul(x!, w!, { transposeB: true, bias: b }),
      reference: ([x, w, b]) =>
        matmulRef({ data: x!, shape: [M, K] }, { data: w!, shape: [N, K] }, { transposeB: true, bias: b })
          .data,
      atol: 2e-3,
      rtol: 2e-3,
    });
  });

  for (const dtype of ["f32", "f16"] as const) {
    it(`${dtype}: backward of x·Wᵀ (W [101, 37]) gives dx = g·W and dW = gᵀ·x`, async () => {
      const rng = new Rng(11);
      const [M, K, N] = [6, 37, 101];
      const prep = (x: Float32Array) => (dtype === "f16" ? round16(x) : x);
      const xd = prep(rng.uniform(M * K));
      const wd = prep(rng.uniform(N * K));
      const gd = prep(rng.uniform(M * N));
      const x = Tensor.from(xd, [2, 3, K], { dtype, requiresGrad: true });
      const w = Tensor.from(wd, [N, K], { dtype, requiresGrad: true });
      const g = Tensor.from(gd, [2, 3, N], { dtype });
      const y = matmul(x, w, { transposeB: true });
      // y is over the limit too, so the loss gradient is given directly (elementwise ops do not split).
      y.backward({ gradient: g });
      const dx = matmulRef({ data: gd, shape: [M, N] }, { data: wd, shape: [N, K] });
      const dw = matmulRef({ data: gd, shape: [M, N] }, { data: xd, shape: [M, K] }, { transposeA: true });
      const tol = dtype === "f16" ? 3e-2 : 1e-4;
      assertClose(await x.grad!.toFloat32(), dx.data, { atol: tol, rtol: tol, what: `${dtype} dx` });
      assertClose(await w.grad!.toFloat32(), dw.data, { atol: tol, rtol: tol, what: `${dtype} dW` });
    });
  }

  it("caps bindings per device, aligns windows and rejects unaligned binding offsets", () => {
    expect(small.maxBindingBytes).toBe(LIMIT);
    const t = Tensor.empty([3000], { dtype: "f32" });
    const w = small.bindBytes(t.storage.buffer, 1000, 1700, "probe");
    expect(w.binding.offset).toBe(768);
    expect(w.slack).toBe(232);
    expect(() => small.bindBytes(t.storage.buffer, 1000, 3000, "probe")).toThrow(
      "probe: window of 2232 bytes exceeds the storage binding limit 1024",
    );
    expect(() =>
      small.dispatch({
        op: "probe",
        code: "@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n@compute @workgroup_size(1) fn main() { x[0] = 1.0; }",
        buffers: [{ buffer: t.storage.buffer, offset: 4, size: 64 }],
        workgroups: [1],
      }),
    ).toThrow("probe: binding 0 starts at byte 4, not a multiple of minStorageBufferOffsetAlignment (256)");
    t.dispose();
  });
});
