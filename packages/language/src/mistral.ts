import { Embedding, GatedMlp, Linear, type LoadReport, loadWeights, Module, RMSNorm } from "@webvlm/nn";
import {
  attention,
  concat,
  type DType,
  fmtShape,
  matmul,
  noGrad,
  openSafetensors,
  rope,
  type SafetensorsCheckpoint,
  ShapeError,
  softmax,
  Tensor,
  tidy,
  where,
} from "@webvlm/tensor";
import type { MistralConfig } from "./config.js";
import { KVCache } from "./kv-cache.js";
import {
  checkMask,
  type HostIntInput,
  type HostMatrix,
  positionsFromMask,
  readHostMatrix,
} from "./positions.js";

/**
 * Runs blocks owned by other packages between decoder layers (e.g. gated cross-attention to
 * image features) without the decoder knowing what they are. `afterLayer` receives layer
 * `index`'s output [B, T, hidden] and returns the stream the next layer reads. Tensors it creates
 * are released after the layer unless returned; to keep the input, take `hidden.retainHandle()`.
 */
export interface LayerHooks {
  afterLayer(index: number, hidden: Tensor): Tensor;
}

export interface MistralInputs {
  /** Token ids [B, T]: device i32 tensor, {data, shape}, nested rows, or a flat array (one row). */
  inputIds?: Tensor | HostMatrix | readonly (readonly number[])[] | ArrayLike<number>;
  /** Embedded sequence [B, T, hidden] (Idefics2 writes image features into it); replaces inputIds. */
  inputsEmbeds?: Tensor;
  /**
   * 1 = token, 0 = padding, on the host: [B, T], or [B, cached + T] with a cache (HF's
   * convention; only the last T columns are new). Default: all ones.
   */
  attentionMask?: HostIntInput;
  /**
   * Rotary positions [B, T] (host or device i32). Default: as HF `generate()` does,
   * `cumsum(mask) - 1` over every slot seen (padding set to 1): real tokens count from 0 on a
   * left-padded row. Pass `0..T-1` to reproduce an HF forward with `position_ids=None`.
   */
  positionIds?: Tensor | HostIntInput;
  /**
   * Preallocated cache: keys/values of these tokens are appended, attention reads all filled
   * slots. A cached forward runs without autograd (the in-place cache writes are not recorded).
   */
  cache?: KVCache;
  layerHooks?: LayerHooks;
}

/** Per-forward data shared by every layer. */
interface AttentionContext {
  /** i32 [B, T] or [T]. */
  positions: Tensor;
  /** [B, Tk] key mask (0 = padding), or null when no key is padding. */
  keyPaddingMask: Tensor | null;
  cache: KVCache | undefined;
  /** Query rows [0, rows) hold every row that sees no key; `select` [B, 1, rows, 1] marks them. */
  blindRows: { rows: number; select: Tensor } | null;
}

/**
 * Query rows that every mask hides from every key (left padding): for each row, 1 when no key in
 * its causal (and sliding) window is a token. Returns null when there is none.
 */
function findBlindRows(
  mask: Int32Array,
  B: number,
  width: number,
  T: number,
  window: number | null,
): { rows: number; flags: Int32Array } | null {
  const flags = new Int32Array(B * T);
  let rows = 0;
  for (let b = 0; b < B; b++) {
    let lastToken = -1; // latest slot <= pos holding a token
    for (let pos = 0; pos < width; pos++) {
      if (mask[b * width + pos]) lastToken = pos;
      const i = pos - (width - T);
      if (i < 0) continue;
      const blind = lastToken < 0 || (window !== null && pos - lastToken >= window);
      if (blind) {
        flags[b * T + i] = 1;
        rows = Math.max(rows, i + 1);
      }
    }
  }
  return rows ? { rows, flags } : null;
}

