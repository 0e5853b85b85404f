import { type MistralConfig, parseMistralConfig } from "@webvlm/language";
import { parseVisionConfig, type VisionConfig } from "@webvlm/vision";

/**
 * An Idefics2 `config.json` (HF `Idefics2Config`), with Hugging Face field names. The connector's
 * own settings (`perceiver_config`, or `connector_config` for other designs) are read by the
 * connector spec from `raw`, so this type does not fix which connector a checkpoint uses.
 */
export interface Idefics2Config {
  model_type: "idefics2";
  /** Id of `<image>`: the slots the connector output is written into. */
  image_token_id: number;
  /** `lm_head` reuses `model.text_model.embed_tokens.weight` (no `lm_head.weight` is read). */
  tie_word_embeddings: boolean;
  vision_config: VisionConfig;
  text_config: MistralConfig;
  /** The whole object with sub-config defaults filled in, for the connector spec's `parseConfig`. */
  raw: Record<string, unknown>;
}

/** config.json is missing a field, has a bad value, or asks for something this port does not do. */
export class Idefics2ConfigError extends Error {
  override name = "Idefics2ConfigError";
}

/**
 * transformers' `MistralConfig` defaults. `save_pretrained` of older versions wrote only fields that
 * differ from them (the released idefics2-8b `text_config` lists 7 fields), so a missing field means
 * this value, not an error.
 */
export const MISTRAL_DEFAULTS: Readonly<Record<string, unknown>> = {
  vocab_size: 32000,
  hidden_size: 4096,
  intermediate_size: 14336,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  hidden_act: "silu",
  max_position_embeddings: 4096 * 32,
  rms_norm_eps: 1e-6,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  pad_token_id: null,
  bos_token_id: 1,
  eos_token_id: 2,
};

/** transformers' `Idefics2VisionConfig` defaults, for the same reason. */
export const IDEFICS2_VISION_DEFAULTS: Readonly<Record<string, unknown>> = {
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_channels: 3,
  image_size: 224,
  patch_size: 32,
  hidden_act: "gelu_pytorch_tanh",
  layer_norm_eps: 1e-6,
};

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/**
 * Parses an Idefics2 config.json object. Errors name the field (`text_config.hidden_size`,
 * `image_token_id`, …) and keep the sub-parser's error as `cause`.
 */
export function parseIdefics2Config(raw: unknown, source = "config.json"): Idefics2Config {
  if (!isObject(raw))
    throw new Idefics2ConfigError(
      `${source}: expected a JSON object, got ${JSON.stringify(raw)?.slice(0, 80)}`,
    );
  if (raw.model_type !== undefined && raw.model_type !== "idefics2") {
    throw new Idefics2ConfigError(
      `${source}: model_type is ${JSON.stringify(raw.model_type)}, expected "idefics2"`,
    );
  }
  for (const key of ["vision_config", "text_config"] as const) {
    if (!isObject(raw[key]))
      throw new Idefics2ConfigError(`${source}: ${key} must be an object, got ${JSON.stringify(raw[key])}`);
  }
  // Missing sub-config fields take transformers' defaults; the connector spec sees the filled-in
  // object too (the perceiver reads text_config.hidden_size, absent from idefics2-8b's config).
  const filled: Record<string, unknown> = {
    ...raw,
    vision_config: { ...IDEFICS2_VISION_DEFAULTS, ...(raw.vision_config as object) },
    text_config: { ...MISTRAL_DEFAULTS, ...(raw.text_config as object) },
  };
  let vision_config: VisionConfig;
  try {
    vision_config = parseVisionConfig({ vision_config: filled.vision_config });
  } catch (cause) {
    throw new Idefics2ConfigError(`${source}: ${(cause as Error).message}`, { cause });
  }
  let text_config: MistralConfig;
  try {
    text_config = parseMistralConfig(filled.text_config);
  } catch (cause) {
    // The Mistral parser names fields without the section; say where they live in config.json.
    throw new Idefics2ConfigError(
      `${source}: text_config: ${(cause as Error).message.replace(/^mistral config: /, "")}`,
      { cause },
    );
  }
  const imageTokenId = raw.image_token_id ?? 32001; // HF's default, the id in the released checkpoints
  if (typeof imageTokenId !== "number" || !Number.isInteger(imageTokenId) || imageTokenId < 0) {
    throw new Idefics2ConfigError(
      `${source}: image_token_id must be a token id, got ${JSON.stringify(imageTokenId)}`,
    );
  }
  if (imageTokenId >= text_config.vocab_size) {
    throw new Idefics2ConfigError(
      `${source}: image_token_id ${imageTokenId} is outside the vocabulary (text_config.vocab_size ${text_config.vocab_size})`,
    );
  }
  const tie = raw.tie_word_embeddings ?? false;
  if (typeof tie !== "boolean") {
    throw new Idefics2ConfigError(
      `${source}: tie_word_embeddings must be a boolean, got ${JSON.stringify(tie)}`,
    );
  }
  // Idefics2ForConditionalGeneration ties by the top-level flag; the decoder must agree.
  text_config = { ...text_config, tie_word_embeddings: tie };
  return {
    model_type: "idefics2",
    image_token_id: imageTokenId,
    tie_word_embeddings: tie,
    vision_config,
    text_config,
    raw: filled,
  };
}
