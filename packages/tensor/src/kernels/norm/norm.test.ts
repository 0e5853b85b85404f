import { beforeAll, describe, expect, it } from "vitest";
import { DTypeError, getDevice, ShapeError, Tensor, tidy } from "../../index.js";
import { assertClose, checkGradients, Rng } from "../../testing.js";
import { type RowVariant, withRowVariant } from "../reduce/row-kernel.js";
import { layerNorm, rmsNorm } from "./norm.js";
import { layerNormRef, rmsNormRef } from "./norm.ref.js";

beforeAll(async () => {
  await getDevice();
});

const rng = new Rng(3);
const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
const shapes = [
  [1, 1],
  [3, 7],
  [2, 4, 8],
  [5, 257],
  [130, 12],
  [1, 1152],
];
const variants: RowVariant[] = ["rows", "subgroup", "tree"];

describe("layerNorm and rmsNorm forward", () => {
  for (const variant of variants) {
    it(`match the f64 reference (${variant})`, async () => {
      await withRowVariant(variant, async () => {
        for (const shape of shapes) {
          const d = shape[shape.length - 1]!;
          // An offset mean checks the two-pass variance.
          const x = rng.uniform(size(shape), -2, 2).map((v) => v + 3);
          const w = rng.uniform(d, 0.5, 1.5);
          const b = rng.uniform(d, -1, 1);
          const [t, tw, tb] = [Tensor.from(x, shape), Tensor.from(w, [d]), Tensor.from(b, [d])];
          const what = `${variant} ${JSON.stringify(shape)}`;
          const y = layerNorm(t, tw, tb, 1e-6);
          expect(y.shape).toEqual(shape);
          assertClose(await y.toFloat32(), layerNormRef(x, w, b, d, 1e-6), {
            atol: 2e-5,
            rtol: 1e-5,
            what: `layerNorm ${what}`,
          });
          assertClose(await rmsNorm(t, tw, 1e-6).toFloat32(), rmsNormRef(x, w, d, 1e-6), {
            atol: 1e-5,
            rtol: 1e-5,
            what: `rmsNorm ${what}`,
          });
        }
      });
    });
  }

  it("non-contiguous x, weight views with offsets", async () => {
    const x = rng.uniform(8 * 6, -1, 1);
    const t = Tensor.from(x, [8, 6]).transpose(); // [6, 8]
    const xt = new Float32Array(48);
    for (let i = 0; i < 8; i++) for (let j = 0; j < 6; j++) xt[j * 8 + i] = x[i * 6 + j]!;
    const wAll = rng.uniform(16, 0.5, 1.5);
    const w = Tensor.from(wAll, [16]).narrow(0, 4, 8); // offset 4
    const b = Tensor.from(wAll, [16]).narrow(0, 3, 8); // offset 3: scalar path
    assertClose(
      await layerNorm(t, w, b).toFloat32(),
      layerNormRef(xt, wAll.slice(4, 12), wAll.slice(3, 11), 8, 1e-5),
      { atol: 2e-5 },
    );
    assertClose(await rmsNorm(t, b).toFloat32(), rmsNormRef(xt, wAll.slice(3, 11), 8, 1e-6), { atol: 2e-5 });
  });

  it("f16 storage with f16 tolerances (f16 or f32 weights)", async () => {
    const shape = [9, 64];
    const x = rng.uniform(size(shape), -3, 3);
    const w = rng.uniform(64, 0.5, 1.5);
    const b = rng.uniform(64, -1, 1);
    const t = Tensor.from(x, shape, { dtype: "f16" });
    const xr = await t.toFloat32();
    for (const wdt of ["f16", "f32"] as const) {
      const tw = Tensor.from(w, [64], { dtype: wdt });
      const tb = Tensor.from(b, [64], { dtype: wdt });
      const wr = await tw.toFloat32();
      const br = await tb.toFloat32();
      const y = layerNorm(t, tw, tb, 1e-6);
      expect(y.dtype).toBe("f16");
      assertClose(await y.toFloat32(), layerNormRef(xr, wr, br, 64, 1e-6), {
        atol: 1e-2,
        rtol: 4e-3,
        what: `f16 layerNorm, ${wdt} weights`,
      });
      assertClose(await rmsNorm(t, tw).toFloat32(), rmsNormRef(xr, wr, 64, 1e-6), {
        atol: 1e-2,
        rtol: 4e-3,
        what: `f16 rmsNorm, ${wdt} weights`,
      });
    }
  });

  it("errors name the shapes; empty rows are fine", () => {
    const x = Tensor.from(new Float32Array(12), [3, 4]);
    const w3 = Tensor.from(new Float32Array(3), [3]);
    const w4 = Tensor.from(new Float32Array(4), [4]);
    expect(() => layerNorm(x, w3, w4)).toThrow(ShapeError);
    expect(() => layerNorm(x, w3, w4)).toThrow("weight [3] must be [4] to match the last dim of x [3, 4]");
    expect(() => layerNorm(x, w4, w3)).toThrow("bias [3]");
    expect(() => rmsNorm(x, w4, -1)).toThrow("eps");
    expect(() => rmsNorm(Tensor.from(Int32Array.from([1, 2, 3, 4]), [1, 4]), w4)).toThrow(DTypeError);
    expect(rmsNorm(Tensor.empty([0, 4], {}), w4).shape).toEqual([0, 4]);
  });
});

