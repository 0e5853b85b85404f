import { Embedding, LayerNorm, Linear, Mlp, Module, Parameter } from "@webvlm/nn";
import { attention, embedding, fmtShape, matmul, ShapeError, Tensor, tidy } from "@webvlm/tensor";
import type { VisionConfig } from "./config.js";
import { type PatchGrid, patchesPerImage } from "./masks.js";
import { visionPositionIds } from "./position-ids.js";

/**
 * Debug tap: receives named intermediates ("vision.embeddings", "vision.layer_<i>.output",
 * "vision.last_hidden_state"). The tensor is disposed later by the forward; take
 * `t.retainHandle()` to keep it.
 */
export type VisionTap = (name: string, value: Tensor) => void;

/**
 * nn.Conv2d with kernel = stride = patch_size and no padding: non-overlapping patches, so the conv
 * is one matmul of the flattened patches (im2col without overlap) with the [out, in·p·p] kernel.
 */
export class PatchConv2d extends Module {
  weight: Parameter;
  bias: Parameter;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly patchSize: number,
  ) {
    super();
    this.weight = new Parameter([outChannels, inChannels, patchSize, patchSize]); // [out, in, kh, kw]
    this.bias = new Parameter([outChannels]);
  }

  /** x [N, C, H, W] → [N, rows·cols, out]; trailing pixels that do not fill a patch are dropped ("valid"). */
  forward(x: Tensor): Tensor {
    const p = this.patchSize;
    const C = this.inChannels;
    const [N, , H, W] = x.shape as [number, number, number, number];
    const rows = Math.floor(H / p);
    const cols = Math.floor(W / p);
    const cropped = x.narrow(2, 0, rows * p).narrow(3, 0, cols * p);
    const blocks = cropped.reshape([N, C, rows, p, cols, p]); // [N, C, rows, p, cols, p]
    const patches = blocks.permute([0, 2, 4, 1, 3, 5]).reshape([N, rows * cols, C * p * p]); // [N, patches, C·p·p]
    const kernel = this.weight.value.reshape([this.outChannels, C * p * p]); // [out, C·p·p], same order as a patch
    return matmul(patches, kernel, { transposeB: true, bias: this.bias.value });
  }
}

/**
 * Patch conv + position embedding (Idefics2VisionEmbeddings, NaViT-style variable resolution).
 * The conv has kernel = stride = patch_size, so it is one matmul over non-overlapping patches.
 */
export class Idefics2VisionEmbeddings extends Module {
  patch_embedding: PatchConv2d;
  position_embedding: Embedding;

  constructor(readonly config: VisionConfig) {
    super();
    const { hidden_size: D, num_channels: C, patch_size: p, image_size } = config;
    this.patch_embedding = new PatchConv2d(C, D, p);
    const perSide = Math.floor(image_size / p);
    this.position_embedding = new Embedding(perSide * perSide, D);
  }

  get numPatchesPerSide(): number {
    return Math.floor(this.config.image_size / this.config.patch_size);
  }

  /** pixelValues [N, C, H, W] + patch grid → [N, rows·cols, hidden]. */
  forward(pixelValues: Tensor, grid: PatchGrid): Tensor {
    const N = pixelValues.shape[0]!;
    const { rows, cols } = grid;
    const patchEmbeds = this.patch_embedding.forward(pixelValues); // [N, rows·cols, hidden]
    const ids = visionPositionIds(grid, this.numPatchesPerSide);
    // Host ids: range-checked on upload, and the backward scatters without device-side id compares.
    const pos = embedding({ data: ids, shape: [N, rows * cols] }, this.position_embedding.weight.value);
    return patchEmbeds.add(pos);
  }
}

/** SigLIP self-attention: q/k/v/out projections with biases, scores scaled by head_dim^-0.5. */
export class Idefics2VisionAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  out_proj: Linear;
  readonly numHeads: number;
  readonly headDim: number;

  constructor(config: VisionConfig) {
    super();
    const D = config.hidden_size;
    this.numHeads = config.num_attention_heads;
    this.headDim = D / this.numHeads;
    this.q_proj = new Linear(D, D);
    this.k_proj = new Linear(D, D);
    this.v_proj = new Linear(D, D);
    this.out_proj = new Linear(D, D);
  }

  /** x [B, T, D]; keyPaddingMask [B, T] (non-zero = real patch) or undefined when nothing is padded. */
  forward(x: Tensor, keyPaddingMask?: Tensor): Tensor {
    const [B, T, D] = x.shape as [number, number, number];
    const heads = (t: Tensor) => t.reshape([B, T, this.numHeads, this.headDim]).permute([0, 2, 1, 3]); // [B, heads, T, head_dim]
    const q = heads(this.q_proj.forward(x));
    const k = heads(this.k_proj.forward(x));
    const v = heads(this.v_proj.forward(x));
    // The reference adds finfo.min to padded keys; excluding them is the same once softmax underflows.
    const o = attention(q, k, v, { scale: this.headDim ** -0.5, keyPaddingMask });
    const merged = o.permute([0, 2, 1, 3]).reshape([B, T, D]); // [B, T, heads·head_dim]
    return this.out_proj.forward(merged);
  }
}

