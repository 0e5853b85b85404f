import { getDevice, Tensor, tidy } from "@webvlm/tensor";
import { Rng } from "@webvlm/tensor/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MistralConfig, parseMistralConfig } from "./config.js";
import { KVCache } from "./kv-cache.js";
import { MistralForCausalLM } from "./mistral.js";
import { mistralRef, type RefWeights } from "./mistral.ref.js";
import { positionsFromMask } from "./positions.js";
import { Case, compareRealTokens, loadTinyLm } from "./test-fixtures.js";

beforeAll(async () => {
  await getDevice();
});

/** A small decoder with GQA (4 query heads on 2 KV heads), a 3-slot sliding window and a tied head. */
const windowConfig: MistralConfig = parseMistralConfig({
  model_type: "mistral",
  vocab_size: 50,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 8,
  hidden_act: "silu",
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  sliding_window: 3,
  tie_word_embeddings: true,
});

/** Random weights large enough that attention is far from uniform; returns the f64 copy too. */
function randomModel(cfg: MistralConfig, seed: number): { lm: MistralForCausalLM; ref: RefWeights } {
  const rng = new Rng(seed);
  const lm = new MistralForCausalLM(cfg);
  const byName = new Map<string, Float64Array>();
  for (const [name, p] of lm.namedParameters()) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const data = name.endsWith("norm.weight")
      ? rng.normal(n, 0.2).map((v) => 1 + v)
      : rng.normal(n, name.includes("embed") ? 1 : 1.5 / Math.sqrt(p.shape[1]!));
    p.set(Tensor.from(data, p.shape));
    byName.set(name, Float64Array.from(data));
  }
  const g = (k: string) => byName.get(k)!;
  const ref: RefWeights = {
    embed: g("model.embed_tokens.weight"),
    norm: g("model.norm.weight"),
    lmHead: cfg.tie_word_embeddings ? g("model.embed_tokens.weight") : g("lm_head.weight"),
    layers: Array.from({ length: cfg.num_hidden_layers }, (_, i) => {
      const p = `model.layers.${i}.`;
      return {
        q: g(`${p}self_attn.q_proj.weight`),
        k: g(`${p}self_attn.k_proj.weight`),
        v: g(`${p}self_attn.v_proj.weight`),
        o: g(`${p}self_attn.o_proj.weight`),
        gate: g(`${p}mlp.gate_proj.weight`),
        up: g(`${p}mlp.up_proj.weight`),
        down: g(`${p}mlp.down_proj.weight`),
        inputNorm: g(`${p}input_layernorm.weight`),
        postNorm: g(`${p}post_attention_layernorm.weight`),
      };
    }),
  };
  return { lm, ref };
}

function embedHost(ref: RefWeights, ids: number[], H: number): Float64Array {
  const out = new Float64Array(ids.length * H);
  ids.forEach((id, r) => {
    out.set(ref.embed.subarray(id * H, (id + 1) * H), r * H);
  });
  return out;
}

