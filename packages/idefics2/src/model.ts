import { type Connector, isLayerConnector, type LayerHook } from "@webvlm/connectors";
import {
  type CausalLMInputs,
  type GenerateOptions,
  type GenerateResult,
  generate,
  type KVCache,
  type LayerHooks,
  MistralForCausalLM,
  MistralModel,
} from "@webvlm/language";
import { Linear, Module } from "@webvlm/nn";
import {
  crossEntropy,
  type DType,
  fmtShape,
  indexSelect,
  matmul,
  noGrad,
  ShapeError,
  scatterRows,
  Tensor,
  tidy,
} from "@webvlm/tensor";
import {
  Idefics2VisionTransformer,
  type PatchGrid,
  prepareVisionInputs,
  visionPositionIds,
} from "@webvlm/vision";
import type { Idefics2Config } from "./config.js";
import { type HostInts, type HostTensor, readInts } from "./host.js";
import { shiftedTargets } from "./loss.js";

/**
 * Debug tap: receives named intermediates with the fixture's names ("vision.embeddings",
 * "vision.layer_<i>.output", "connector.modality_projection", "image_hidden_states",
 * "text.inputs_embeds_merged", "text.layer_<i>.output", "text.final_norm_output", "logits", and the
 * host-derived "patch_attention_mask" / "vision.position_ids" as i32 tensors). The forward disposes
 * them later: take `value.retainHandle()` to keep one.
 */
export type Idefics2Tap = (name: string, value: Tensor) => void;

/** What the processor produces, on the host (`ProcessorBatch` fits through `inputsFromBatch`). */
export interface Idefics2Inputs {
  /** Token ids [B, T]. */
  inputIds: HostTensor | readonly (readonly number[])[];
  /** [B, T], 1 = token, 0 = padding. Default all ones. */
  attentionMask?: HostTensor | readonly (readonly number[])[];
  /** [B, maxImages, C, H, W] (or [N, C, H, W]); all-zero images are padding and are dropped. */
  pixelValues?: HostTensor;
  /** [B, maxImages, H, W], 1 = real pixel. Default: every pixel real. */
  pixelAttentionMask?: HostTensor;
  /**
   * Rotary positions [B, T]. Default: `cumsum(mask) - 1` (padding 1), what HF `generate()` uses;
   * pass 0..T-1 for HF's plain forward with `position_ids=None` (real-token logits agree to ~1e-6).
   */
  positionIds?: HostInts | Tensor;
  /** A KV cache to append to (generation drives this itself). */
  cache?: KVCache;
}

export interface Idefics2TrainingInputs extends Idefics2Inputs {
  /** [B, T] target ids, -100 where no loss is taken (the processor's `labels`). */
  labels: HostTensor | readonly (readonly number[])[];
}

/** Image features of one batch. */
export interface ImageFeatures {
  /** [images, tokensPerImage, text hidden]: the connector's output for the real images. */
  features: Tensor;
  /** [images, patches] i32, 1 = real patch. */
  patchMask: Tensor;
  grid: PatchGrid;
  /** Position of each encoded image in the flattened [batch · maxImages] input. */
  realImageIndices: number[];
  /** maxImages of a 5-D input (1 for 4-D): sample of image k is floor(realImageIndices[k] / maxImages). */
  maxImages: number;
}

export type Idefics2GenerateOptions = Omit<
  GenerateOptions,
  "inputIds" | "inputsEmbeds" | "attentionMask" | "layerHooks"
>;

/** Vision tower + connector + Mistral decoder (HF `Idefics2Model`; weights under `model.*`). */
export class Idefics2Model extends Module {
  vision_model: Idefics2VisionTransformer;
  connector: Connector;
  text_model: MistralModel;

  constructor(
    readonly config: Idefics2Config,
    connector: Connector,
  ) {
    super();
    this.vision_model = new Idefics2VisionTransformer(config.vision_config);
    this.connector = connector;
    this.text_model = new MistralModel(config.text_config);
  }
}

/**
 * Idefics2 for generation and training (HF `Idefics2ForConditionalGeneration`). Parameter paths are
 * the checkpoint's: `model.vision_model.*`, `model.connector.*`, `model.text_model.*`, `lm_head.*`.
 */
export class Idefics2ForConditionalGeneration extends Module {
  model: Idefics2Model;
  lm_head?: Linear;
  /** Debug tap (tests, fixture checks); unset in normal use. */
  tap?: Idefics2Tap;
  /** The decoder and head seen as a causal LM (shares their modules) for `generate`. */
  private readonly _lm: MistralForCausalLM;