export class MistralAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;

  constructor(
    readonly config: MistralConfig,
    readonly layerIdx: number,
  ) {
    super();
    const { hidden_size: h, num_attention_heads: hq, num_key_value_heads: hkv, head_dim: d } = config;
    this.q_proj = new Linear(h, hq * d, { bias: false });
    this.k_proj = new Linear(h, hkv * d, { bias: false });
    this.v_proj = new Linear(h, hkv * d, { bias: false });
    this.o_proj = new Linear(hq * d, h, { bias: false });
  }

  forward(hidden: Tensor, ctx: AttentionContext): Tensor {
    const {
      num_attention_heads: hq,
      num_key_value_heads: hkv,
      head_dim: d,
      rope_theta,
      sliding_window,
    } = this.config;
    const [B, T] = hidden.shape as [number, number, number];
    // [B, T, heads * head_dim] → [B, heads, T, head_dim] as views; rope returns contiguous copies.
    const q = rope(this.q_proj.forward(hidden).reshape([B, T, hq, d]).permute([0, 2, 1, 3]), ctx.positions, {
      theta: rope_theta,
    });
    let k = rope(this.k_proj.forward(hidden).reshape([B, T, hkv, d]).permute([0, 2, 1, 3]), ctx.positions, {
      theta: rope_theta,
    });
    let v = this.v_proj.forward(hidden).reshape([B, T, hkv, d]).permute([0, 2, 1, 3]);
    if (ctx.cache) ({ k, v } = ctx.cache.update(this.layerIdx, k, v)); // [B, hkv, cached + T, head_dim]
    // Grouped-query attention: query head h reads KV head floor(h / (hq / hkv)) inside the kernel.
    let out = attention(q, k, v, {
      scale: 1 / Math.sqrt(d),
      causal: true,
      keyPaddingMask: ctx.keyPaddingMask ?? undefined,
      window: sliding_window ?? 0,
    });
    if (ctx.blindRows) out = this.blindRowsAsHF(out, q, k, v, ctx.blindRows);
    // [B, hq, T, head_dim] → [B, T, hq * head_dim]
    return this.o_proj.forward(out.permute([0, 2, 1, 3]).reshape([B, T, hq * d]));
  }

  /**
   * HF eager adds finfo.min to every score of a query row that sees no key (left padding), so
   * the row attends uniformly to all keys, future ones included. The fused kernel outputs zeros
   * there; this recomputes rows [0, rows) the HF way so padding positions (which the shifted
   * loss reads at the last pad before a row's first token) match HF in value and gradient:
   * softmax(s - detached s) is uniform with the gradient of a softmax at uniform weights.
   */
  private blindRowsAsHF(
    out: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    blind: { rows: number; select: Tensor },
  ): Tensor {
    const { num_attention_heads: hq, num_key_value_heads: hkv, head_dim: d } = this.config;
    const [B, , T] = out.shape as [number, number, number, number];
    const P = blind.rows;
    const g = hq / hkv;
    // [B, hq, P, D] → [B, hkv, g·P, D]: each KV head with its query group, for a batched matmul.
    const qg = q.narrow(2, 0, P).reshape([B, hkv, g * P, d]);
    const scores = matmul(qg, k, { transposeB: true }).mul(1 / Math.sqrt(d)); // [B, hkv, g·P, Tk]
    const frozen = noGrad(() => scores.mul(1));
    const probs = softmax(scores.sub(frozen), -1); // exactly 1/Tk, HF's gradient
    const uniform = matmul(probs, v).reshape([B, hq, P, d]); // [B, hq, P, D]
    const head = where(blind.select, uniform, out.narrow(2, 0, P));
    return P === T ? head : concat([head, out.narrow(2, P, T - P)], 2);
  }
}

export class MistralDecoderLayer extends Module {
  self_attn: MistralAttention;
  mlp: GatedMlp;
  input_layernorm: RMSNorm;
  post_attention_layernorm: RMSNorm;

  constructor(config: MistralConfig, layerIdx: number) {
    super();
    this.self_attn = new MistralAttention(config, layerIdx);
    this.mlp = new GatedMlp(config.hidden_size, config.intermediate_size, config.hidden_act);
    this.input_layernorm = new RMSNorm(config.hidden_size, config.rms_norm_eps);
    this.post_attention_layernorm = new RMSNorm(config.hidden_size, config.rms_norm_eps);
  }

  forward(hidden: Tensor, ctx: AttentionContext): Tensor {
    const h = hidden.add(this.self_attn.forward(this.input_layernorm.forward(hidden), ctx));
    return h.add(this.mlp.forward(this.post_attention_layernorm.forward(h)));
  }
}

function idsShape(ids: NonNullable<MistralInputs["inputIds"]>): {
  ids: Tensor | HostMatrix;
  shape: number[];
} {
  if (ids instanceof Tensor) return { ids, shape: [...ids.shape] };
  if (typeof ids === "object" && "data" in ids && "shape" in ids) return { ids, shape: [...ids.shape] };
  if (Array.isArray(ids) && ids.length > 0 && Array.isArray(ids[0])) {
    const rows = ids as readonly (readonly number[])[];
    return {
      ids: { data: rows.flat(), shape: [rows.length, rows[0]!.length] },
      shape: [rows.length, rows[0]!.length],
    };
  }
  const flat = ids as ArrayLike<number>;
  return { ids: { data: flat, shape: [1, flat.length] }, shape: [1, flat.length] };
}

/** The Mistral decoder stack (HF `MistralModel`; `model.text_model` inside Idefics2). */
export class MistralModel extends Module {
  embed_tokens: Embedding;
  layers: MistralDecoderLayer[];
  norm: RMSNorm;