const ids = [
  [0, 0, 0, 1, 7, 9, 12, 3, 44, 5, 6, 8],
  [1, 11, 23, 4, 4, 9, 30, 31, 2, 17, 8, 40],
];
const mask = [
  [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1],
  [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
];
const B = 2;
const T = 12;

describe("sliding window, GQA, tied head vs the f64 reference", () => {
  let lm: MistralForCausalLM;
  let ref: RefWeights;
  beforeAll(() => {
    ({ lm, ref } = randomModel(windowConfig, 7));
  });
  afterAll(() => lm.dispose());

  it("full forward matches the reference at real tokens", async () => {
    const flatMask = Int32Array.from(mask.flat());
    const pos = positionsFromMask(flatMask, B, T, T);
    const r = mistralRef(windowConfig, ref, embedHost(ref, ids.flat(), 32), B, T, flatMask, pos);
    const logits = lm.forward({ inputIds: ids, attentionMask: mask });
    const d = compareRealTokens(
      "window logits",
      await logits.toFloat32(),
      Float32Array.from(r.logits),
      flatMask,
      50,
      2e-4,
    );
    console.log(`window model logits vs f64 reference: max abs diff ${d.toExponential(2)}`);
    logits.dispose();
  });

  it("the window matters: without it the logits differ", async () => {
    const flatMask = Int32Array.from(mask.flat());
    const pos = positionsFromMask(flatMask, B, T, T);
    const noWindow = mistralRef(
      { ...windowConfig, sliding_window: null },
      ref,
      embedHost(ref, ids.flat(), 32),
      B,
      T,
      flatMask,
      pos,
    );
    const t = lm.forward({ inputIds: ids, attentionMask: mask });
    const logits = await t.toFloat32();
    t.dispose();
    expect(() =>
      compareRealTokens("no window", logits, Float32Array.from(noWindow.logits), flatMask, 50, 1e-2),
    ).toThrow();
  });

  it("cached decode (prefill 5, then 1 token per step) equals full recompute", async () => {
    const fullT = lm.forward({ inputIds: ids, attentionMask: mask });
    const full = await fullT.toFloat32();
    fullT.dispose();
    const cache = lm.createCache(B, T);
    const got = new Float32Array(B * T * 50);
    const put = (x: Float32Array, t0: number, n: number) => {
      for (let b = 0; b < B; b++) got.set(x.subarray(b * n * 50, (b + 1) * n * 50), (b * T + t0) * 50);
    };
    const cols = (rows: number[][], a: number, n: number) => rows.map((r) => r.slice(a, a + n));
    const pre = lm.forward({ inputIds: cols(ids, 0, 5), attentionMask: cols(mask, 0, 5), cache });
    put(await pre.toFloat32(), 0, 5);
    pre.dispose();
    for (let t = 5; t < T; t++) {
      // HF's convention: the mask covers cached + new tokens.
      const step = lm.forward({ inputIds: cols(ids, t, 1), attentionMask: cols(mask, 0, t + 1), cache });
      put(await step.toFloat32(), t, 1);
      step.dispose();
    }
    expect(cache.length).toBe(T);
    // Real tokens only: a padding row attends uniformly to the keys present when it is computed
    // (5 here, 12 in the full forward), as HF does with a cache.
    compareRealTokens(
      "decode vs recompute (window model)",
      got,
      full,
      Int32Array.from(mask.flat()),
      50,
      2e-5,
    );
    cache.dispose();
  });
});

describe("KV cache on the fixture model", () => {
  let lm: MistralForCausalLM;
  beforeAll(async () => {
    lm = await loadTinyLm();
  });
  afterAll(() => lm.dispose());

  it("chunked prefill and one-token decode equal a full forward over the batch case", async () => {
    const c = await Case.open("batch");
    const [Bc, L, H] = c.shape("text.inputs_embeds_merged") as [number, number, number];
    const embeds = Tensor.from(c.f32("text.inputs_embeds_merged"), [Bc, L, H]);
    const m = c.i32("attention_mask");
    const fullT = lm.forward({ inputsEmbeds: embeds, attentionMask: m });
    const full = await fullT.toFloat32();
    fullT.dispose();
    const V = lm.config.vocab_size;
    const cache = lm.createCache(Bc, L);
    const got = new Float32Array(Bc * L * V);
    const chunks = [17, 13, 1, 1, 9];
    let t0 = 0;
    for (const n of chunks) {
      const part = tidy(() => {
        const e = embeds.narrow(1, t0, n);
        const colMask = Array.from({ length: Bc * n }, (_, i) => m[Math.floor(i / n) * L + t0 + (i % n)]!);
        return lm.forward({ inputsEmbeds: e, attentionMask: { data: colMask, shape: [Bc, n] }, cache });
      });
      const v = await part.toFloat32();
      for (let b = 0; b < Bc; b++) got.set(v.subarray(b * n * V, (b + 1) * n * V), (b * L + t0) * V);
      part.dispose();
      t0 += n;
    }
    expect(t0).toBe(L);
    const d = compareRealTokens("chunked cache vs full", got, full, m, V, 1e-5);
    console.log(
      `fixture batch: cached chunked forward vs full forward, real tokens: max abs diff ${d.toExponential(2)}`,
    );
    cache.dispose();
    embeds.dispose();
  });

  it("writes in place: buffers never change and device memory stays flat while decoding", async () => {
    const cache = lm.createCache(1, 40);
    const keys0 = cache.keys[0];
    const run = async (idsRow: number[]) => {
      const t = tidy(() => lm.forward({ inputIds: [idsRow], cache, numLogitsToKeep: 1 }));
      await t.toFloat32();
      t.dispose();
    };
    await run([1, 40, 50, 60]);
    const dev = await getDevice();
    const live: number[] = [];
    for (let t = 0; t < 12; t++) {
      await run([3 + t]);
      live.push(dev.memory().liveBytes);
    }
    expect(cache.keys[0]).toBe(keys0);
    expect(cache.length).toBe(16);
    expect(Math.max(...live.slice(2))).toBe(Math.min(...live.slice(2)));
    cache.dispose();
  });

  it("refuses tokens beyond maxLength and a batch mismatch", () => {
    const cache = lm.createCache(1, 4);
    expect(() => lm.forward({ inputIds: [[1, 2, 3, 4, 5]], cache })).toThrow(/exceed maxLength 4/);
    expect(() => lm.forward({ inputIds: [[1], [2]], cache })).toThrow(/cache batch 1, inputs batch 2/);
    cache.dispose();
    expect(
      () => new KVCache({ numLayers: 1, batch: 1, numKeyValueHeads: 1, headDim: 8, maxLength: 0 }),
    ).toThrow(/maxLength/);
  });
});