  constructor(
    readonly config: Idefics2Config,
    connector: Connector,
  ) {
    super();
    this.model = new Idefics2Model(config, connector);
    const t = config.text_config;
    if (!config.tie_word_embeddings) this.lm_head = new Linear(t.hidden_size, t.vocab_size, { bias: false });
    this._lm = new MistralForCausalLM(t, { model: this.model.text_model, lm_head: this.lm_head });
  }

  get connector(): Connector {
    return this.model.connector;
  }

  /** The decoder plus head as a causal LM (for `@webvlm/language`'s generate, caches, benchmarks). */
  get languageModel(): MistralForCausalLM {
    return this._lm;
  }

  /** Dtype of the weights on the device (activations follow it). */
  get dtype(): DType {
    const w = this.model.text_model.embed_tokens.weight;
    return w.loaded ? w.value.dtype : "f32";
  }

  /** Patch slots of an image that is `height × width` pixels after processing (padding included). */
  patchesFor(height: number, width: number): number {
    const p = this.config.vision_config.patch_size;
    return Math.floor(height / p) * Math.floor(width / p);
  }

  /**
   * `<image>` tokens the processor must write per (sub-)image of a batch padded to
   * `height × width`: the connector's `tokensPerImage`. A connector that feeds language layers
   * puts no token in the text stream (`tokensPerImage` 0); the prompt then keeps one `<image>`
   * marker per image, so the text still says where each image is (and labels skip it), while
   * the image's `mediaTokensPerImage` tokens reach the decoder through the layer hook.
   */
  imageSeqLen(height: number, width: number): number {
    if (isLayerConnector(this.connector)) return 1;
    const n = this.connector.tokensPerImage(this.patchesFor(height, width));
    if (!Number.isInteger(n) || n <= 0) {
      throw new ShapeError(
        `idefics2: the connector gives ${n} text-stream tokens for a ${height}×${width} image; a connector that puts none in the stream must be a LayerConnector`,
      );
    }
    return n;
  }

  /** Pixels → vision tower (real images only) → connector. */
  encodeImages(pixelValues: HostTensor, pixelAttentionMask?: HostTensor): ImageFeatures {
    const { patch_size, image_size } = this.config.vision_config;
    const prepared = prepareVisionInputs(pixelValues, pixelAttentionMask, patch_size);
    const [I] = prepared.shape;
    const { grid } = prepared;
    const P = grid.rows * grid.cols;
    const tap = this.tap;
    if (tap) {
      const mask = Tensor.from(Int32Array.from(grid.data), [I, grid.rows, grid.cols], { dtype: "i32" });
      tap("patch_attention_mask", mask);
      mask.dispose();
      const ids = Tensor.from(visionPositionIds(grid, Math.floor(image_size / patch_size)), [I, P], {
        dtype: "i32",
      });
      tap("vision.position_ids", ids);
      ids.dispose();
    }
    // Pixels in the vision weights' dtype (f16 weights take f16 pixels).
    const pixels = Tensor.from(prepared.pixelValues, prepared.shape, {
      dtype: this.model.vision_model.embeddings.patch_embedding.weight.dtype,
    });
    const patchMask = Tensor.from(Int32Array.from(grid.data), [I, P], { dtype: "i32" });
    const vision = this.model.vision_model;
    const connector = this.connector;
    vision.tap = tap;
    connector.tap = tap;
    try {
      const hidden = vision.forward(pixels, grid); // [I, P, vision hidden]
      const features = connector.forward(hidden, patchMask); // [I, tokens, text hidden]
      hidden.dispose();
      if (tap && !isLayerConnector(connector)) tap("image_hidden_states", features);
      const maxImages = pixelValues.shape.length === 5 ? pixelValues.shape[1]! : 1;
      return { features, patchMask, grid, realImageIndices: prepared.realImageIndices, maxImages };
    } finally {
      pixels.dispose();
      vision.tap = undefined;
      connector.tap = undefined;
    }
  }