  constructor(readonly config: MistralConfig) {
    super();
    this.embed_tokens = new Embedding(config.vocab_size, config.hidden_size);
    this.layers = Array.from(
      { length: config.num_hidden_layers },
      (_, i) => new MistralDecoderLayer(config, i),
    );
    this.norm = new RMSNorm(config.hidden_size, config.rms_norm_eps);
  }

  /** Token embeddings [B, T, hidden] of ids [B, T] (host ids are range-checked). */
  embed(inputIds: NonNullable<MistralInputs["inputIds"]>): Tensor {
    const { ids, shape } = idsShape(inputIds);
    if (shape.length !== 2) throw new ShapeError(`mistral: inputIds must be [B, T], got ${fmtShape(shape)}`);
    return this.embed_tokens.forward(ids);
  }

  /** Final-norm hidden states [B, T, hidden]. */
  forward(inputs: MistralInputs): Tensor {
    const { inputIds, inputsEmbeds, cache, layerHooks } = inputs;
    if ((inputIds === undefined) === (inputsEmbeds === undefined)) {
      throw new ShapeError("mistral: pass exactly one of inputIds and inputsEmbeds");
    }
    const H = this.config.hidden_size;
    let B: number;
    let T: number;
    if (inputsEmbeds) {
      if (inputsEmbeds.rank !== 3 || inputsEmbeds.shape[2] !== H) {
        throw new ShapeError(
          `mistral: inputsEmbeds must be [B, T, ${H}], got ${fmtShape(inputsEmbeds.shape)}`,
        );
      }
      [B, T] = inputsEmbeds.shape as [number, number, number];
    } else {
      const { shape } = idsShape(inputIds!);
      if (shape.length !== 2)
        throw new ShapeError(`mistral: inputIds must be [B, T], got ${fmtShape(shape)}`);
      [B, T] = shape as [number, number];
    }
    if (T === 0) throw new ShapeError("mistral: empty sequence (T = 0)");
    if (cache && cache.batch !== B)
      throw new ShapeError(`mistral: cache batch ${cache.batch}, inputs batch ${B}`);
    const past = cache?.length ?? 0;

    // The new tokens' mask [B, T]; a [B, past + T] mask (HF's convention with a cache) is cut.
    let newMask: Int32Array;
    if (inputs.attentionMask !== undefined) {
      const { data, width } = readHostMatrix(
        "mistral: attentionMask",
        inputs.attentionMask,
        B,
        past ? [past + T, T] : [T],
      );
      checkMask("mistral: attentionMask", data, width);
      newMask = width === T ? data : sliceColumns(data, B, width, width - T);
    } else newMask = new Int32Array(B * T).fill(1);

    // The cache is written in place (not recorded), so a cached forward is inference only.
    return layerScope(cache, () => {
      const embeds = inputsEmbeds ?? this.embed(inputIds!);
      let keyPaddingMask: Tensor | null;
      let allMask: Int32Array; // [B, past + T]
      if (cache) {
        keyPaddingMask = cache.begin(T, newMask);
        allMask = cache.hostMaskPrefix(T);
      } else {
        allMask = newMask;
        keyPaddingMask = newMask.includes(0) ? Tensor.from(newMask, [B, T], { dtype: "i32" }) : null;
      }
      let positions: Tensor;
      if (inputs.positionIds instanceof Tensor) {
        const p = inputs.positionIds;
        const ok =
          p.dtype === "i32" &&
          ((p.rank === 2 && (p.shape[0] === B || p.shape[0] === 1) && p.shape[1] === T) ||
            (p.rank === 1 && p.shape[0] === T));
        if (!ok)
          throw new ShapeError(
            `mistral: positionIds must be i32 [${B}, ${T}] or [${T}], got ${p.dtype} ${fmtShape(p.shape)}`,
          );
        positions = p;
      } else if (inputs.positionIds !== undefined) {
        const { data } = readHostMatrix("mistral: positionIds", inputs.positionIds, B, [T]);
        positions = Tensor.from(data, [B, T], { dtype: "i32" });
      } else {
        positions = Tensor.from(positionsFromMask(allMask, B, past + T, T), [B, T], { dtype: "i32" });
      }
      const blind = keyPaddingMask
        ? findBlindRows(allMask, B, past + T, T, this.config.sliding_window)
        : null;
      const blindRows = blind
        ? {
            rows: blind.rows,
            select: Tensor.from(blind.flags, [B, 1, T, 1], { dtype: "i32" }).narrow(2, 0, blind.rows),
          }
        : null;
      const ctx: AttentionContext = { positions, keyPaddingMask, cache, blindRows };

      let hidden = embeds;
      this.layers.forEach((layer, i) => {
        const prev = hidden;
        hidden = tidy(() => {
          const out = layer.forward(prev, ctx);
          return layerHooks ? layerHooks.afterLayer(i, out) : out;
        });
        // The previous residual stream is dead now (backward keeps its own handles): free it.
        if (prev !== embeds && prev !== hidden) prev.dispose();
      });
      cache?.commit(T);
      return this.norm.forward(hidden);
    });
  }
}

