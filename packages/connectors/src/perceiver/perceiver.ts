import { GatedMlp, Linear, Module, Parameter, RMSNorm } from "@webvlm/nn";
import { attention, concat, fmtShape, ones, ShapeError, type Tensor, tidy } from "@webvlm/tensor";
import { act, int, num, section } from "../config-fields.js";
import { type Connector, ConnectorConfigError, type ConnectorSpec, type ConnectorTap } from "../contract.js";

/** Idefics2's connector settings, read from config.json (HF field names where they exist). */
export interface PerceiverConnectorConfig {
  /** vision_config.hidden_size */
  vision_hidden_size: number;
  /** text_config.hidden_size: the perceiver's width and the output width */
  text_hidden_size: number;
  /** text_config.intermediate_size: modality projection's inner width */
  text_intermediate_size: number;
  /** text_config.hidden_act: modality projection's activation */
  text_hidden_act: string;
  /** text_config.rms_norm_eps: the perceiver's RMSNorm eps */
  rms_norm_eps: number;
  /** perceiver_config.* */
  hidden_act: string;
  resampler_n_latents: number;
  resampler_depth: number;
  resampler_n_heads: number;
  resampler_head_dim: number;
  num_key_value_heads: number;
}

/**
 * transformers' `Idefics2PerceiverConfig` defaults (v4.45 `configuration_idefics2.py`). The
 * released idefics2-8b `perceiver_config` omits `hidden_act` and `num_key_value_heads`, and a
 * config without `perceiver_config` gets all of them.
 */
export const PERCEIVER_DEFAULTS = Object.freeze({
  hidden_act: "silu",
  resampler_n_latents: 64,
  resampler_depth: 3,
  resampler_n_heads: 16,
  resampler_head_dim: 96,
  num_key_value_heads: 4,
  attention_dropout: 0.0,
});

/**
 * Reads the connector's settings from a config.json object. `perceiver_config` fields default to
 * `PERCEIVER_DEFAULTS`; the widths, activation and eps come from `text_config` and
 * `vision_config`, which must be complete: a model package passes them resolved by the language
 * and vision parsers (transformers' defaults filled in), as HF builds the perceiver from the
 * resolved `MistralConfig`.
 */
export function parsePerceiverConnectorConfig(raw: unknown): PerceiverConnectorConfig {
  const v = section(raw, "vision_config");
  const t = section(raw, "text_config");
  const p = section(raw, "perceiver_config", true);
  const d = PERCEIVER_DEFAULTS;
  const cfg: PerceiverConnectorConfig = {
    vision_hidden_size: int(v, "vision_config", "hidden_size"),
    text_hidden_size: int(t, "text_config", "hidden_size"),
    text_intermediate_size: int(t, "text_config", "intermediate_size"),
    text_hidden_act: act(t, "text_config", "hidden_act"),
    rms_norm_eps: num(t, "text_config", "rms_norm_eps"),
    hidden_act: act(p, "perceiver_config", "hidden_act", d.hidden_act),
    resampler_n_latents: int(p, "perceiver_config", "resampler_n_latents", d.resampler_n_latents),
    resampler_depth: int(p, "perceiver_config", "resampler_depth", d.resampler_depth),
    resampler_n_heads: int(p, "perceiver_config", "resampler_n_heads", d.resampler_n_heads),
    resampler_head_dim: int(p, "perceiver_config", "resampler_head_dim", d.resampler_head_dim),
    num_key_value_heads: int(p, "perceiver_config", "num_key_value_heads", d.num_key_value_heads),
  };
  if (cfg.resampler_n_heads % cfg.num_key_value_heads !== 0) {
    throw new ConnectorConfigError(
      `perceiver_config.num_key_value_heads: ${cfg.num_key_value_heads} does not divide resampler_n_heads ${cfg.resampler_n_heads}`,
    );
  }
  const dropout = p.attention_dropout ?? d.attention_dropout;
  if (dropout !== 0) {
    throw new ConnectorConfigError(
      `perceiver_config.attention_dropout: only 0 is supported, got ${JSON.stringify(dropout)}`,
    );
  }
  return cfg;
}

/**
 * Latents attend to [context, latents] (context first), grouped-query heads, no biases, no RoPE,
 * no causal mask; scores scaled by 1/sqrt(resampler_head_dim).
 */
export class PerceiverAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;

  constructor(c: PerceiverConnectorConfig) {
    super();
    const D = c.text_hidden_size;
    this.heads = c.resampler_n_heads;
    this.kvHeads = c.num_key_value_heads;
    this.headDim = c.resampler_head_dim;
    this.q_proj = new Linear(D, this.heads * this.headDim, { bias: false });
    this.k_proj = new Linear(D, this.kvHeads * this.headDim, { bias: false });
    this.v_proj = new Linear(D, this.kvHeads * this.headDim, { bias: false });
    this.o_proj = new Linear(this.heads * this.headDim, D, { bias: false });
  }

  /** latents [I, n, D], context [I, P, D], keyMask [I, P + n] → [I, n, D]. */
  forward(latents: Tensor, context: Tensor, keyMask: Tensor): Tensor {
    const [I, n] = latents.shape as [number, number];
    const S = context.shape[1]! + n;
    const kvInput = concat([context, latents], 1); // [I, P + n, D]
    const hd = this.headDim;
    const q = this.q_proj.forward(latents).reshape([I, n, this.heads, hd]).permute([0, 2, 1, 3]); // [I, heads, n, hd]
    const k = this.k_proj.forward(kvInput).reshape([I, S, this.kvHeads, hd]).permute([0, 2, 1, 3]); // [I, kv_heads, P + n, hd]
    const v = this.v_proj.forward(kvInput).reshape([I, S, this.kvHeads, hd]).permute([0, 2, 1, 3]);
    // Query head h reads KV head floor(h / (heads / kv_heads)), the same as repeat_kv.
    const o = attention(q, k, v, { scale: 1 / Math.sqrt(hd), keyPaddingMask: keyMask });
    return this.o_proj.forward(o.permute([0, 2, 1, 3]).reshape([I, n, this.heads * hd])); // [I, n, heads·hd] → [I, n, D]
  }
}

