/** The SigLIP vision tower's settings, with Hugging Face's `vision_config` field names. */
export interface VisionConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_channels: number;
  image_size: number;
  patch_size: number;
  hidden_act: string;
  layer_norm_eps: number;
}

/** A config.json field is missing, has the wrong type, or holds a value this port does not support. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const SUPPORTED_ACTS = ["gelu_pytorch_tanh", "gelu_new", "gelu", "silu", "relu"];

/**
 * transformers' `Idefics2VisionConfig` defaults (v4.45 `configuration_idefics2.py`, a
 * siglip-base-patch16-224-like tower). A config.json written by `save_pretrained` may list only
 * the fields that differ from these (idefics2-8b's `vision_config` gives the SO400M widths, patch
 * 14 and image 980, and omits the rest), so a missing field means this value.
 */
export const IDEFICS2_VISION_DEFAULTS: Readonly<VisionConfig & { attention_dropout: number }> = Object.freeze(
  {
    hidden_size: 768,
    intermediate_size: 3072,
    num_hidden_layers: 12,
    num_attention_heads: 12,
    num_channels: 3,
    image_size: 224,
    patch_size: 32,
    hidden_act: "gelu_pytorch_tanh",
    layer_norm_eps: 1e-6,
    attention_dropout: 0.0,
  },
);

function positiveInt(raw: Record<string, unknown>, key: keyof VisionConfig, where: string): number {
  const v = raw[key] ?? IDEFICS2_VISION_DEFAULTS[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new ConfigError(`${where}.${key}: expected a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Reads the vision settings from an Idefics2 config.json object (its `vision_config`) or from a
 * bare vision config; missing fields take `IDEFICS2_VISION_DEFAULTS`. Every problem names the field.
 */
export function parseVisionConfig(raw: unknown): VisionConfig {
  if (typeof raw !== "object" || raw === null)
    throw new ConfigError(`vision config: expected an object, got ${JSON.stringify(raw)}`);
  const outer = raw as Record<string, unknown>;
  const where = "vision_config" in outer ? "vision_config" : "config";
  const r = ("vision_config" in outer ? outer.vision_config : outer) as Record<string, unknown>;
  if (typeof r !== "object" || r === null)
    throw new ConfigError(`vision_config: expected an object, got ${JSON.stringify(r)}`);
  const cfg: VisionConfig = {
    hidden_size: positiveInt(r, "hidden_size", where),
    intermediate_size: positiveInt(r, "intermediate_size", where),
    num_hidden_layers: positiveInt(r, "num_hidden_layers", where),
    num_attention_heads: positiveInt(r, "num_attention_heads", where),
    num_channels: positiveInt(r, "num_channels", where),
    image_size: positiveInt(r, "image_size", where),
    patch_size: positiveInt(r, "patch_size", where),
    hidden_act: String(r.hidden_act ?? IDEFICS2_VISION_DEFAULTS.hidden_act),
    layer_norm_eps: Number(r.layer_norm_eps ?? IDEFICS2_VISION_DEFAULTS.layer_norm_eps),
  };
  if (!SUPPORTED_ACTS.includes(cfg.hidden_act)) {
    throw new ConfigError(
      `${where}.hidden_act: '${cfg.hidden_act}' is not supported (${SUPPORTED_ACTS.join(", ")})`,
    );
  }
  if (!(cfg.layer_norm_eps > 0) || !Number.isFinite(cfg.layer_norm_eps)) {
    throw new ConfigError(
      `${where}.layer_norm_eps: expected a positive number, got ${JSON.stringify(r.layer_norm_eps)}`,
    );
  }
  if (cfg.hidden_size % cfg.num_attention_heads !== 0) {
    throw new ConfigError(
      `${where}.num_attention_heads: hidden_size ${cfg.hidden_size} is not divisible by ${cfg.num_attention_heads} heads`,
    );
  }
  if (cfg.image_size < cfg.patch_size) {
    throw new ConfigError(
      `${where}.image_size: ${cfg.image_size} is smaller than patch_size ${cfg.patch_size}`,
    );
  }
  if (r.attention_dropout !== undefined && r.attention_dropout !== null && r.attention_dropout !== 0) {
    throw new ConfigError(
      `${where}.attention_dropout: only 0 is supported, got ${JSON.stringify(r.attention_dropout)}`,
    );
  }
  return cfg;
}
