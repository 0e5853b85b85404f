import { GatedMlp, Linear, Module, Parameter, RMSNorm } from "@webvlm/nn";
import { attention, cast, fmtShape, ShapeError, type Tensor, tidy, where } from "@webvlm/tensor";
import { act, int, num, onlyKeys, section } from "../config-fields.js";
import {
  ConnectorConfigError,
  type ConnectorSpec,
  type ConnectorTap,
  type LayerConnector,
  type LayerHook,
  type LayerHookOptions,
} from "../contract.js";

/**
 * `connector_config: { type: "cross_attention", every?, num_attention_heads?, num_key_value_heads?,
 * head_dim?, intermediate_size?, hidden_act? }`; widths default to the text model's.
 */
export interface CrossAttentionConnectorConfig {
  vision_hidden_size: number;
  text_hidden_size: number;
  /** text_config.num_hidden_layers */
  text_num_layers: number;
  rms_norm_eps: number;
  /** A gated block after every `every`-th decoder layer (after layers every-1, 2·every-1, …). */
  every: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  intermediate_size: number;
  hidden_act: string;
}

export function parseCrossAttentionConnectorConfig(raw: unknown): CrossAttentionConnectorConfig {
  const v = section(raw, "vision_config");
  const t = section(raw, "text_config");
  const c = section(raw, "connector_config", true);
  onlyKeys(c, "connector_config", [
    "type",
    "every",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "hidden_act",
  ]);
  const D = int(t, "text_config", "hidden_size");
  const layers = int(t, "text_config", "num_hidden_layers");
  const heads = int(
    c,
    "connector_config",
    "num_attention_heads",
    int(t, "text_config", "num_attention_heads"),
  );
  const cfg: CrossAttentionConnectorConfig = {
    vision_hidden_size: int(v, "vision_config", "hidden_size"),
    text_hidden_size: D,
    text_num_layers: layers,
    rms_norm_eps: num(t, "text_config", "rms_norm_eps"),
    every: int(c, "connector_config", "every", 4),
    num_attention_heads: heads,
    num_key_value_heads: int(c, "connector_config", "num_key_value_heads", heads),
    head_dim: int(c, "connector_config", "head_dim", Math.floor(D / heads)),
    intermediate_size: int(c, "connector_config", "intermediate_size", 4 * D),
    hidden_act: act(c, "connector_config", "hidden_act", "silu"),
  };
  if (cfg.every > layers) {
    throw new ConnectorConfigError(
      `connector_config.every: ${cfg.every} exceeds text_config.num_hidden_layers ${layers}: no block would run`,
    );
  }
  if (cfg.num_attention_heads % cfg.num_key_value_heads !== 0) {
    throw new ConnectorConfigError(
      `connector_config.num_key_value_heads: ${cfg.num_key_value_heads} does not divide num_attention_heads ${cfg.num_attention_heads}`,
    );
  }
  return cfg;
}

/** Text queries, media keys/values; grouped-query heads, no biases, no positions. */
export class CrossAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;

  constructor(readonly c: CrossAttentionConnectorConfig) {
    super();
    const D = c.text_hidden_size;
    this.q_proj = new Linear(D, c.num_attention_heads * c.head_dim, { bias: false });
    this.k_proj = new Linear(D, c.num_key_value_heads * c.head_dim, { bias: false });
    this.v_proj = new Linear(D, c.num_key_value_heads * c.head_dim, { bias: false });
    this.o_proj = new Linear(c.num_attention_heads * c.head_dim, D, { bias: false });
  }

  /** Media keys and values [B, kv_heads, M, head_dim]; computed once per hook, reused by every call. */
  keysValues(media: Tensor): [Tensor, Tensor] {
    const [B, M] = media.shape as [number, number];
    const { num_key_value_heads: h, head_dim: d } = this.c;
    const k = this.k_proj.forward(media).reshape([B, M, h, d]).permute([0, 2, 1, 3]); // [B, kv_heads, M, hd]
    const v = this.v_proj.forward(media).reshape([B, M, h, d]).permute([0, 2, 1, 3]);
    return [k, v];
  }

  /** x [B, T, D] reads media (k, v) → [B, T, D]. A token that may read no media gets 0. */
  forward(x: Tensor, k: Tensor, v: Tensor, mediaMask: Tensor, mask?: Tensor): Tensor {
    const [B, T] = x.shape as [number, number];
    const { num_attention_heads: h, head_dim: d } = this.c;
    const q = this.q_proj.forward(x).reshape([B, T, h, d]).permute([0, 2, 1, 3]); // [B, heads, T, hd]
    const o = attention(q, k, v, { scale: 1 / Math.sqrt(d), keyPaddingMask: mediaMask, mask });
    return this.o_proj.forward(o.permute([0, 2, 1, 3]).reshape([B, T, h * d])); // [B, T, heads·hd] → [B, T, D]
  }
}

/**
 * Flamingo's gated cross-attention block: h = x + tanh(attn_gate)·xattn(norm(x), media), then
 * h + tanh(ff_gate)·mlp(norm(h)). Gates start at 0, so a fresh block leaves the language model
 * unchanged (Alayrac et al., 2022, §2.2).
 */
