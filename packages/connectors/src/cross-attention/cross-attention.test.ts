import { getDevice, Tensor, tidy } from "@webvlm/tensor";
import { assertClose, checkGradients, Rng } from "@webvlm/tensor/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { createConnector, isLayerConnector } from "../contract.js";
import { initConnectorWeights } from "../init.js";
import { type CrossAttentionConnector, crossAttentionConnector } from "./cross-attention.js";
import { gatedXattnRef, type XattnRefShape } from "./cross-attention.ref.js";

const D = 8;
const raw = (connector_config: Record<string, unknown> = {}) => ({
  vision_config: { hidden_size: 6 },
  text_config: { hidden_size: D, num_hidden_layers: 5, num_attention_heads: 4, rms_norm_eps: 1e-5 },
  connector_config: {
    type: "cross_attention",
    every: 2,
    num_key_value_heads: 2,
    head_dim: 3,
    intermediate_size: 10,
    ...connector_config,
  },
});
const make = (cc: Record<string, unknown> = {}) =>
  createConnector([crossAttentionConnector], raw(cc)).connector as CrossAttentionConnector;

beforeAll(async () => {
  await getDevice();
});

describe("cross-attention connector (gated xattn blocks between LM layers)", () => {
  it("declares that it feeds LM layers; blocks follow every k-th layer", () => {
    expect(crossAttentionConnector.feedsLanguageLayers).toBe(true);
    const c = make();
    expect(isLayerConnector(c)).toBe(true);
    // Nothing enters the text stream; each patch slot is one media token for the blocks.
    expect(c.tokensPerImage(4)).toBe(0);
    expect(c.mediaTokensPerImage(4)).toBe(4);
    expect(c.layers.length).toBe(2); // after layers 1 and 3 of 5
    expect([0, 1, 2, 3, 4].map((i) => c.blockAfter(i))).toEqual([-1, 0, -1, 1, -1]);
    expect(c.namedParameters().map(([n]) => n)).toContain("layers.1.cross_attn.k_proj.weight");
    expect(() => createConnector([crossAttentionConnector], raw(), { languageAcceptsHooks: false })).toThrow(
      /accepts no layer hooks/,
    );
    expect(() => make({ every: 6 })).toThrow(
      /connector_config\.every: 6 exceeds text_config\.num_hidden_layers 5/,
    );
  });

  it("media tokens per image: padded patches are zero and do not matter", async () => {
    const c = make();
    initConnectorWeights(c, { seed: 2, std: 0.3 });
    const rng = new Rng(5);
    const x = rng.normal(2 * 4 * 6);
    const m = Int32Array.from([1, 1, 1, 1, 1, 1, 0, 0]);
    const mask = Tensor.from(m, [2, 4], { dtype: "i32" });
    const a = c.forward(Tensor.from(x, [2, 4, 6]), mask);
    expect(a.shape).toEqual([2, 4, D]);
    const noisy = x.slice();
    noisy.fill(1e3, 6 * 6);
    const b = c.forward(Tensor.from(noisy, [2, 4, 6]), mask);
    const av = await a.toFloat32();
    assertClose(await b.toFloat32(), av, { atol: 0, what: "media after perturbing padded patches" });
    expect(Array.from(av.subarray(6 * D)).every((v) => v === 0)).toBe(true);
  });

  it("fresh gates (0) leave the language model's hidden states unchanged", async () => {
    const c = make();
    initConnectorWeights(c, { seed: 3 });
    const rng = new Rng(6);
    const media = Tensor.from(rng.normal(2 * 3 * D), [2, 3, D]);
    const hook = c.layerHook(
      media,
      Tensor.from(Int32Array.from([1, 1, 0, 1, 0, 0]), [2, 3], { dtype: "i32" }),
    );
    const h = Tensor.from(rng.normal(2 * 4 * D), [2, 4, D]);
    const want = await h.toFloat32();
    for (const layer of [0, 1, 2, 3, 4]) {
      const out = hook.afterLayer(layer, h);
      assertClose(await out.toFloat32(), want, { atol: 0, what: `after layer ${layer}` });
    }
    hook.dispose?.();
  });

  it("a hooked block matches the f64 reference; padded media do not matter", async () => {
    const c = make();
    initConnectorWeights(c, { seed: 4, std: 0.4 });
    const block = c.layers[1]!;
    block.attn_gate.set(Tensor.from([0.8], [1]));
    block.ff_gate.set(Tensor.from([-0.6], [1]));
    const s: XattnRefShape = {
      batch: 2,
      T: 3,
      M: 4,
      D,
      heads: 4,
      kvHeads: 2,
      headDim: 3,
      inter: 10,
      eps: 1e-5,
    };
    const rng = new Rng(8);
    const x = rng.normal(2 * 3 * D);
    const media = rng.normal(2 * 4 * D);
    const mm = Int32Array.from([1, 1, 1, 0, 1, 0, 0, 0]);
    const weights = await Promise.all(block.namedParameters().map(([, p]) => p.value.toFloat32()));
    const ref = gatedXattnRef(
      s,
      Float64Array.from(x),
      Float64Array.from(media),
      Float64Array.from(mm),
      weights.map((w) => Float64Array.from(w)),
    );
    const run = async (mediaData: Float32Array) => {
      const hook = c.layerHook(Tensor.from(mediaData, [2, 4, D]), Tensor.from(mm, [2, 4], { dtype: "i32" }));
      const y = await tidy(() => hook.afterLayer(3, Tensor.from(x, [2, 3, D]))).toFloat32();
      hook.dispose?.();
      return y;
    };
    const y = await run(media);
    assertClose(y, ref, { atol: 1e-5, what: "gated cross-attention block" });
    const noisy = media.slice();
    mm.forEach((v, k) => {
      if (!v) noisy.fill(50, k * D, (k + 1) * D);
    });
    assertClose(await run(noisy), y, { atol: 1e-6, what: "after perturbing padded media" });
  });

  it("gradients of hidden, media, weights and gates match finite differences", async () => {
    const c = make({ num_key_value_heads: 1, head_dim: 2, intermediate_size: 6 });
    const block = c.layers[0]!;
    const s: XattnRefShape = {
      batch: 1,
      T: 2,
      M: 3,
      D,
      heads: 4,
      kvHeads: 1,
      headDim: 2,
      inter: 6,
      eps: 1e-5,
    };
    const rng = new Rng(9);
    const params = block.namedParameters();
    const inputs = [
      { shape: [1, 2, D], data: rng.normal(2 * D) },
      { shape: [1, 3, D], data: rng.normal(3 * D) },
      { shape: [1, 3], data: Float32Array.from([1, 1, 0]), requiresGrad: false },
      ...params.map(([name, p]) => ({
        shape: p.shape,
        data: name.endsWith("_gate")
          ? Float32Array.from([name.startsWith("attn") ? 0.7 : -0.5])
          : name.endsWith("norm.weight")
            ? rng.uniform(D, 0.5, 1.5)
            : rng.normal(
                p.shape.reduce((a, d) => a * d, 1),
                0.4,
              ),
      })),
    ];
    await checkGradients({
      inputs,
      gpu: ([x, media, mm, ...w]) => {
        params.forEach(([, p], i) => {
          p.set(w[i]!);
        });
        const [k, v] = block.cross_attn.keysValues(media!);
        return block.forward(x!, k, v, mm!);
      },
      reference: ([x, media, mm, ...w]) => gatedXattnRef(s, x!, media!, mm!, w),
      what: "gated cross-attention",
    });
  });
});
