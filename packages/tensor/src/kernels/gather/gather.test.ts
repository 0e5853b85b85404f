import { beforeAll, describe, expect, it } from "vitest";
import { getDevice, ShapeError, Tensor, tidy } from "../../index.js";
import { assertClose, checkGradients, Rng } from "../../testing.js";
import { embedding, indexSelect, validateIndices } from "./gather.js";
import { embeddingRef, indexSelectRef, scatterAddRef, stridedRead } from "./gather.ref.js";

beforeAll(async () => {
  await getDevice();
});

const rng = new Rng(11);
const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);

describe("indexSelect", () => {
  const cases: [number[], number, number][] = [
    [[5, 7, 3], 0, 9],
    [[5, 7, 3], 1, 4],
    [[5, 7, 3], 2, 5],
    [[1, 13], 1, 1],
    [[6], 0, 0],
    [[3, 0, 4], 0, 2],
  ];
  for (const [shape, dim, m] of cases) {
    it(`matches the reference: x ${shape} dim ${dim}, ${m} indices (host and device index)`, async () => {
      const x = rng.uniform(size(shape));
      const index = rng.int(m, 0, shape[dim]!);
      const want = indexSelectRef(x, shape, dim, index);
      const xt = Tensor.from(x, shape);
      const a = indexSelect(xt, dim, index);
      const b = indexSelect(xt, dim, Tensor.from(index, [m], { dtype: "i32" }));
      const outShape = [...shape];
      outShape[dim] = m;
      expect(a.shape).toEqual(outShape);
      assertClose(await a.toFloat32(), want, { atol: 0 });
      assertClose(await b.toFloat32(), want, { atol: 0 });
    });
  }

  it("reads a non-contiguous view (permuted + narrowed) without a copy", async () => {
    const base = rng.uniform(4 * 9 * 5);
    const t = Tensor.from(base, [4, 9, 5]);
    const v = t.permute([2, 0, 1]).narrow(2, 2, 6); // [5, 4, 6]
    const dense = stridedRead(base, v.shape, v.strides, v.offset);
    const index = Int32Array.from([3, 0, 3, 5, 1]);
    const got = await indexSelect(v, 2, index).toFloat32();
    assertClose(got, indexSelectRef(dense, v.shape, 2, index), { atol: 0 });
  });

  it("keeps f16 and i32 storage exact", async () => {
    const x = rng.uniform(7 * 6, -4, 4);
    const index = Int32Array.from([6, 1, 1, 0]);
    const f16 = Tensor.from(x, [7, 6], { dtype: "f16" });
    const got = await indexSelect(f16, 0, index).toFloat32();
    const rounded = await f16.toFloat32();
    assertClose(got, indexSelectRef(rounded, [7, 6], 0, index), { atol: 0 });
    const ints = Tensor.from(
      Int32Array.from({ length: 12 }, (_, i) => i * 7 - 30),
      [4, 3],
    );
    const gi = await indexSelect(ints, 0, [3, 3, 0]).data();
    expect(Array.from(gi)).toEqual([33, 40, 47, 33, 40, 47, -30, -23, -16]);
  });

  it("names the position and value of an out-of-range host index", () => {
    const x = Tensor.from(new Float32Array(12), [4, 3]);
    expect(() => indexSelect(x, 0, [1, 4])).toThrow(ShapeError);
    expect(() => indexSelect(x, 0, [1, 4])).toThrow(
      "index[1] = 4 is out of range [0, 4) for dim 0 of x [4, 3]",
    );
    expect(() => indexSelect(x, 1, [-1])).toThrow("index[0] = -1");
    expect(() => indexSelect(x, 0, { data: [0, 1], shape: [1, 2] })).toThrow("index must be 1-D");
    expect(() => indexSelect(x, 0, Tensor.from([0], [1]))).toThrow("index must be i32, got f32");
  });

  it("gives zero rows for out-of-range device indices; validateIndices reports them", async () => {
    const x = Tensor.from([1, 2, 3, 4, 5, 6], [3, 2]);
    const idx = Tensor.from(Int32Array.from([2, 7, -1]), [3]);
    expect(Array.from(await indexSelect(x, 0, idx).toFloat32())).toEqual([5, 6, 0, 0, 0, 0]);
    await expect(validateIndices(idx, 3, { op: "index_select" })).rejects.toThrow(
      "index[1] = 7 is out of range [0, 3)",
    );
  });

  for (const host of [true, false]) {
    it(`backward is a scatter-add with accumulating duplicates (${host ? "host" : "device"} index)`, async () => {
      const index = Int32Array.from([2, 0, 2, 4, 2, 0]);
      for (const dim of [0, 1]) {
        const shape = dim === 0 ? [5, 3] : [2, 5, 3];
        await checkGradients({
          what: `index_select dim ${dim}`,
          inputs: [{ shape, data: rng.uniform(size(shape)) }],
          gpu: ([x]) => indexSelect(x!, dim, host ? index : Tensor.from(index, [6], { dtype: "i32" })),
          reference: ([x]) => indexSelectRef(x!, shape, dim, index),
        });
      }
    });
  }

  it("backward is deterministic and exact-order on many duplicates (both paths agree)", async () => {
    const [len, m, inner] = [300, 1500, 17];
    const index = rng.int(m, 0, len);
    const g = rng.uniform(m * inner);
    const want = scatterAddRef(g, [len, inner], 0, index);
    const run = async (host: boolean) => {
      const x = Tensor.from(new Float32Array(len * inner), [len, inner], { requiresGrad: true });
      tidy(() => {
        const y = indexSelect(x, 0, host ? index : Tensor.from(index, [m], { dtype: "i32" }));
        y.backward({ gradient: Tensor.from(g, [m, inner]) });
      });
      const out = await x.grad!.toFloat32();
      x.dispose();
      return out;
    };
    const a = await run(true);
    const b = await run(false);
    assertClose(a, want, { atol: 2e-5, rtol: 1e-5 });
    expect(Array.from(b)).toEqual(Array.from(a));
  });
});

