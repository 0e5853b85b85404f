import { type PerceiverConnector, paperConnectors } from "@webvlm/connectors";
import { describe, expect, it } from "vitest";
import { parseIdefics2Config } from "./config.js";
import { createIdefics2 } from "./create.js";
import { IDEFICS2_8B_CONFIG, idefics2_8b } from "./test-configs.js";

const factory = createIdefics2({ connectors: paperConnectors });

/** Parameters under each prefix, from shapes alone. */
function countBy(named: [string, { shape: readonly number[] }][], prefix: string): number {
  return named
    .filter(([n]) => n.startsWith(prefix))
    .reduce((sum, [, p]) => sum + p.shape.reduce((a, d) => a * d, 1), 0);
}

describe("the released idefics2-8b config.json", () => {
  const config = parseIdefics2Config(idefics2_8b());

  it("takes transformers' defaults for what it omits, from each family's parser", () => {
    expect(config.text_config).toMatchObject({
      vocab_size: 32003,
      hidden_size: 4096, // MistralConfig defaults from here on
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
    expect(config.vision_config).toEqual({
      hidden_size: 1152,
      intermediate_size: 4304,
      num_hidden_layers: 27,
      num_attention_heads: 16,
      num_channels: 3,
      image_size: 980,
      patch_size: 14,
      hidden_act: "gelu_pytorch_tanh",
      layer_norm_eps: 1e-6,
    });
    expect(config.image_token_id).toBe(32001);
    // The raw object is left as it was; the connector reads the resolved copy.
    expect(IDEFICS2_8B_CONFIG.text_config).not.toHaveProperty("hidden_size");
    expect((config.raw.text_config as Record<string, unknown>).hidden_size).toBe(4096);
  });

  it("builds the 8B module tree without allocating weights: ~0.4 B vision, ~0.74 B connector, ~7.2 B text", () => {
    const model = factory.create(config);
    const named = model.namedParameters();
    expect(named.every(([, p]) => !p.loaded)).toBe(true);
    const shape = (n: string) => named.find(([name]) => name === n)?.[1].shape;
    expect(shape("model.vision_model.embeddings.patch_embedding.weight")).toEqual([1152, 3, 14, 14]);
    expect(shape("model.vision_model.embeddings.position_embedding.weight")).toEqual([4900, 1152]);
    expect(shape("model.connector.modality_projection.gate_proj.weight")).toEqual([14336, 1152]);
    expect(shape("model.connector.modality_projection.down_proj.weight")).toEqual([4096, 14336]);
    expect(shape("model.connector.perceiver_resampler.latents")).toEqual([64, 4096]);
    expect(shape("model.connector.perceiver_resampler.layers.2.self_attn.q_proj.weight")).toEqual([
      1536, 4096,
    ]);
    expect(shape("model.connector.perceiver_resampler.layers.2.self_attn.k_proj.weight")).toEqual([
      384, 4096,
    ]);
    expect(shape("model.connector.perceiver_resampler.layers.2.mlp.gate_proj.weight")).toEqual([16384, 4096]);
    expect(shape("model.text_model.embed_tokens.weight")).toEqual([32003, 4096]);
    expect(shape("model.text_model.layers.31.self_attn.v_proj.weight")).toEqual([1024, 4096]);
    expect(shape("lm_head.weight")).toEqual([32003, 4096]);

    const vision = countBy(named, "model.vision_model.");
    const connector = countBy(named, "model.connector.");
    const text = countBy(named, "model.text_model.") + countBy(named, "lm_head.");
    expect(vision).toBe(417_792_240);
    expect(connector).toBe(743_219_200); // modality projection 91.75 M + perceiver 651.5 M
    expect(text).toBe(7_241_756_672);
    expect(model.parameterCount()).toBe(vision + connector + text); // 8.40 B
    expect(model.parameterCount() / 1e9).toBeCloseTo(8.4, 1);

    const perceiver = model.connector as PerceiverConnector;
    expect(perceiver.config).toMatchObject({
      vision_hidden_size: 1152,
      text_hidden_size: 4096,
      text_intermediate_size: 14336,
      rms_norm_eps: 1e-5, // v4.45: the perceiver's RMSNorms use text_config.rms_norm_eps
      hidden_act: "silu",
      num_key_value_heads: 4,
    });
    // One 980×980 image: 70×70 patches → 64 latents → 64 <image> tokens.
    expect(model.imageSeqLen(980, 980)).toBe(64);
  });

  it("a config without sub-configs is transformers' Idefics2Config()", () => {
    // Idefics2Config() itself puts image_token_id 32001 outside its 32000-token vocabulary: refused.
    expect(() => parseIdefics2Config({ model_type: "idefics2" })).toThrow(
      /image_token_id 32001 is outside the vocabulary \(text_config\.vocab_size 32000\)/,
    );
    const c = parseIdefics2Config({ model_type: "idefics2", image_token_id: 31999 });
    expect(c.text_config).toMatchObject({
      hidden_size: 4096,
      vocab_size: 32000,
      max_position_embeddings: 32768,
      rms_norm_eps: 1e-5,
      pad_token_id: 0,
    });
    expect(c.vision_config).toMatchObject({ hidden_size: 768, image_size: 224, patch_size: 32 });
    expect(factory.create(c).imageSeqLen(224, 224)).toBe(64);
  });

  it("names a bad field inside an otherwise defaulted sub-config", () => {
    const bad = idefics2_8b();
    bad.text_config.num_key_value_heads = 5;
    expect(() => parseIdefics2Config(bad)).toThrow(
      /config\.json: text_config: num_attention_heads 32 is not a multiple of num_key_value_heads 5/,
    );
    const dropout = idefics2_8b();
    dropout.perceiver_config.attention_dropout = 0.1;
    expect(() => factory.create(parseIdefics2Config(dropout))).toThrow(
      /perceiver_config\.attention_dropout: only 0 is supported, got 0\.1/,
    );
  });
});
