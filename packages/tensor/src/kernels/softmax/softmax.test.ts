import { beforeAll, describe, expect, it } from "vitest";
import { DTypeError, getDevice, ShapeError, Tensor } from "../../index.js";
import { assertClose, checkGradients, Rng } from "../../testing.js";
import { type RowVariant, withRowVariant } from "../reduce/row-kernel.js";
import { logSoftmax, softmax } from "./softmax.js";
import { logSoftmaxRef, softmaxRef } from "./softmax.ref.js";

beforeAll(async () => {
  await getDevice();
});

const rng = new Rng(5);
const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
const shapes = [[1], [1, 1], [3, 7], [2, 4, 8], [5, 257], [130, 12], [2, 1, 1000]];
const variants: RowVariant[] = ["rows", "subgroup", "tree"];

describe("softmax and log-softmax over the last axis", () => {
  for (const variant of variants) {
    it(`match the f64 reference (${variant})`, async () => {
      await withRowVariant(variant, async () => {
        for (const shape of shapes) {
          const cols = shape[shape.length - 1]!;
          const x = rng.uniform(size(shape), -5, 5);
          const t = Tensor.from(x, shape);
          const y = softmax(t);
          expect(y.shape).toEqual(shape);
          assertClose(await y.toFloat32(), softmaxRef(x, cols), {
            atol: 1e-6,
            rtol: 1e-5,
            what: `softmax ${shape}`,
          });
          assertClose(await logSoftmax(t).toFloat32(), logSoftmaxRef(x, cols), {
            atol: 2e-6,
            rtol: 1e-5,
            what: `logSoftmax ${shape}`,
          });
        }
      });
    });
  }

  it("stays finite for huge logits and -inf entries", async () => {
    const x = Float32Array.from([1e30, -1e30, 3e38, 0, 88, 89, 1000, -1000, -Infinity, 1, 2, 3]);
    const t = Tensor.from(x, [3, 4]);
    const want = softmaxRef(x, 4);
    assertClose(await softmax(t).toFloat32(), want, { atol: 1e-7, what: "huge softmax" });
    assertClose(await t.logSoftmax().toFloat32(), logSoftmaxRef(x, 4), {
      atol: 1e-3,
      rtol: 1e-6,
      what: "huge logSoftmax",
    });
    const big = rng.uniform(2 * 301, -1, 1).map((v) => v * 1e4);
    assertClose(await softmax(Tensor.from(big, [2, 301])).toFloat32(), softmaxRef(big, 301), {
      atol: 1e-6,
      what: "1e4 logits",
    });
  });

  it("reads non-contiguous views and offsets", async () => {
    const x = rng.uniform(6 * 10, -3, 3);
    const t = Tensor.from(x, [6, 10]);
    const tt = t.transpose(); // [10, 6]
    const xt = new Float32Array(60);
    for (let i = 0; i < 6; i++) for (let j = 0; j < 10; j++) xt[j * 6 + i] = x[i * 10 + j]!;
    assertClose(await tt.softmax(-1).toFloat32(), softmaxRef(xt, 6), { atol: 1e-6 });
    // Rows 1..4 of a [6, 8] view: offset 8, a multiple of 4 (vec4 path) and 10 (scalar path).
    const n8 = Tensor.from(x.slice(0, 48), [6, 8]).narrow(0, 1, 4);
    assertClose(await softmax(n8).toFloat32(), softmaxRef(x.slice(8, 40), 8), {
      atol: 1e-6,
      what: "narrow, aligned",
    });
    assertClose(await logSoftmax(t.narrow(0, 1, 3)).toFloat32(), logSoftmaxRef(x.slice(10, 40), 10), {
      atol: 2e-6,
      what: "narrow",
    });
  });

  it("f16 storage with f16 tolerances", async () => {
    const shape = [7, 96];
    const x = rng.uniform(size(shape), -6, 6);
    const t = Tensor.from(x, shape, { dtype: "f16" });
    const xr = await t.toFloat32();
    const y = softmax(t);
    expect(y.dtype).toBe("f16");
    assertClose(await y.toFloat32(), softmaxRef(xr, 96), { atol: 1e-4, rtol: 2e-3, what: "f16 softmax" });
    assertClose(await logSoftmax(t).toFloat32(), logSoftmaxRef(xr, 96), {
      atol: 1e-2,
      rtol: 2e-3,
      what: "f16 logSoftmax",
    });
  });

  it("empty tensors and bad arguments", async () => {
    expect(softmax(Tensor.empty([0, 5], {})).shape).toEqual([0, 5]);
    expect(softmax(Tensor.empty([3, 0], {})).shape).toEqual([3, 0]);
    const t = Tensor.from(new Float32Array(6), [2, 3]);
    expect(() => softmax(t, 0)).toThrow(ShapeError);
    expect(() => softmax(t, 0)).toThrow("[2, 3]");
    expect(() => softmax(t, 2)).toThrow("out of range");
    expect(() => softmax(Tensor.from(Int32Array.from([1, 2]), [2]))).toThrow(DTypeError);
  });
});

describe("softmax gradients against finite differences", () => {
  for (const variant of ["rows", "tree"] as RowVariant[]) {
    for (const shape of [
      [3, 5],
      [2, 8],
      [4, 1],
      [1, 13],
    ]) {
      it(`softmax and logSoftmax ${JSON.stringify(shape)} (${variant})`, async () => {
        const cols = shape[shape.length - 1]!;
        const x = rng.uniform(size(shape), -2, 2);
        await withRowVariant(variant, async () => {
          await checkGradients({
            what: "softmax",
            inputs: [{ shape, data: x }],
            gpu: ([t]) => softmax(t!),
            reference: ([v]) => softmaxRef(v!, cols),
          });
          await checkGradients({
            what: "logSoftmax",
            inputs: [{ shape, data: x }],
            gpu: ([t]) => logSoftmax(t!),
            reference: ([v]) => logSoftmaxRef(v!, cols),
          });
        });
      });
    }
  }

  it("backward accepts a non-contiguous incoming gradient", async () => {
    const x = rng.uniform(12, -1, 1);
    const t = Tensor.from(x, [3, 4]);
    t.requiresGrad = true;
    const y = softmax(t);
    const g = Tensor.from(rng.uniform(12, -1, 1), [4, 3]);
    y.backward({ gradient: g.transpose() });
    const gt = await g.transpose().toFloat32();
    const yr = softmaxRef(x, 4);
    const want = new Float64Array(12);
    for (let r = 0; r < 3; r++) {
      let dot = 0;
      for (let k = 0; k < 4; k++) dot += gt[r * 4 + k]! * yr[r * 4 + k]!;
      for (let k = 0; k < 4; k++) want[r * 4 + k] = yr[r * 4 + k]! * (gt[r * 4 + k]! - dot);
    }
    assertClose(await t.grad!.toFloat32(), want, { atol: 1e-6 });
  });
});