  /**
   * Token embeddings with the image features written into the `<image>` slots (in row-major
   * order: images in order, each image's tokens consecutive), plus the layer hook of a connector
   * that feeds language layers. [B, T, hidden].
   */
  embed(inputs: Idefics2Inputs): { embeds: Tensor; hook?: LayerHook } {
    const ids = readInts("input_ids", inputs.inputIds);
    if (ids.shape.length !== 2)
      throw new ShapeError(`idefics2: input_ids must be [batch, seq], got ${fmtShape(ids.shape)}`);
    const [B, T] = ids.shape as [number, number];
    const imageId = this.config.image_token_id;
    const slots: number[] = [];
    for (let i = 0; i < ids.data.length; i++) if (ids.data[i] === imageId) slots.push(i);
    const text = this.model.text_model;
    if (!inputs.pixelValues) {
      if (slots.length > 0 && !isLayerConnector(this.connector)) {
        throw new ShapeError(
          `idefics2: input_ids hold ${slots.length} <image> tokens (id ${imageId}) but no pixel_values were given`,
        );
      }
      const embeds = text.embed({ data: ids.data, shape: [B, T] });
      this.tap?.("text.inputs_embeds_merged", embeds);
      return { embeds };
    }
    let hook: LayerHook | undefined;
    const embeds = tidy(() => {
      const img = this.encodeImages(inputs.pixelValues!, inputs.pixelAttentionMask);
      const tokens = text.embed({ data: ids.data, shape: [B, T] }); // [B, T, hidden]
      const H = tokens.shape[2]!;
      if (isLayerConnector(this.connector)) {
        // One <image> marker per real image (imageSeqLen 1); the features go to the hook.
        const I = img.realImageIndices.length;
        if (slots.length !== I) {
          throw new ShapeError(
            `idefics2: input_ids hold ${slots.length} <image> markers (id ${imageId}) for ${I} real images; ` +
              "a connector that feeds language layers expects one marker per image (imageSeqLen 1)",
          );
        }
        hook = this.layerHook(img, B);
        this.tap?.("text.inputs_embeds_merged", tokens);
        return tokens;
      }
      const [I, perImage] = img.features.shape as [number, number, number];
      if (slots.length !== I * perImage) {
        throw new ShapeError(
          `idefics2: input_ids hold ${slots.length} <image> tokens (id ${imageId}), but the ${I} real images give ` +
            `${I} × ${perImage} = ${I * perImage} features; was the prompt expanded with imageSeqLen ${perImage}?`,
        );
      }
      // embeds[input_ids == image_token_id] = image_hidden_states.reshape(-1, hidden)
      const merged = scatterRows(
        tokens.reshape([B * T, H]),
        slots,
        img.features.reshape([I * perImage, H]),
      ).reshape([B, T, H]);
      this.tap?.("text.inputs_embeds_merged", merged);
      return merged;
    });
    return { embeds, hook };
  }

  // Media for a connector that reads language layers: each sample's images concatenated, [B, M, D].
  private layerHook(img: ImageFeatures, B: number): LayerHook {
    const connector = this.connector;
    if (!isLayerConnector(connector)) throw new Error("internal: layerHook without a layer connector");
    const [I, P, D] = img.features.shape as [number, number, number];
    const perSample: number[][] = Array.from({ length: B }, () => []);
    img.realImageIndices.forEach((src, k) => {
      const b = Math.floor(src / img.maxImages);
      if (b >= B)
        throw new ShapeError(`idefics2: image ${src} belongs to sample ${b}, but the batch has ${B} samples`);
      perSample[b]!.push(k);
    });
    const M = Math.max(1, ...perSample.map((l) => l.length)) * P;
    const rows = new Int32Array(B * M); // row of features.reshape([I·P, D]) per media slot
    const mask = new Int32Array(B * M);
    const patchMask = img.grid.data;
    perSample.forEach((images, b) => {
      images.forEach((k, j) => {
        for (let p = 0; p < P; p++) {
          rows[b * M + j * P + p] = k * P + p;
          mask[b * M + j * P + p] = patchMask[k * P + p]!;
        }
      });
    });
    const media = indexSelect(img.features.reshape([I * P, D]), 0, rows).reshape([B, M, D]);
    const mediaMask = Tensor.from(mask, [B, M], { dtype: "i32" });
    const hook = connector.layerHook(media, mediaMask);
    media.keep();
    mediaMask.keep();
    return {
      afterLayer: (i, h) => hook.afterLayer(i, h),
      dispose: () => {
        hook.dispose?.();
        media.dispose();
        mediaMask.dispose();
      },
    };
  }

  private layerHooks(hook: LayerHook | undefined): LayerHooks | undefined {
    const tap = this.tap;
    if (!hook && !tap) return undefined;
    return {
      afterLayer: (i, h) => {
        const out = hook ? hook.afterLayer(i, h) : h;
        tap?.(`text.layer_${i}.output`, out);
        return out;
      },
    };
  }

