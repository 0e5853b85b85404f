/**
 * Mistral text configuration with Hugging Face field names (`MistralConfig`, the `text_config`
 * of an Idefics2 checkpoint). Only fields the decoder reads are kept; unsupported settings fail.
 */
export interface MistralConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  /** Per-head width; configs without it use hidden_size / num_attention_heads. */
  head_dim: number;
  hidden_act: string;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  /** Keys further back than this many slots are masked; null = full causal attention. */
  sliding_window: number | null;
  /** lm_head reuses embed_tokens.weight (no `lm_head.weight` is read). */
  tie_word_embeddings: boolean;
  pad_token_id: number | null;
  bos_token_id: number | null;
  /** One id or several; generation stops on them when asked to. */
  eos_token_id: number | number[] | null;
}

/** A config field is missing, has the wrong type, or asks for something this decoder does not do. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const ACTIVATIONS = ["silu", "gelu", "gelu_pytorch_tanh", "gelu_new", "relu"];

/**
 * transformers' `MistralConfig` defaults (v4.45 `configuration_mistral.py`). A config.json written
 * by `save_pretrained` may list only the fields that differ from these (the released idefics2-8b
 * `text_config` lists 7), so a missing field means this value, not an error. `head_dim` defaults
 * to hidden_size / num_attention_heads; an explicit `num_key_value_heads: null` means
 * num_attention_heads (HF's backward compatibility), a missing one means 8.
 */
export const MISTRAL_DEFAULTS = Object.freeze({
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
  attention_dropout: 0.0,
} as const);

type DefaultedField = keyof typeof MISTRAL_DEFAULTS;

function field(raw: Record<string, unknown>, name: string, fallback?: unknown): unknown {
  const v = raw[name];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    const d = MISTRAL_DEFAULTS[name as DefaultedField];
    if (d !== undefined) return d;
    throw new ConfigError(`mistral config: field '${name}' is missing`);
  }
  return v;
}

function positiveInt(raw: Record<string, unknown>, name: string, fallback?: number): number {
  const v = field(raw, name, fallback);
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new ConfigError(`mistral config: '${name}' must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function positiveNumber(raw: Record<string, unknown>, name: string, fallback?: number): number {
  const v = field(raw, name, fallback);
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) {
    throw new ConfigError(`mistral config: '${name}' must be a positive number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function optionalId(raw: Record<string, unknown>, name: DefaultedField): number | null {
  const v = raw[name] === undefined ? MISTRAL_DEFAULTS[name] : raw[name];
  if (v === null) return null;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new ConfigError(`mistral config: '${name}' must be a token id or null, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Parses a Mistral config object (the contents of config.json, or `config.text_config` of an
 * Idefics2 checkpoint); missing fields take `MISTRAL_DEFAULTS`. Throws `ConfigError` naming the
 * first bad field.
 */
export function parseMistralConfig(raw: unknown): MistralConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`mistral config: expected an object, got ${JSON.stringify(raw)?.slice(0, 80)}`);
  }
  const r = raw as Record<string, unknown>;
  if (r.model_type !== undefined && r.model_type !== "mistral") {
    throw new ConfigError(`mistral config: 'model_type' is '${String(r.model_type)}', expected 'mistral'`);
  }
  if (r.rope_scaling !== undefined && r.rope_scaling !== null) {
    throw new ConfigError(
      `mistral config: 'rope_scaling' ${JSON.stringify(r.rope_scaling)} is not supported (only plain RoPE)`,
    );
  }
  const hidden_size = positiveInt(r, "hidden_size");
  const num_attention_heads = positiveInt(r, "num_attention_heads");
  if (r.head_dim === undefined || r.head_dim === null) {
    if (hidden_size % num_attention_heads !== 0) {
      throw new ConfigError(
        `mistral config: no 'head_dim' and hidden_size ${hidden_size} is not a multiple of num_attention_heads ${num_attention_heads}`,
      );
    }
  }
  const head_dim =
    r.head_dim === undefined || r.head_dim === null
      ? hidden_size / num_attention_heads
      : positiveInt(r, "head_dim");
  const num_key_value_heads =
    r.num_key_value_heads === null ? num_attention_heads : positiveInt(r, "num_key_value_heads");
  if (num_attention_heads % num_key_value_heads !== 0) {
    throw new ConfigError(
      `mistral config: num_attention_heads ${num_attention_heads} is not a multiple of num_key_value_heads ${num_key_value_heads}` +
        (r.num_key_value_heads === undefined ? " (transformers' default when the field is missing)" : ""),
    );
  }
  if (head_dim % 2 !== 0)
    throw new ConfigError(`mistral config: 'head_dim' ${head_dim} must be even for RoPE`);
  const hidden_act = field(r, "hidden_act");
  if (typeof hidden_act !== "string" || !ACTIVATIONS.includes(hidden_act)) {
    throw new ConfigError(
      `mistral config: 'hidden_act' ${JSON.stringify(hidden_act)} is not one of ${ACTIVATIONS.join(", ")}`,
    );
  }
  const sw = field(r, "sliding_window");
  let sliding_window: number | null = null;
  if (sw !== null) {
    if (typeof sw !== "number" || !Number.isInteger(sw) || sw <= 0) {
      throw new ConfigError(
        `mistral config: 'sliding_window' must be a positive integer or null, got ${JSON.stringify(sw)}`,
      );
    }
    sliding_window = sw;
  }
  const tie = field(r, "tie_word_embeddings");
  if (typeof tie !== "boolean") {
    throw new ConfigError(
      `mistral config: 'tie_word_embeddings' must be a boolean, got ${JSON.stringify(tie)}`,
    );
  }
  const dropout = field(r, "attention_dropout");
  if (dropout !== 0) {
    throw new ConfigError(
      `mistral config: 'attention_dropout' ${JSON.stringify(dropout)} is not supported (only 0)`,
    );
  }
  const eosRaw = field(r, "eos_token_id");
  let eos_token_id: number | number[] | null = null;
  if (Array.isArray(eosRaw)) {
    eos_token_id = eosRaw.map((v, i) => {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
        throw new ConfigError(
          `mistral config: 'eos_token_id[${i}]' must be a token id, got ${JSON.stringify(v)}`,
        );
      }
      return v;
    });
  } else eos_token_id = optionalId(r, "eos_token_id");
  return {
    vocab_size: positiveInt(r, "vocab_size"),
    hidden_size,
    intermediate_size: positiveInt(r, "intermediate_size"),
    num_hidden_layers: positiveInt(r, "num_hidden_layers"),
    num_attention_heads,
    num_key_value_heads,
    head_dim,
    hidden_act,
    max_position_embeddings: positiveInt(r, "max_position_embeddings"),
    rms_norm_eps: positiveNumber(r, "rms_norm_eps"),
    rope_theta: positiveNumber(r, "rope_theta"),
    sliding_window,
    tie_word_embeddings: tie,
    pad_token_id: optionalId(r, "pad_token_id"),
    bos_token_id: optionalId(r, "bos_token_id"),
    eos_token_id,
  };
}
