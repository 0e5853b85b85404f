import { beforeAll, describe, expect, it } from "vitest";
import { DTypeError, getDevice, ShapeError, Tensor, tidy } from "../../index.js";
import { assertClose, checkGradients, Rng } from "../../testing.js";
import { validateIndices } from "../gather/gather.js";
import { stridedRead } from "../gather/gather.ref.js";
import { scatterRows } from "./scatter.js";
import { scatterRowsRef } from "./scatter.ref.js";

beforeAll(async () => {
  await getDevice();
});

const rng = new Rng(21);

function distinct(m: number, n: number): Int32Array {
  const all = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return Int32Array.from(all.slice(0, m));
}

describe("scatterRows", () => {
  for (const [n, d, m] of [
    [9, 5, 3],
    [1, 1, 1],
    [13, 7, 0],
    [6, 0, 2],
    [17, 33, 17],
  ] as const) {
    it(`writes ${m} rows into [${n}, ${d}] (host and device index)`, async () => {
      const base = rng.uniform(n * d);
      const rows = rng.uniform(m * d);
      const index = distinct(m, n);
      const want = scatterRowsRef(base, n, d, index, rows);
      const bt = Tensor.from(base, [n, d]);
      const rt = Tensor.from(rows, [m, d]);
      assertClose(await scatterRows(bt, index, rt).toFloat32(), want, { atol: 0 });
      assertClose(await scatterRows(bt, Tensor.from(index, [m], { dtype: "i32" }), rt).toFloat32(), want, {
        atol: 0,
      });
      // base is untouched.
      assertClose(await bt.toFloat32(), base, { atol: 0 });
    });
  }

  it("reads non-contiguous base and rows views, and f16 storage", async () => {
    const b = rng.uniform(6 * 4);
    const r = rng.uniform(4 * 3);
    const bt = Tensor.from(b, [4, 6]).transpose(); // [6, 4]
    const rt = Tensor.from(r, [4, 3]).transpose(); // [3, 4]
    const index = Int32Array.from([5, 0, 2]);
    const want = scatterRowsRef(
      stridedRead(b, [6, 4], [1, 6], 0),
      6,
      4,
      index,
      stridedRead(r, [3, 4], [1, 3], 0),
    );
    assertClose(await scatterRows(bt, index, rt).toFloat32(), want, { atol: 0 });
    const b16 = Tensor.from(b, [6, 4], { dtype: "f16" });
    const r16 = Tensor.from(r, [3, 4], { dtype: "f16" });
    const want16 = scatterRowsRef(await b16.toFloat32(), 6, 4, index, await r16.toFloat32());
    assertClose(await scatterRows(b16, index, r16).toFloat32(), want16, { atol: 0 });
  });

  it("rejects out-of-range and repeated host indices, naming them", async () => {
    const base = Tensor.from(new Float32Array(12), [4, 3]);
    const rows = Tensor.from(new Float32Array(6), [2, 3]);
    expect(() => scatterRows(base, [1, 4], rows)).toThrow(
      "scatter_rows: index[1] = 4 is out of range [0, 4) for base [4, 3], index [2], rows [2, 3]",
    );
    expect(() => scatterRows(base, [2, 2], rows)).toThrow("index[1] = 2 repeats index[0]");
    expect(() => scatterRows(base, [0, 1, 2], rows)).toThrow(ShapeError);
    expect(() => scatterRows(base, [0, 1], Tensor.from(new Float32Array(8), [2, 4]))).toThrow(
      "rows and base differ in dim",
    );
    expect(() =>
      scatterRows(base, [0, 1], Tensor.from(new Float32Array(6), [2, 3], { dtype: "f16" })),
    ).toThrow(DTypeError);
    await expect(
      validateIndices(Tensor.from(Int32Array.from([3, 1, 3]), [3]), 4, { unique: true, op: "scatter_rows" }),
    ).rejects.toThrow("index[2] = 3 repeats index[0]");
  });

  for (const host of [true, false]) {
    it(`gradients: base zero at overwritten rows, rows gathered (${host ? "host" : "device"} index)`, async () => {
      const [n, d] = [7, 3];
      const index = Int32Array.from([4, 0, 6]);
      await checkGradients({
        what: "scatter_rows",
        inputs: [
          { shape: [n, d], data: rng.uniform(n * d) },
          { shape: [3, d], data: rng.uniform(3 * d) },
        ],
        gpu: ([b, r]) => scatterRows(b!, host ? index : Tensor.from(index, [3], { dtype: "i32" }), r!),
        reference: ([b, r]) => scatterRowsRef(b!, n, d, index, r!),
      });
    });
  }

  it("image features into <image> positions of an embedded sequence, then a loss", async () => {
    // [T, D] text embeddings; 4 image tokens at positions 2..5 replaced by connector output.
    const [T, D] = [9, 5];
    const text = Tensor.from(rng.uniform(T * D), [T, D], { requiresGrad: true });
    const feats = Tensor.from(rng.uniform(4 * D), [4, D], { requiresGrad: true });
    tidy(() => scatterRows(text, [2, 3, 4, 5], feats).sum().backward());
    const gt = await text.grad!.toFloat32();
    for (let t = 0; t < T; t++)
      for (let c = 0; c < D; c++) expect(gt[t * D + c]).toBe(t >= 2 && t <= 5 ? 0 : 1);
    expect(Array.from(await feats.grad!.toFloat32())).toEqual(new Array(4 * D).fill(1));
  });
});