export class GatedCrossAttentionBlock extends Module {
  input_layernorm: RMSNorm;
  cross_attn: CrossAttention;
  attn_gate: Parameter;
  post_attention_layernorm: RMSNorm;
  mlp: GatedMlp;
  ff_gate: Parameter;

  constructor(c: CrossAttentionConnectorConfig) {
    super();
    const D = c.text_hidden_size;
    this.input_layernorm = new RMSNorm(D, c.rms_norm_eps);
    this.cross_attn = new CrossAttention(c);
    this.attn_gate = new Parameter([1]);
    this.post_attention_layernorm = new RMSNorm(D, c.rms_norm_eps);
    this.mlp = new GatedMlp(D, c.intermediate_size, c.hidden_act);
    this.ff_gate = new Parameter([1]);
  }

  forward(x: Tensor, k: Tensor, v: Tensor, mediaMask: Tensor, mask?: Tensor): Tensor {
    const attn = this.cross_attn.forward(this.input_layernorm.forward(x), k, v, mediaMask, mask);
    const h = x.add(attn.mul(this.attn_gate.value.tanh()));
    return h.add(this.mlp.forward(this.post_attention_layernorm.forward(h)).mul(this.ff_gate.value.tanh()));
  }
}

/**
 * The cross-attention design the paper compares against (§3.1, Flamingo-style): image features
 * are not placed in the token stream; gated cross-attention blocks between decoder layers read
 * them. `forward` projects each image's patches to the text width (padded patches → 0): those are
 * the media tokens; `layerHook` builds the hook the language model calls after its layers.
 */
export class CrossAttentionConnector extends Module implements LayerConnector {
  media_projection: Linear;
  layers: GatedCrossAttentionBlock[];
  tap?: ConnectorTap;

  constructor(readonly config: CrossAttentionConnectorConfig) {
    super();
    this.media_projection = new Linear(config.vision_hidden_size, config.text_hidden_size);
    const blocks = Math.floor(config.text_num_layers / config.every);
    this.layers = Array.from({ length: blocks }, () => new GatedCrossAttentionBlock(config));
  }

  /** None of this connector's tokens enters the text stream: the blocks read them as media. */
  tokensPerImage(_patches: number): number {
    return 0;
  }

  /** One media token per patch slot (padded slots are zero and masked). */
  mediaTokensPerImage(patches: number): number {
    return patches;
  }

  forward(patches: Tensor, patchMask: Tensor): Tensor {
    const dv = this.config.vision_hidden_size;
    if (patches.rank !== 3 || patches.shape[2] !== dv) {
      throw new ShapeError(
        `cross-attention connector: patches must be [images, patches, ${dv}], got ${fmtShape(patches.shape)}`,
      );
    }
    const [I, P] = patches.shape as [number, number];
    if (patchMask.rank !== 2 || patchMask.shape[0] !== I || patchMask.shape[1] !== P) {
      throw new ShapeError(
        `cross-attention connector: patchMask ${fmtShape(patchMask.shape)} must be [${I}, ${P}]`,
      );
    }
    return tidy(() => {
      const m = cast(patchMask, patches.dtype).reshape([I, P, 1]);
      return where(m, this.media_projection.forward(where(m, patches, 0)), 0); // [I, P, text hidden]
    });
  }

  /** Index of the block that runs after decoder layer `layer`, or -1. */
  blockAfter(layer: number): number {
    if ((layer + 1) % this.config.every !== 0) return -1;
    const j = (layer + 1) / this.config.every - 1;
    return j < this.layers.length ? j : -1;
  }

  layerHook(media: Tensor, mediaMask: Tensor, options: LayerHookOptions = {}): LayerHook {
    const D = this.config.text_hidden_size;
    if (media.rank !== 3 || media.shape[2] !== D) {
      throw new ShapeError(
        `cross-attention hook: media must be [batch, M, ${D}], got ${fmtShape(media.shape)}`,
      );
    }
    if (
      mediaMask.rank !== 2 ||
      mediaMask.shape[0] !== media.shape[0] ||
      mediaMask.shape[1] !== media.shape[1]
    ) {
      throw new ShapeError(
        `cross-attention hook: mediaMask ${fmtShape(mediaMask.shape)} must be [${media.shape[0]}, ${media.shape[1]}]`,
      );
    }
    const kv = new Map<number, [Tensor, Tensor]>();
    return {
      afterLayer: (layer: number, hidden: Tensor): Tensor => {
        const j = this.blockAfter(layer);
        if (j < 0) return hidden;
        const block = this.layers[j]!;
        let pair = kv.get(j);
        if (!pair) {
          // Media keys/values do not change during generation: project them once per block.
          pair = block.cross_attn.keysValues(media);
          for (const t of pair) t.keep();
          kv.set(j, pair);
        }
        const out = block.forward(hidden, pair[0], pair[1], mediaMask, options.mask);
        this.tap?.(`connector.cross_attention.block_${j}.output`, out);
        return out;
      },
      dispose: () => {
        for (const [k, v] of kv.values()) {
          k.dispose();
          v.dispose();
        }
        kv.clear();
      },
    };
  }
}

export const crossAttentionConnector: ConnectorSpec<CrossAttentionConnectorConfig> = {
  type: "cross_attention",
  parseConfig: parseCrossAttentionConnectorConfig,
  create: (config) => new CrossAttentionConnector(config),
  feedsLanguageLayers: true,
};
