import { describe, expect, it } from "vitest";
import { IDEFICS2_VISION_DEFAULTS, parseVisionConfig } from "./config.js";
import { Idefics2VisionTransformer } from "./vision-transformer.js";

describe("vision config defaults", () => {
  it("fills transformers' Idefics2VisionConfig defaults for the fields idefics2-8b omits", () => {
    // The released idefics2-8b vision_config lists only these (SigLIP-SO400M, patch 14, 980 px).
    const c = parseVisionConfig({
      vision_config: {
        hidden_size: 1152,
        image_size: 980,
        intermediate_size: 4304,
        model_type: "idefics2",
        num_attention_heads: 16,
        num_hidden_layers: 27,
        patch_size: 14,
      },
    });
    expect(c).toEqual({
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
    // Shapes only: building the tower allocates nothing on the device.
    const tower = new Idefics2VisionTransformer(c);
    const shapes = new Map(tower.namedParameters().map(([n, p]) => [n, p.shape]));
    expect(shapes.get("embeddings.patch_embedding.weight")).toEqual([1152, 3, 14, 14]);
    expect(shapes.get("embeddings.position_embedding.weight")).toEqual([70 * 70, 1152]);
    expect(shapes.get("encoder.layers.26.mlp.fc1.weight")).toEqual([4304, 1152]);
    // patch conv + 4,900 positions + 27 × (4 projections, 2 LayerNorms, MLP) + post_layernorm
    const D = 1152;
    const F = 4304;
    const layer = 4 * (D * D + D) + 4 * D + (D * F + F) + (F * D + D);
    expect(tower.parameterCount()).toBe(D * 3 * 14 * 14 + D + 4900 * D + 27 * layer + 2 * D);
    expect(tower.parameterCount()).toBe(417_792_240); // ~0.4 B
  });

  it("an empty vision_config is Idefics2VisionConfig()", () => {
    const { attention_dropout: _, ...defaults } = IDEFICS2_VISION_DEFAULTS;
    expect(parseVisionConfig({ vision_config: {} })).toEqual(defaults);
    expect(() => parseVisionConfig({ vision_config: { attention_dropout: 0.1 } })).toThrow(
      /vision_config\.attention_dropout: only 0 is supported/,
    );
  });
});