  /** Final-norm hidden states → logits (tied to embed_tokens when `tie_word_embeddings`). */
  private head(hidden: Tensor): Tensor {
    if (this.lm_head) return this.lm_head.forward(hidden);
    return matmul(hidden, this.model.text_model.embed_tokens.weight.value, { transposeB: true });
  }

  /** Logits [B, T, vocab]. Differentiable: wrap in `noGrad` for inference. */
  forward(inputs: Idefics2Inputs): Tensor {
    return tidy(() => {
      const { embeds, hook } = this.embed(inputs);
      try {
        const hidden = this.model.text_model.forward({
          inputsEmbeds: embeds,
          attentionMask:
            inputs.attentionMask === undefined ? undefined : readInts("attention_mask", inputs.attentionMask),
          positionIds: positionInput(inputs.positionIds),
          cache: inputs.cache,
          layerHooks: this.layerHooks(hook),
        });
        this.tap?.("text.final_norm_output", hidden);
        const logits = this.head(hidden);
        this.tap?.("logits", logits);
        return logits;
      } finally {
        hook?.dispose?.();
      }
    });
  }

  /**
   * Forward plus the training loss: `logits[:, :-1]` against `labels[:, 1:]`, kept where
   * `attention_mask[:, 1:] != 0`, mean cross-entropy ignoring -100 (HF's rule). `loss.backward()`
   * fills the parameters' gradients.
   */
  forwardWithLoss(inputs: Idefics2TrainingInputs): { logits: Tensor; loss: Tensor } {
    const ids = readInts("input_ids", inputs.inputIds);
    const [B, T] = ids.shape as [number, number];
    const labels = readInts("labels", inputs.labels);
    if (labels.shape[0] !== B || labels.shape[1] !== T) {
      throw new ShapeError(
        `idefics2: labels ${fmtShape(labels.shape)} must match input_ids ${fmtShape(ids.shape)}`,
      );
    }
    const mask = inputs.attentionMask === undefined ? null : readInts("attention_mask", inputs.attentionMask);
    if (mask && (mask.shape[0] !== B || mask.shape[1] !== T)) {
      throw new ShapeError(
        `idefics2: attention_mask ${fmtShape(mask.shape)} must match input_ids ${fmtShape(ids.shape)}`,
      );
    }
    if (T < 2)
      throw new ShapeError(
        `idefics2: a loss needs at least 2 positions, input_ids are ${fmtShape(ids.shape)}`,
      );
    const targets = shiftedTargets(labels.data, mask?.data ?? null, B, T);
    return tidy(() => {
      const logits = this.forward(inputs);
      const V = logits.shape[2]!;
      const shifted = logits
        .narrow(1, 0, T - 1)
        .contiguous()
        .reshape([B * (T - 1), V]); // [B·(T-1), vocab]
      const loss = crossEntropy(shifted, targets, { ignoreIndex: -100, reduction: "mean" });
      return { logits, loss };
    });
  }

  /**
   * Prefill over the prompt (image features merged), then one token per step with a KV cache.
   * Sampling, stop tokens/strings and streaming (`onToken`) are `@webvlm/language`'s options.
   */
  async generate(
    inputs: Omit<Idefics2Inputs, "cache" | "positionIds">,
    options: Idefics2GenerateOptions,
  ): Promise<GenerateResult> {
    const ids = readInts("input_ids", inputs.inputIds);
    const { embeds, hook } = noGrad(() => this.embed(inputs));
    try {
      const mask =
        inputs.attentionMask === undefined ? undefined : readInts("attention_mask", inputs.attentionMask);
      return await generate(this.causalLM(), {
        ...options,
        inputIds: { data: ids.data, shape: ids.shape },
        inputsEmbeds: embeds,
        attentionMask: mask,
        layerHooks: hook,
      });
    } finally {
      embeds.dispose();
      hook?.dispose?.();
    }
  }

  /** A cache for `batch` rows of `maxLength` slots, in the weights' dtype. */
  createCache(batch: number, maxLength: number): KVCache {
    return this._lm.createCache(batch, maxLength);
  }

  // The decoder as `generate` sees it; the tap also sees the text layers during generation.
  private causalLM() {
    const lm = this._lm;
    return {
      config: lm.config,
      createCache: (b: number, n: number) => lm.createCache(b, n),
      forward: (x: CausalLMInputs) => lm.forward(x),
    };
  }
}

function positionInput(
  p: Idefics2Inputs["positionIds"],
): Tensor | { data: Int32Array; shape: number[] } | undefined {
  if (p === undefined || p instanceof Tensor) return p;
  const r = readInts("position_ids", p);
  return { data: r.data, shape: [...r.shape] };
}