export class PerceiverLayer extends Module {
  input_latents_norm: RMSNorm;
  input_context_norm: RMSNorm;
  self_attn: PerceiverAttention;
  post_attention_layernorm: RMSNorm;
  mlp: GatedMlp;

  constructor(c: PerceiverConnectorConfig) {
    super();
    const D = c.text_hidden_size;
    this.input_latents_norm = new RMSNorm(D, c.rms_norm_eps);
    this.input_context_norm = new RMSNorm(D, c.rms_norm_eps);
    this.self_attn = new PerceiverAttention(c);
    this.post_attention_layernorm = new RMSNorm(D, c.rms_norm_eps);
    this.mlp = new GatedMlp(D, 4 * D, c.hidden_act);
  }

  forward(latents: Tensor, context: Tensor, keyMask: Tensor): Tensor {
    const attn = this.self_attn.forward(
      this.input_latents_norm.forward(latents),
      this.input_context_norm.forward(context),
      keyMask,
    );
    const h = latents.add(attn);
    return h.add(this.mlp.forward(this.post_attention_layernorm.forward(h)));
  }
}

/** A fixed set of learned latents that cross-attends to the image's patches, depth times. */
export class PerceiverResampler extends Module {
  latents: Parameter;
  layers: PerceiverLayer[];
  norm: RMSNorm;
  tap?: ConnectorTap;

  constructor(readonly config: PerceiverConnectorConfig) {
    super();
    this.latents = new Parameter([config.resampler_n_latents, config.text_hidden_size]);
    this.layers = Array.from({ length: config.resampler_depth }, () => new PerceiverLayer(config));
    this.norm = new RMSNorm(config.text_hidden_size, config.rms_norm_eps);
  }

  /** context [I, P, D] + patchMask [I, P] → [I, n_latents, D]. */
  forward(context: Tensor, patchMask: Tensor): Tensor {
    const I = context.shape[0]!;
    const n = this.config.resampler_n_latents;
    // The latents are shared by every image; padded patches are masked as keys, latents never.
    const keyMask = tidy(() => concat([patchMask, ones([I, n], { dtype: patchMask.dtype })], 1)); // [I, P + n]
    let h = this.latents.value.unsqueeze(0).expand([I, n, this.config.text_hidden_size]); // [I, n, D]
    for (const [i, layer] of this.layers.entries()) {
      const prev = h;
      h = tidy(() => layer.forward(prev, context, keyMask));
      prev.dispose();
      this.tap?.(`connector.perceiver.layer_${i}.output`, h);
    }
    keyMask.dispose();
    const out = this.norm.forward(h);
    h.dispose();
    return out;
  }
}

/** Idefics2's connector: SwiGLU modality projection (vision → text width), then the perceiver. */
export class PerceiverConnector extends Module implements Connector {
  modality_projection: GatedMlp;
  perceiver_resampler: PerceiverResampler;

  constructor(readonly config: PerceiverConnectorConfig) {
    super();
    this.modality_projection = new GatedMlp(
      config.vision_hidden_size,
      config.text_intermediate_size,
      config.text_hidden_act,
      config.text_hidden_size,
    );
    this.perceiver_resampler = new PerceiverResampler(config);
  }

  get tap(): ConnectorTap | undefined {
    return this.perceiver_resampler.tap;
  }
  set tap(t: ConnectorTap | undefined) {
    this.perceiver_resampler.tap = t;
  }

  tokensPerImage(_patches: number): number {
    return this.config.resampler_n_latents;
  }

  forward(patches: Tensor, patchMask: Tensor): Tensor {
    const c = this.config;
    if (patches.rank !== 3 || patches.shape[2] !== c.vision_hidden_size) {
      throw new ShapeError(
        `perceiver connector: patches must be [images, patches, ${c.vision_hidden_size}], got ${fmtShape(patches.shape)}`,
      );
    }
    if (
      patchMask.rank !== 2 ||
      patchMask.shape[0] !== patches.shape[0] ||
      patchMask.shape[1] !== patches.shape[1]
    ) {
      throw new ShapeError(
        `perceiver connector: patchMask ${fmtShape(patchMask.shape)} must be [${patches.shape[0]}, ${patches.shape[1]}] for patches ${fmtShape(patches.shape)}`,
      );
    }
    const projected = tidy(() => this.modality_projection.forward(patches)); // [I, P, text hidden]
    this.tap?.("connector.modality_projection", projected);
    const out = this.perceiver_resampler.forward(projected, patchMask);
    projected.dispose();
    return out;
  }
}

/** Idefics2's connector; the type config.json implies when it has no `connector_config`. */
export const perceiverConnector: ConnectorSpec<PerceiverConnectorConfig> = {
  type: "perceiver",
  parseConfig: parsePerceiverConnectorConfig,
  create: (config) => new PerceiverConnector(config),
};
