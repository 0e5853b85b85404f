/**
 * HuggingFaceM4/idefics2-8b `config.json` as published (written by transformers 4.40's
 * `save_pretrained`, which drops fields equal to the defaults). Reconstructed from the public
 * checkpoint's config and the sizes in the project's SIZES.md: SigLIP-SO400M (1152 wide, 27
 * layers, MLP 4304, patch 14, 980 px), the perceiver (3 layers, 64 latents, 16 heads × 96) and
 * Mistral-7B with 3 added tokens (vocab 32003); everything else is transformers' defaults.
 * Tests only: it builds the module tree (shapes), never weights.
 */
export const IDEFICS2_8B_CONFIG = Object.freeze({
  architectures: ["Idefics2ForConditionalGeneration"],
  image_token_id: 32001,
  model_type: "idefics2",
  perceiver_config: {
    model_type: "idefics2",
    resampler_depth: 3,
    resampler_head_dim: 96,
    resampler_n_heads: 16,
    resampler_n_latents: 64,
  },
  text_config: {
    model_type: "mistral",
    max_position_embeddings: 32768,
    pad_token_id: 0,
    rms_norm_eps: 1e-5,
    sliding_window: 4096,
    torch_dtype: "bfloat16",
    vocab_size: 32003,
  },
  torch_dtype: "float32",
  transformers_version: "4.40.0.dev0",
  use_cache: true,
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

/** A config.json object whose sections a test may patch. */
export interface RawIdefics2Config {
  [key: string]: unknown;
  image_token_id: number;
  perceiver_config: Record<string, unknown>;
  text_config: Record<string, unknown>;
  vision_config: Record<string, unknown>;
}

/** A deep copy to patch in a test. */
export function idefics2_8b(): RawIdefics2Config {
  return structuredClone(IDEFICS2_8B_CONFIG) as RawIdefics2Config;
}