describe("embedding", () => {
  it("looks up rows for 2-D ids, host or device", async () => {
    const [V, D] = [11, 7];
    const w = rng.normal(V * D);
    const ids = rng.int(15, 0, V);
    const weight = Tensor.from(w, [V, D]);
    const a = embedding({ data: ids, shape: [3, 5] }, weight);
    const b = embedding(Tensor.from(ids, [3, 5], { dtype: "i32" }), weight);
    expect(a.shape).toEqual([3, 5, 7]);
    expect(b.shape).toEqual([3, 5, 7]);
    assertClose(await a.toFloat32(), embeddingRef(ids, w, D), { atol: 0 });
    assertClose(await b.toFloat32(), embeddingRef(ids, w, D), { atol: 0 });
    // A transposed id matrix is read through its strides.
    const c = embedding(Tensor.from(ids, [3, 5], { dtype: "i32" }).transpose(), weight);
    const idsT = Int32Array.from({ length: 15 }, (_, i) => ids[(i % 3) * 5 + Math.floor(i / 3)]!);
    assertClose(await c.toFloat32(), embeddingRef(idsT, w, D), { atol: 0 });
  });

  it("handles empty ids, f16 weights and a transposed weight view", async () => {
    const weight = Tensor.from(rng.uniform(4 * 6), [4, 6], { dtype: "f16" });
    expect(embedding({ data: [], shape: [2, 0] }, weight).shape).toEqual([2, 0, 6]);
    const got = await embedding([3, 0, 3], weight).toFloat32();
    const w16 = await weight.toFloat32();
    assertClose(got, embeddingRef([3, 0, 3], w16, 6), { atol: 0 });
    const wT = Tensor.from(rng.uniform(6 * 4), [6, 4]).transpose(); // [4, 6] view
    const dense = stridedRead(await wT.toFloat32(), [4, 6], [6, 1], 0);
    assertClose(await embedding([1, 2], wT).toFloat32(), embeddingRef([1, 2], dense, 6), { atol: 0 });
  });

  it("names the bad token id and the vocab", () => {
    const weight = Tensor.from(new Float32Array(20), [5, 4]);
    expect(() => embedding({ data: [1, 2, 3, 9], shape: [2, 2] }, weight)).toThrow(
      "embedding: index[3] = 9 is out of range [0, 5) for weight [5, 4] (vocab 5); ids [2, 2]",
    );
    expect(() => embedding([0], Tensor.from(new Float32Array(4), [4]))).toThrow(
      "weight must be [vocab, dim], got [4]",
    );
    expect(() => embedding({ data: [0, 1, 2], shape: [2, 2] }, weight)).toThrow(
      "3 ids given for shape [2, 2]",
    );
  });

  it("gradient accumulates repeated ids (finite differences)", async () => {
    const ids = { data: [1, 3, 1, 1, 0, 3], shape: [2, 3] };
    await checkGradients({
      what: "embedding",
      inputs: [{ shape: [5, 4], data: rng.uniform(20) }],
      gpu: ([w]) => embedding(ids, w!),
      reference: ([w]) => embeddingRef(ids.data, w!, 4),
    });
  });

  it("f16 weight gradient matches the reference", async () => {
    const ids = Int32Array.from([2, 2, 0, 5, 2]);
    const w = Tensor.from(rng.uniform(6 * 3), [6, 3], { dtype: "f16", requiresGrad: true });
    const g = rng.uniform(15);
    tidy(() => embedding(ids, w).backward({ gradient: Tensor.from(g, [5, 3], { dtype: "f16" }) }));
    const g16 = await Tensor.from(g, [15], { dtype: "f16" }).toFloat32();
    assertClose(await w.grad!.toFloat32(), scatterAddRef(g16, [6, 3], 0, ids), { atol: 4e-3, rtol: 2e-3 });
  });
});