/**
 * Runs `fn` in a tidy scope, freeing its temporaries at once; under autograd the tape keeps
 * (by its own handles) what backward reads. A cached forward runs without grad: its in-place
 * cache writes are not recorded.
 */
function layerScope<R extends Tensor>(cache: KVCache | undefined, fn: () => R): R {
  return cache ? noGrad(() => tidy(fn)) : tidy(fn);
}

function sliceColumns(data: Int32Array, rows: number, width: number, from: number): Int32Array {
  const w = width - from;
  const out = new Int32Array(rows * w);
  for (let b = 0; b < rows; b++) out.set(data.subarray(b * width + from, (b + 1) * width), b * w);
  return out;
}

export interface CausalLMInputs extends MistralInputs {
  /** Logits for the last N positions only (generation needs 1); 0 or undefined: every position. */
  numLogitsToKeep?: number;
}

export interface MistralLoadOptions {
  /** Checkpoint prefix of the decoder: "model" (Mistral) or "model.text_model" (Idefics2). Default "model". */
  prefix?: string;
  /** Prefix of the output projection: "lm_head" in both layouts. */
  lmHeadPrefix?: string;
  /** Device dtype of the weights; checkpoints in bf16/f16/f32 are converted. Default f32. */
  dtype?: DType;
}

/**
 * Decoder plus output projection (HF `MistralForCausalLM`). `lm_head` is absent when
 * `tie_word_embeddings` is set: logits then read `embed_tokens.weight`.
 */
export class MistralForCausalLM extends Module {
  model: MistralModel;
  lm_head?: Linear;

  /** `parts` lets a larger model (Idefics2) share its own decoder and head modules. */
  constructor(
    readonly config: MistralConfig,
    parts: { model?: MistralModel; lm_head?: Linear } = {},
  ) {
    super();
    this.model = parts.model ?? new MistralModel(config);
    if (!config.tie_word_embeddings)
      this.lm_head = parts.lm_head ?? new Linear(config.hidden_size, config.vocab_size, { bias: false });
  }

  /** Loads the decoder from `prefix` and the head from `lmHeadPrefix` of a safetensors checkpoint. */
  async load(source: string | SafetensorsCheckpoint, options: MistralLoadOptions = {}): Promise<LoadReport> {
    const ckpt = typeof source === "string" ? await openSafetensors(source) : source;
    try {
      const prefix = options.prefix ?? "model";
      const headPrefix = options.lmHeadPrefix ?? "lm_head";
      const a = await loadWeights(this.model, ckpt, { prefix, dtype: options.dtype });
      if (!this.lm_head) return a;
      const b = await loadWeights(this.lm_head, ckpt, { prefix: headPrefix, dtype: options.dtype });
      return { loaded: a.loaded + b.loaded, bytes: a.bytes + b.bytes };
    } finally {
      if (typeof source === "string") await ckpt.close();
    }
  }

  /** Token embeddings [B, T, hidden]. */
  embed(inputIds: NonNullable<MistralInputs["inputIds"]>): Tensor {
    return this.model.embed(inputIds);
  }

  /** A cache for `batch` rows of up to `maxLength` tokens, in the weights' dtype. */
  createCache(batch: number, maxLength: number): KVCache {
    const w = this.model.embed_tokens.weight;
    return KVCache.forConfig(this.config, batch, maxLength, { dtype: w.loaded ? w.value.dtype : "f32" });
  }

  /** Logits [B, T or numLogitsToKeep, vocab]. */
  forward(inputs: CausalLMInputs): Tensor {
    const keep = inputs.numLogitsToKeep ?? 0;
    if (!Number.isInteger(keep) || keep < 0)
      throw new ShapeError(`mistral: numLogitsToKeep must be a non-negative integer, got ${keep}`);
    return layerScope(inputs.cache, () => {
      const hidden = this.model.forward(inputs);
      const T = hidden.shape[1]!;
      const h = keep > 0 && keep < T ? hidden.narrow(1, T - keep, keep) : hidden; // [B, keep, hidden]
      if (this.lm_head) return this.lm_head.forward(h);
      return matmul(h, this.model.embed_tokens.weight.value, { transposeB: true });
    });
  }
}