describe("norm gradients", () => {
  for (const variant of ["rows", "tree"] as RowVariant[]) {
    for (const shape of [
      [3, 5],
      [2, 2, 8],
      [1, 7],
      [70, 4],
    ]) {
      it(`finite differences ${JSON.stringify(shape)} (${variant})`, async () => {
        const d = shape[shape.length - 1]!;
        const x = rng.uniform(size(shape), -1, 1);
        const w = rng.uniform(d, 0.5, 1.5);
        const b = rng.uniform(d, -1, 1);
        const inputs = [
          { shape, data: x },
          { shape: [d], data: w },
          { shape: [d], data: b },
        ];
        await withRowVariant(variant, async () => {
          await checkGradients({
            what: "layerNorm",
            inputs,
            gpu: ([a, c, e]) => layerNorm(a!, c!, e!, 1e-5),
            reference: ([a, c, e]) => layerNormRef(a!, c!, e!, d, 1e-5),
          });
          await checkGradients({
            what: "rmsNorm",
            inputs: inputs.slice(0, 2),
            gpu: ([a, c]) => rmsNorm(a!, c!, 1e-6),
            reference: ([a, c]) => rmsNormRef(a!, c!, d, 1e-6),
          });
        });
      });
    }
  }

  it("fused kernels match the composition of primitives, forward and backward", async () => {
    const shape = [300, 40];
    const d = 40;
    const eps = 1e-6;
    const x = rng.normal(size(shape), 2);
    const w = rng.uniform(d, 0.5, 1.5);
    const b = rng.uniform(d, -1, 1);
    const g = rng.uniform(size(shape), -1, 1);
    const run = async (fused: boolean, rms: boolean) => {
      const [tx, tw, tb] = [Tensor.from(x, shape), Tensor.from(w, [d]), Tensor.from(b, [d])];
      for (const t of [tx, tw, tb]) t.requiresGrad = true;
      tidy(() => {
        let y: Tensor;
        if (rms) {
          y = fused ? rmsNorm(tx, tw, eps) : tx.mul(tx.square().mean(-1, true).add(eps).rsqrt()).mul(tw);
        } else if (fused) {
          y = layerNorm(tx, tw, tb, eps);
        } else {
          const xc = tx.sub(tx.mean(-1, true));
          y = xc.mul(xc.square().mean(-1, true).add(eps).rsqrt()).mul(tw).add(tb);
        }
        y.backward({ gradient: Tensor.from(g, shape) });
        return null;
      });
      const grads = [
        await tx.grad!.toFloat32(),
        await tw.grad!.toFloat32(),
        rms ? null : await tb.grad!.toFloat32(),
      ];
      return grads;
    };
    for (const rms of [false, true]) {
      const fused = await run(true, rms);
      const composed = await run(false, rms);
      for (let k = 0; k < 3; k++) {
        if (!fused[k]) continue;
        assertClose(fused[k]!, composed[k]!, {
          atol: 1e-4,
          rtol: 1e-4,
          what: `${rms ? "rmsNorm" : "layerNorm"} grad ${k}: fused vs composed`,
        });
      }
      const tx = Tensor.from(x, shape);
      const tw = Tensor.from(w, [d]);
      const fy = rms ? rmsNorm(tx, tw, eps) : layerNorm(tx, tw, Tensor.from(b, [d]), eps);
      const xc = rms ? tx : tx.sub(tx.mean(-1, true));
      let cy = xc.mul(xc.square().mean(-1, true).add(eps).rsqrt()).mul(tw);
      if (!rms) cy = cy.add(Tensor.from(b, [d]));
      assertClose(await fy.toFloat32(), await cy.toFloat32(), {
        atol: 1e-5,
        rtol: 1e-5,
        what: "fused vs composed forward",
      });
    }
  });

  it("dweight/dbias sum over many rows (chunked column sums)", async () => {
    const shape = [3000, 8];
    const x = rng.uniform(size(shape), -1, 1);
    const w = rng.uniform(8, 0.5, 1.5);
    const tx = Tensor.from(x, shape);
    const tw = Tensor.from(w, [8]);
    const tb = Tensor.from(new Float32Array(8), [8]);
    tw.requiresGrad = true;
    tb.requiresGrad = true;
    layerNorm(tx, tw, tb, 1e-5).sum().backward();
    // d/db Σ y = rows; d/dw Σ y = Σ_rows xhat.
    assertClose(await tb.grad!.toFloat32(), new Array(8).fill(3000), { atol: 1e-2 });
    const xhat = layerNormRef(x, new Float64Array(8).fill(1), new Float64Array(8), 8, 1e-5);
    const want = new Float64Array(8);
    for (let i = 0; i < xhat.length; i++) want[i % 8] += xhat[i]!;
    assertClose(await tw.grad!.toFloat32(), want, { atol: 2e-3 });
  });
});
