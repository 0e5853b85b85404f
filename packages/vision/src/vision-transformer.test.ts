import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadWeights } from "@webvlm/nn";
import {
  getDevice,
  noGrad,
  type ReadTensor,
  readSafetensorsFile,
  Tensor,
  tidy,
  toFloat32,
  toInt32,
} from "@webvlm/tensor";
import { assertClose, Rng } from "@webvlm/tensor/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { parseVisionConfig } from "./config.js";
import { encodeImages } from "./encode.js";
import { prepareVisionInputs } from "./masks.js";
import { Idefics2VisionTransformer } from "./vision-transformer.js";

const FIXTURES = fileURLToPath(new URL("../../../fixtures/idefics2-tiny/", import.meta.url));
const config = JSON.parse(readFileSync(`${FIXTURES}config.json`, "utf8"));

/** Rows [image, patch] of x [N, P, D] where the mask is 1, flattened. */
function validRows(x: Float32Array, mask: Int32Array, D: number): Float32Array {
  const out: number[] = [];
  mask.forEach((m, k) => {
    if (m) for (let d = 0; d < D; d++) out.push(x[k * D + d]!);
  });
  return Float32Array.from(out);
}

let vision: Idefics2VisionTransformer;

beforeAll(async () => {
  await getDevice();
  vision = new Idefics2VisionTransformer(parseVisionConfig(config));
  await loadWeights(vision, `${FIXTURES}model.safetensors`, { prefix: "model.vision_model" });
});

describe("Idefics2VisionTransformer vs the HF fixtures", () => {
  for (const name of ["single", "batch", "split"]) {
    it(`case_${name}: patch mask exact; embeddings, layer outputs, last_hidden_state within 1e-4 at real patches`, async () => {
      const c = await readSafetensorsFile(`${FIXTURES}case_${name}.safetensors`);
      const get = (k: string): ReadTensor => {
        const t = c.get(`${name}.${k}`);
        if (!t) throw new Error(`fixture case_${name} lacks ${name}.${k}`);
        return t;
      };
      const pv = get("pixel_values");
      const pm = get("pixel_attention_mask");
      const taps = new Map<string, Tensor>();
      vision.tap = (tapName, t) => taps.set(tapName, t.retainHandle());
      const out = await encodeImages(
        vision,
        { data: toFloat32(pv), shape: pv.shape },
        { data: toInt32(pm), shape: pm.shape },
      );
      vision.tap = undefined;

      const wantMask = toInt32(get("patch_attention_mask"));
      expect([out.grid.images, out.grid.rows, out.grid.cols]).toEqual(get("patch_attention_mask").shape);
      expect(Array.from(await out.patchMask.data())).toEqual(Array.from(wantMask));
      if (name === "batch") expect(out.realImageIndices).toEqual([0, 1, 2]); // sample 1's second slot is padding

      const D = vision.config.hidden_size;
      const compareTo = async (tapName: string, fixture: string) => {
        const t = taps.get(tapName);
        if (!t) throw new Error(`no tap ${tapName}`);
        const got = validRows(await t.toFloat32(), wantMask, D);
        const want = validRows(toFloat32(get(fixture)), wantMask, D);
        const r = assertClose(got, want, { atol: 1e-4, what: `case_${name} ${fixture}` });
        console.log(`vision case_${name} ${fixture}: max abs diff ${r.maxAbs.toExponential(2)}`);
      };
      await compareTo("vision.embeddings", "vision.embeddings");
      for (let i = 0; i < vision.config.num_hidden_layers; i++) {
        await compareTo(`vision.layer_${i}.output`, `vision.layer_${i}.output`);
      }
      await compareTo("vision.last_hidden_state", "vision.last_hidden_state");
      const last = validRows(await out.lastHiddenState.toFloat32(), wantMask, D);
      assertClose(last, validRows(toFloat32(get("vision.last_hidden_state")), wantMask, D), {
        atol: 1e-4,
        what: "returned last_hidden_state",
      });
      for (const t of taps.values()) t.dispose();
      out.lastHiddenState.dispose();
      out.patchMask.dispose();
    });
  }
});

describe("padding", () => {
  it("padded pixels do not change any real patch's output", async () => {
    const c = await readSafetensorsFile(`${FIXTURES}case_batch.safetensors`);
    const pv = c.get("batch.pixel_values")!;
    const pm = c.get("batch.pixel_attention_mask")!;
    const pixels = toFloat32(pv);
    const mask = toInt32(pm);
    const noisy = pixels.slice();
    // Perturb every padded pixel of the real images (not the all-zero padding image, which must stay dropped).
    const HW = 56 * 56;
    for (const n of [0, 1, 2]) {
      for (let ch = 0; ch < 3; ch++) {
        for (let k = 0; k < HW; k++)
          if (!mask[n * HW + k]) noisy[(n * 3 + ch) * HW + k] = Math.sin(k + ch) * 3;
      }
    }
    const a = await encodeImages(vision, { data: pixels, shape: pv.shape }, { data: mask, shape: pm.shape });
    const b = await encodeImages(vision, { data: noisy, shape: pv.shape }, { data: mask, shape: pm.shape });
    const m = (await a.patchMask.data()) as Int32Array;
    expect(m.includes(0)).toBe(true);
    const D = vision.config.hidden_size;
    const r = assertClose(
      validRows(await b.lastHiddenState.toFloat32(), m, D),
      validRows(await a.lastHiddenState.toFloat32(), m, D),
      {
        atol: 1e-6,
        what: "real patches after perturbing padding",
      },
    );
    expect(r.maxAbs).toBeLessThanOrEqual(1e-6);
    for (const t of [a.lastHiddenState, a.patchMask, b.lastHiddenState, b.patchMask]) t.dispose();
  });
});