/** Pre-LayerNorm block: x + attn(ln1(x)), then h + mlp(ln2(h)). */
export class Idefics2EncoderLayer extends Module {
  layer_norm1: LayerNorm;
  self_attn: Idefics2VisionAttention;
  layer_norm2: LayerNorm;
  mlp: Mlp;

  constructor(config: VisionConfig) {
    super();
    this.layer_norm1 = new LayerNorm(config.hidden_size, config.layer_norm_eps);
    this.self_attn = new Idefics2VisionAttention(config);
    this.layer_norm2 = new LayerNorm(config.hidden_size, config.layer_norm_eps);
    this.mlp = new Mlp(config.hidden_size, config.intermediate_size, config.hidden_act);
  }

  forward(x: Tensor, keyPaddingMask?: Tensor): Tensor {
    const h = x.add(this.self_attn.forward(this.layer_norm1.forward(x), keyPaddingMask));
    return h.add(this.mlp.forward(this.layer_norm2.forward(h)));
  }
}

export class Idefics2Encoder extends Module {
  layers: Idefics2EncoderLayer[];
  constructor(config: VisionConfig) {
    super();
    this.layers = Array.from({ length: config.num_hidden_layers }, () => new Idefics2EncoderLayer(config));
  }

  forward(x: Tensor, keyPaddingMask?: Tensor, tap?: VisionTap): Tensor {
    let h = x;
    for (const [i, layer] of this.layers.entries()) {
      // Each layer's temporaries are freed as it ends; under autograd the tape keeps what backward reads.
      const next = tidy(() => layer.forward(h, keyPaddingMask));
      tap?.(`vision.layer_${i}.output`, next);
      if (h !== x) h.dispose();
      h = next;
    }
    return h;
  }
}

/**
 * The SigLIP vision tower as Idefics2 uses it (Idefics2VisionTransformer). Weights load from
 * `model.vision_model.*`. Takes the real (non-padding) images and their patch grid; see
 * `encodeImages` for the whole path from processor output.
 */
export class Idefics2VisionTransformer extends Module {
  embeddings: Idefics2VisionEmbeddings;
  encoder: Idefics2Encoder;
  post_layernorm: LayerNorm;
  /** Debug tap for intermediates (tests, inspection); unset in normal use. */
  tap?: VisionTap;

  constructor(readonly config: VisionConfig) {
    super();
    this.embeddings = new Idefics2VisionEmbeddings(config);
    this.encoder = new Idefics2Encoder(config);
    this.post_layernorm = new LayerNorm(config.hidden_size, config.layer_norm_eps);
  }

  /** pixelValues [N, C, H, W] + patch grid [N, H/p, W/p] → last_hidden_state [N, patches, hidden]. */
  forward(pixelValues: Tensor, grid: PatchGrid): Tensor {
    const tap = this.tap;
    const { patch_size: p, num_channels: C } = this.config;
    const s = pixelValues.shape;
    if (s.length !== 4 || s[1] !== C) {
      throw new ShapeError(`vision: pixel_values must be [images, ${C}, H, W], got ${fmtShape(s)}`);
    }
    const [N, , H, W] = s as [number, number, number, number];
    const rows = Math.floor(H / p);
    const cols = Math.floor(W / p);
    if (grid.images !== N || grid.rows !== rows || grid.cols !== cols) {
      throw new ShapeError(
        `vision: patch grid [${grid.images}, ${grid.rows}, ${grid.cols}] does not match pixel_values ${fmtShape(s)} (patch ${p}: [${N}, ${rows}, ${cols}])`,
      );
    }
    const embeddings = tidy(() => this.embeddings.forward(pixelValues, grid));
    tap?.("vision.embeddings", embeddings);
    // Key padding only when some patch is padded, as the reference omits the mask otherwise.
    const padded = grid.data.some((v) => v === 0);
    const mask = padded
      ? Tensor.from(Int32Array.from(grid.data), [N, patchesPerImage(grid)], { dtype: "i32" })
      : undefined;
    const encoded = this.encoder.forward(embeddings, mask, tap);
    mask?.dispose();
    const out = this.post_layernorm.forward(encoded);
    if (encoded !== embeddings) encoded.dispose();
    embeddings.dispose();
    tap?.("vision.last_hidden_state", out);
    return out;
  }
}
