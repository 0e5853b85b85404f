import { crossEntropy, getDevice, Tensor } from "@webvlm/tensor";
import { assertClose } from "@webvlm/tensor/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, MISTRAL_DEFAULTS, parseMistralConfig } from "./config.js";
import { MistralForCausalLM } from "./mistral.js";
import { positionsFromMask } from "./positions.js";
import { CASES, Case, compareRealTokens, diffs, loadTinyLm, textConfig } from "./test-fixtures.js";

// HF reference: transformers 4.45.2, f32, eager attention. Real-token activations within 1e-4.
const ATOL = 1e-4;
let lm: MistralForCausalLM;

beforeAll(async () => {
  await getDevice();
  lm = await loadTinyLm();
});

afterAll(() => {
  lm?.dispose();
  console.log(
    `max abs diffs vs HF (real tokens):\n${diffs.map(([n, d]) => `  ${n}: ${d.toExponential(2)}`).join("\n")}`,
  );
});

describe("MistralModel vs the idefics2-tiny fixture", () => {
  for (const name of CASES) {
    it(`${name}: layer outputs, final norm and logits from inputs_embeds_merged (positions 0..L-1)`, async () => {
      const c = await Case.open(name);
      const [B, L, H] = c.shape("text.inputs_embeds_merged");
      const mask = c.i32("attention_mask");
      const embeds = Tensor.from(c.f32("text.inputs_embeds_merged"), [B!, L!, H!]);
      // HF forward with position_ids=None numbers every row 0..L-1, left padding included.
      const arange = Array.from({ length: B! * L! }, (_, i) => i % L!);
      const layerOut: Tensor[] = [];
      const hooks = {
        afterLayer(_i: number, h: Tensor): Tensor {
          layerOut.push(h.retainHandle()); // a debug tap: keep our own handle, pass the stream on
          return h;
        },
      };
      const hidden = lm.model.forward({
        inputsEmbeds: embeds,
        attentionMask: mask,
        positionIds: arange,
        layerHooks: hooks,
      });
      expect(layerOut.length).toBe(lm.config.num_hidden_layers);
      for (let i = 0; i < layerOut.length; i++) {
        const d = compareRealTokens(
          `${name} text.layer_${i}.output`,
          await layerOut[i]!.toFloat32(),
          c.f32(`text.layer_${i}.output`),
          mask,
          H!,
          ATOL,
        );
        diffs.push([`${name}.text.layer_${i}.output`, d]);
        layerOut[i]!.dispose();
      }
      const dn = compareRealTokens(
        `${name} text.final_norm_output`,
        await hidden.toFloat32(),
        c.f32("text.final_norm_output"),
        mask,
        H!,
        ATOL,
      );
      diffs.push([`${name}.text.final_norm_output`, dn]);
      hidden.dispose();

      const logits = lm.forward({ inputsEmbeds: embeds, attentionMask: mask, positionIds: arange });
      expect(logits.shape).toEqual([B, L, lm.config.vocab_size]);
      const dl = compareRealTokens(
        `${name} logits`,
        await logits.toFloat32(),
        c.f32("logits"),
        mask,
        lm.config.vocab_size,
        ATOL,
      );
      diffs.push([`${name}.logits`, dl]);
      logits.dispose();
      embeds.dispose();
    });

    // Only the padded batch case stores mask-derived positions; without padding they are 0..L-1.
    const expected = name === "batch" ? "logits_with_mask_position_ids" : "logits";
    it(`${name}: default positions from the mask (what generate() uses) vs ${expected}`, async () => {
      const c = await Case.open(name);
      const [B, L, H] = c.shape("text.inputs_embeds_merged");
      const mask = c.i32("attention_mask");
      if (name === "batch") {
        expect(Array.from(positionsFromMask(mask, B!, L!, L!))).toEqual(
          Array.from(c.i32("position_ids_from_mask")),
        );
      }
      const embeds = Tensor.from(c.f32("text.inputs_embeds_merged"), [B!, L!, H!]);
      // Default positions: cumsum(mask) - 1, padding set to 1.
      const logits = lm.forward({ inputsEmbeds: embeds, attentionMask: mask });
      const d = compareRealTokens(
        `${name} ${expected}`,
        await logits.toFloat32(),
        c.f32(expected),
        mask,
        lm.config.vocab_size,
        ATOL,
      );
      diffs.push([`${name}.${expected} (positions from mask)`, d]);
      logits.dispose();
      embeds.dispose();
    });
  }

  it("training path (batch case): loss and gradients of lm_head and layer 0 q_proj vs HF", async () => {
    const c = await Case.open("batch");
    const [B, L, H] = c.shape("text.inputs_embeds_merged") as [number, number, number];
    const V = lm.config.vocab_size;
    const mask = c.i32("attention_mask");
    const labels = c.i32("labels");
    // HF: logits[:, :-1] against labels[:, 1:], kept where attention_mask[:, 1:] != 0, mean CE.
    const targets = new Int32Array(B * (L - 1));
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < L - 1; t++)
        targets[b * (L - 1) + t] = mask[b * L + t + 1] ? labels[b * L + t + 1]! : -100;
    }
    const embeds = Tensor.from(c.f32("text.inputs_embeds_merged"), [B, L, H]);
    const head = lm.lm_head!.weight.value;
    const q = lm.model.layers[0]!.self_attn.q_proj.weight.value;
    // HF computed the loss with position_ids=None (0..L-1): padding rows' gradients depend on it.
    const arange = Array.from({ length: B * L }, (_, i) => i % L);
    const logits = lm.forward({ inputsEmbeds: embeds, attentionMask: mask, positionIds: arange });
    const loss = crossEntropy(logits.narrow(1, 0, L - 1).reshape([B * (L - 1), V]), targets);
    const lossValue = await loss.item();
    const dLoss = Math.abs(lossValue - c.f32("loss")[0]!);
    diffs.push(["batch.loss", dLoss]);
    expect(dLoss).toBeLessThan(1e-5);
    loss.backward();
    for (const [name, p] of [
      ["lm_head.weight", head],
      ["model.text_model.layers.0.self_attn.q_proj.weight", q],
    ] as const) {
      const want = c.f32(`grad.${name}`);
      const got = await p.grad!.toFloat32();
      const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const rep = assertClose(got, want, { atol: Math.max(1e-5, 1e-3 * scale), what: `grad ${name}` });
      diffs.push([`batch.grad.${name} (max |g| ${scale.toExponential(1)})`, rep.maxAbs]);
      p.grad!.dispose();
      p.grad = null;
    }
    loss.dispose();
    logits.dispose();
    embeds.dispose();
  });

  it("left-padding positions match HF too: rows that see no key attend uniformly to all keys", async () => {
    const c = await Case.open("batch");
    const [B, L, H] = c.shape("text.inputs_embeds_merged") as [number, number, number];
    const V = lm.config.vocab_size;
    const mask = c.i32("attention_mask");
    expect(mask.includes(0)).toBe(true);
    const everywhere = new Int32Array(B * L).fill(1);
    const embeds = Tensor.from(c.f32("text.inputs_embeds_merged"), [B, L, H]);
    const arange = Array.from({ length: B * L }, (_, i) => i % L);
    const taps: Tensor[] = [];
    const hooks = {
      afterLayer(_i: number, h: Tensor): Tensor {
        taps.push(h.retainHandle());
        return h;
      },
    };
    const logits = lm.forward({
      inputsEmbeds: embeds,
      attentionMask: mask,
      positionIds: arange,
      layerHooks: hooks,
    });
    for (const [i, t] of taps.entries()) {
      const d = compareRealTokens(
        `text.layer_${i}.output (all positions)`,
        await t.toFloat32(),
        c.f32(`text.layer_${i}.output`),
        everywhere,
        H,
        ATOL,
      );
      diffs.push([`batch.text.layer_${i}.output (all positions)`, d]);
      t.dispose();
    }
    const d1 = compareRealTokens(
      "logits (all positions)",
      await logits.toFloat32(),
      c.f32("logits"),
      everywhere,
      V,
      ATOL,
    );
    diffs.push(["batch.logits (all positions)", d1]);
    const withMask = lm.forward({ inputsEmbeds: embeds, attentionMask: mask });
    const d2 = compareRealTokens(
      "logits_with_mask_position_ids (all positions)",
      await withMask.toFloat32(),
      c.f32("logits_with_mask_position_ids"),
      everywhere,
      V,
      ATOL,
    );
    diffs.push(["batch.logits_with_mask_position_ids (all positions)", d2]);
    for (const t of [logits, withMask, embeds]) t.dispose();
  });

  it("embeds input ids with embed_tokens: inputIds equals inputsEmbeds of the same ids", async () => {
    const ids = [
      [1, 40, 72, 75, 3, 999],
      [0, 0, 1, 41, 74, 2],
    ];
    const mask = [
      [1, 1, 1, 1, 1, 1],
      [0, 0, 1, 1, 1, 1],
    ];
    const a = lm.forward({ inputIds: ids, attentionMask: mask });
    const e = lm.embed(ids);
    const b = lm.forward({ inputsEmbeds: e, attentionMask: mask });
    expect(Array.from(await a.toFloat32())).toEqual(Array.from(await b.toFloat32()));
    for (const t of [a, b, e]) t.dispose();
  });

  it("rejects bad inputs naming them", () => {
    expect(() => lm.forward({ inputIds: [[1, 2]], inputsEmbeds: lm.embed([[1, 2]]) })).toThrow(/exactly one/);
    expect(() => lm.forward({ inputIds: [[1, 2, 3]], attentionMask: [[1, 2, 1]] })).toThrow(
      /attentionMask: value 2 at \[0, 1\]/,
    );
    expect(() => lm.forward({ inputIds: [[1, 2, 3]], attentionMask: [1, 1] })).toThrow(/attentionMask/);
    expect(() => lm.forward({ inputIds: [[1, 2000]] })).toThrow(/2000/);
    const e = Tensor.from(new Float32Array(2 * 3 * 32), [2, 3, 32]);
    expect(() => lm.forward({ inputsEmbeds: e })).toThrow(
      /inputsEmbeds must be \[B, T, 64\], got \[2, 3, 32\]/,
    );
    e.dispose();
  });
});

