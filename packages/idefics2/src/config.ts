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
  /**
   * The whole config.json object with `vision_config` and `text_config` resolved (defaults filled
   * in by their parsers), for the connector spec's `parseConfig`.
   */
  raw: Record<string, unknown>;
}

/** config.json is missing a field, has a bad value, or asks for something this port does not do. */
export class Idefics2ConfigError extends Error {
  override name = "Idefics2ConfigError";
}

/**
 * What transformers' `Idefics2Config` builds when config.json has no `text_config` (v4.45): a
 * `MistralConfig` with these overrides of its own defaults.
 */
const DEFAULT_TEXT_CONFIG: Readonly<Record<string, unknown>> = Object.freeze({
  max_position_embeddings: 4096 * 8,
  rms_norm_eps: 1e-5,
  pad_token_id: 0, // the unk token, as Idefics2's tokenizer pads with it
  tie_word_embeddings: false,
});

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
  // A missing sub-config is what transformers builds without one; missing fields inside one take
  // transformers' defaults, filled in by the vision and language parsers.
  const rawVision = raw.vision_config ?? {};
  const rawText = raw.text_config ?? DEFAULT_TEXT_CONFIG;
  for (const [key, value] of [
    ["vision_config", rawVision],
    ["text_config", rawText],
  ] as const) {
    if (!isObject(value))
      throw new Idefics2ConfigError(`${source}: ${key} must be an object, got ${JSON.stringify(value)}`);
  }
  let vision_config: VisionConfig;
  try {
    vision_config = parseVisionConfig({ vision_config: rawVision });
  } catch (cause) {
    throw new Idefics2ConfigError(`${source}: ${(cause as Error).message}`, { cause });
  }
  let text_config: MistralConfig;
  try {
    text_config = parseMistralConfig(rawText);
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
  // The connector spec reads the resolved sub-configs (the perceiver takes text_config.hidden_size,
  // which idefics2-8b's config.json leaves to the default), as HF builds it from the parsed configs.
  const resolved: Record<string, unknown> = {
    ...raw,
    vision_config: { ...(rawVision as object), ...vision_config },
    text_config: { ...(rawText as object), ...text_config },
  };
  return {
    model_type: "idefics2",
    image_token_id: imageTokenId,
    tie_word_embeddings: tie,
    vision_config,
    text_config,
    raw: resolved,
  };
}