describe("backward through the tower", () => {
  it("d(loss)/d(patch and position embeddings) agrees with a central difference along a random direction", async () => {
    const c = await readSafetensorsFile(`${FIXTURES}case_batch.safetensors`);
    const pv = c.get("batch.pixel_values")!;
    const pm = c.get("batch.pixel_attention_mask")!;
    const inputs = prepareVisionInputs(
      { data: toFloat32(pv), shape: pv.shape },
      { data: toInt32(pm), shape: pm.shape },
      14,
    );
    const pixels = Tensor.from(inputs.pixelValues, inputs.shape);
    const rng = new Rng(21);
    const D = vision.config.hidden_size;
    const P = inputs.grid.rows * inputs.grid.cols;
    // loss = Σ w ∘ last_hidden_state over real patches (padded rows weigh 0).
    const w = rng.uniform(inputs.grid.images * P * D);
    inputs.grid.data.forEach((m, k) => {
      if (!m) w.fill(0, k * D, (k + 1) * D);
    });
    const wt = Tensor.from(w, [inputs.grid.images, P, D]);
    for (const param of [
      vision.embeddings.patch_embedding.weight,
      vision.embeddings.position_embedding.weight,
    ]) {
      const theta = await param.value.toFloat32();
      const dir = rng.uniform(theta.length);
      const lossAt = (eps: number) =>
        tidy(() => {
          param.set(
            Tensor.from(
              theta.map((v, i) => v + eps * dir[i]!),
              param.shape,
            ),
          );
          return noGrad(() => vision.forward(pixels, inputs.grid).mul(wt).sum());
        });
      const eps = 1e-3;
      const up = await lossAt(eps).item();
      const down = await lossAt(-eps).item();
      param.set(Tensor.from(theta, param.shape));
      tidy(() => vision.forward(pixels, inputs.grid).mul(wt).sum().backward());
      const g = await param.value.grad!.toFloat32();
      const analytic = g.reduce((s, v, i) => s + v * dir[i]!, 0);
      const numeric = (up - down) / (2 * eps);
      expect(Math.abs(analytic - numeric)).toBeLessThan(2e-3 * Math.max(1, Math.abs(numeric)));
    }
    pixels.dispose();
    wt.dispose();
  });
});

describe("encodeImages inputs", () => {
  it("takes tensors [N, C, H, W] as well as host arrays, with the same result", async () => {
    const c = await readSafetensorsFile(`${FIXTURES}case_split.safetensors`);
    const pv = c.get("split.pixel_values")!;
    const pm = c.get("split.pixel_attention_mask")!;
    const [, M, C, H, W] = pv.shape as number[];
    const host = await encodeImages(
      vision,
      { data: toFloat32(pv), shape: pv.shape },
      { data: toInt32(pm), shape: pm.shape },
    );
    const pixels = Tensor.from(toFloat32(pv), [M!, C!, H!, W!]);
    const mask = Tensor.from(toInt32(pm), [M!, H!, W!], { dtype: "i32" });
    const dev = await encodeImages(vision, pixels, mask);
    expect(dev.realImageIndices).toEqual([0, 1, 2, 3, 4]);
    assertClose(await dev.lastHiddenState.toFloat32(), await host.lastHiddenState.toFloat32(), {
      atol: 0,
      what: "tensor vs host inputs",
    });
    await expect(
      encodeImages(vision, Tensor.from(new Float32Array(2 * 28 * 28).fill(0.5), [1, 2, 28, 28])),
    ).rejects.toThrow(/2 channels, the model has 3/);
  });
});

describe("f16 weights", () => {
  it("encodeImages uploads pixels in the weights' dtype: f16 output within f16 tolerance of f32", async (ctx) => {
    const device = await getDevice();
    if (!device.hasF16) {
      console.warn("SKIPPED: this adapter has no shader-f16");
      ctx.skip();
    }
    const half = new Idefics2VisionTransformer(parseVisionConfig(config));
    await loadWeights(half, `${FIXTURES}model.safetensors`, { prefix: "model.vision_model", dtype: "f16" });
    expect(half.embeddings.patch_embedding.weight.dtype).toBe("f16");
    const c = await readSafetensorsFile(`${FIXTURES}case_batch.safetensors`);
    const pv = c.get("batch.pixel_values")!;
    const pm = c.get("batch.pixel_attention_mask")!;
    const pixels = { data: toFloat32(pv), shape: pv.shape };
    const mask = { data: toInt32(pm), shape: pm.shape };
    const full = await encodeImages(vision, pixels, mask);
    const out = await encodeImages(half, pixels, mask);
    expect(out.lastHiddenState.dtype).toBe("f16");
    const m = toInt32(c.get("batch.patch_attention_mask")!);
    const D = vision.config.hidden_size;
    const want = validRows(await full.lastHiddenState.toFloat32(), m, D);
    const got = validRows(await out.lastHiddenState.toFloat32(), m, D);
    // f16 keeps 11 significant bits: weights, pixels and every stored activation round at ~5e-4
    // relative; through two layers and the final LayerNorm (outputs up to ~4) that is ~5e-3 here.
    const r = assertClose(got, want, { atol: 1e-2, what: "f16 vs f32 last_hidden_state" });
    console.log(`vision f16 vs f32: max abs diff ${r.maxAbs.toExponential(2)}`);
    for (const t of [full.lastHiddenState, full.patchMask, out.lastHiddenState, out.patchMask]) t.dispose();
    half.dispose();
  });
});