describe("parseMistralConfig", () => {
  it("reads the Idefics2 text_config", async () => {
    const c = await textConfig();
    expect(c).toMatchObject({
      hidden_size: 64,
      head_dim: 16,
      num_key_value_heads: 2,
      sliding_window: null,
      tie_word_embeddings: false,
    });
  });
  it("defaults head_dim to hidden / heads and names bad fields", () => {
    const base = {
      vocab_size: 10,
      hidden_size: 64,
      intermediate_size: 128,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      num_key_value_heads: null, // HF: null means one KV head per query head
    };
    expect(parseMistralConfig(base).head_dim).toBe(16);
    expect(parseMistralConfig({ ...base, head_dim: null }).head_dim).toBe(16);
    expect(parseMistralConfig(base).num_key_value_heads).toBe(4);
    expect(() => parseMistralConfig({ ...base, num_key_value_heads: 3 })).toThrow(ConfigError);
    const { num_key_value_heads: _kv, ...noKv } = base;
    expect(() => parseMistralConfig(noKv)).toThrow(
      /num_attention_heads 4 is not a multiple of num_key_value_heads 8 \(transformers' default/,
    );
    expect(() => parseMistralConfig({ ...base, sliding_window: -1 })).toThrow(/sliding_window/);
    expect(() => parseMistralConfig({ ...base, hidden_act: "swish2" })).toThrow(/hidden_act/);
    expect(() => parseMistralConfig({ ...base, model_type: "llama" })).toThrow(/model_type/);
    expect(() => parseMistralConfig({ ...base, rope_scaling: { type: "linear" } })).toThrow(/rope_scaling/);
    expect(() => parseMistralConfig({ ...base, attention_dropout: 0.1 })).toThrow(/'attention_dropout' 0.1/);
    expect(() => parseMistralConfig({ ...base, vocab_size: 0 })).toThrow(
      /'vocab_size' must be a positive integer/,
    );
  });

  it("fills transformers' MistralConfig defaults for missing fields (idefics2-8b's text_config)", () => {
    // The released idefics2-8b text_config (transformers 4.40 save_pretrained): only these fields.
    const c = parseMistralConfig({
      model_type: "mistral",
      max_position_embeddings: 32768,
      pad_token_id: 0,
      rms_norm_eps: 1e-5,
      sliding_window: 4096,
      torch_dtype: "bfloat16",
      vocab_size: 32003,
    });
    expect(c).toEqual({
      vocab_size: 32003,
      hidden_size: 4096,
      intermediate_size: 14336,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      head_dim: 128,
      hidden_act: "silu",
      max_position_embeddings: 32768,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      sliding_window: 4096,
      tie_word_embeddings: false,
      pad_token_id: 0,
      bos_token_id: 1,
      eos_token_id: 2,
    });
    // An empty object is MistralConfig(): Mistral-7B-v0.1.
    const d = parseMistralConfig({});
    expect(d).toMatchObject({ vocab_size: 32000, max_position_embeddings: 131072, rms_norm_eps: 1e-6 });
    expect(d.sliding_window).toBe(MISTRAL_DEFAULTS.sliding_window);
    // null keeps its meaning: no sliding window.
    expect(parseMistralConfig({ sliding_window: null }).sliding_window).toBeNull();
    // The decoder built from the defaults has Mistral-7B's shapes (nothing is allocated).
    const lm = new MistralForCausalLM(c);
    const shapes = new Map(lm.namedParameters().map(([n, p]) => [n, p.shape]));
    expect(shapes.get("model.embed_tokens.weight")).toEqual([32003, 4096]);
    expect(shapes.get("model.layers.31.self_attn.k_proj.weight")).toEqual([1024, 4096]);
    expect(shapes.get("model.layers.0.mlp.down_proj.weight")).toEqual([4096, 14336]);
    expect(shapes.get("lm_head.weight")).toEqual([32003, 4096]);
    expect(lm.parameterCount()).toBe(7_241_756_672);
  });
});
