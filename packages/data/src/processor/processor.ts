// Idefics2Processor (transformers' processing_idefics2.py): prompt expansion, tokenisation,
// padding and labels, plus the image processor. Token ids and masks come out as Int32Arrays.
import type { RgbImage } from "../image/decode.js";
import { ImageProcessorConfigError } from "../image/errors.js";
import { type ChatMessage, type ChatTemplate, contentParts, idefics2ChatTemplate } from "./chat-template.js";
import { Idefics2ImageProcessor, type ImageInput, type PreprocessOptions } from "./image-processor.js";
import type { Idefics2ImageProcessorConfig } from "./image-processor-config.js";

/**
 * What the processor needs from a tokenizer. `encode` must add BOS if the model expects it and
 * must map the image tokens (`<image>`, `<fake_token_around_image>`) to their single ids; it may
 * return the ids or an encoding object holding them (`{ ids }`). `@webvlm/tokenizer`'s
 * `Tokenizer` and {@link CharTokenizer} both fit.
 */
export interface TextTokenizer {
  encode(text: string): ArrayLike<number> | { ids: ArrayLike<number> };
  /** Used to find the image and pad token ids when they are not given as options. */
  tokenToId?(token: string): number | undefined | null;
  padTokenId?: number | null;
  /** Renders chat messages with the tokenizer's own template (used unless `chatTemplate` is given). */
  applyChatTemplate?(messages: ChatMessage[], options: { addGenerationPrompt?: boolean }): string;
}

function encodeIds(tokenizer: TextTokenizer, text: string): ArrayLike<number> {
  const out = tokenizer.encode(text);
  return "ids" in out && typeof out.ids === "object" ? out.ids : (out as ArrayLike<number>);
}

/**
 * Which tokens are trained on (`labels` is `input_ids` with the rest set to -100):
 * - `"hf"`: all but `<image>` tokens and padding (the plain Hugging Face convention);
 * - `"text"`: pre-training, all text tokens: also `<fake_token_around_image>` becomes -100;
 * - `"assistant"`: supervised fine-tuning, only assistant turns (chat input only).
 */
export type LabelMode = "none" | "hf" | "text" | "assistant";

/** `"left"` for generation (HF's default for Idefics2), `"right"` for training. */
export type PaddingSide = "left" | "right";

export interface Idefics2ProcessorOptions {
  tokenizer: TextTokenizer;
  /** An image processor or its config (`preprocessor_config.json` fields). */
  imageProcessor?: Idefics2ImageProcessor | Partial<Idefics2ImageProcessorConfig>;
  /** `<image>` tokens per (sub-)image: the connector's output length (perceiver latents), from the model. */
  imageSeqLen: number;
  imageToken?: string;
  fakeImageToken?: string;
  imageTokenId?: number;
  fakeImageTokenId?: number;
  padTokenId?: number;
  /** Renders chat messages; default: the tokenizer's `applyChatTemplate` if it has one, else the Idefics2 template. */
  chatTemplate?: ChatTemplate;
  /** Pixel limit per decoded image (decompression bombs). */
  maxPixels?: number;
}

export interface ProcessOptions extends PreprocessOptions {
  /** One list of images per prompt, in `<image>` order. */
  images?: ImageInput[][];
  /** Default `"left"`. */
  padding?: PaddingSide;
  /** Default `"none"`. */
  labels?: LabelMode;
}

export interface ProcessChatOptions extends ProcessOptions {
  /** Append the template's generation prompt (`Assistant:`). Default false. */
  addGenerationPrompt?: boolean;
}

export interface ProcessorBatch {
  /** `[batch, seqLen]`. */
  inputIds: Int32Array;
  /** `[batch, seqLen]`; 1 = token, 0 = padding. */
  attentionMask: Int32Array;
  /** `[batch, seqLen]`, -100 where no loss is taken; present unless labels is `"none"`. */
  labels?: Int32Array;
  /** `[batch, seqLen]`. */
  shape: [number, number];
  /** `[batch, maxImages, 3, H, W]` float32; present when images were given. */
  pixelValues?: Float32Array;
  /** `[batch, maxImages, H, W]`, 1 = real pixel. */
  pixelAttentionMask?: Uint8Array;
  pixelShape?: [number, number, number, number, number];
  /** Each resized uint8 (sub-)image, with `keepResized`. */
  resized?: RgbImage[][];
  /** The prompts after `<image>` expansion, as given to the tokenizer. */
  prompts: string[];
}

export class ProcessorInputError extends Error {
  override name = "ProcessorInputError";
}

function resolveId(
  name: string,
  given: number | undefined,
  tokenizer: TextTokenizer,
  tokens: string[],
): number | undefined {
  if (given !== undefined) return given;
  for (const t of tokens) {
    const id = tokenizer.tokenToId?.(t);
    if (typeof id === "number") return id;
  }
  if (name === "pad" && typeof tokenizer.padTokenId === "number") return tokenizer.padTokenId;
  return undefined;
}

function commonPrefixLength(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class Idefics2Processor {
  readonly tokenizer: TextTokenizer;
  readonly imageProcessor: Idefics2ImageProcessor;
  readonly imageSeqLen: number;
  readonly imageToken: string;
  readonly fakeImageToken: string;
  readonly imageTokenId: number;
  readonly fakeImageTokenId: number;
  readonly padTokenId: number;
  readonly chatTemplate: ChatTemplate;
  readonly maxPixels: number | undefined;

  constructor(options: Idefics2ProcessorOptions) {
    const { tokenizer } = options;
    if (!tokenizer || typeof tokenizer.encode !== "function") {
      throw new ProcessorInputError("Idefics2Processor: tokenizer must have an encode(text) method");
    }
    if (!(Number.isInteger(options.imageSeqLen) && options.imageSeqLen > 0)) {
      throw new ProcessorInputError(
        `Idefics2Processor: imageSeqLen must be a positive integer (the connector's tokens per image), got ${options.imageSeqLen}`,
      );
    }
    this.tokenizer = tokenizer;
    this.imageProcessor =
      options.imageProcessor instanceof Idefics2ImageProcessor
        ? options.imageProcessor
        : new Idefics2ImageProcessor(options.imageProcessor ?? {});
    this.imageSeqLen = options.imageSeqLen;
    this.imageToken = options.imageToken ?? "<image>";
    this.fakeImageToken = options.fakeImageToken ?? "<fake_token_around_image>";
    const need = (name: string, id: number | undefined, option: string): number => {
      if (id === undefined) {
        throw new ProcessorInputError(
          `Idefics2Processor: cannot find the ${name} token id: the tokenizer has no tokenToId() result for it; pass ${option}`,
        );
      }
      return id;
    };
    this.imageTokenId = need(
      this.imageToken,
      resolveId("image", options.imageTokenId, tokenizer, [this.imageToken]),
      "imageTokenId",
    );
    this.fakeImageTokenId = need(
      this.fakeImageToken,
      resolveId("fake", options.fakeImageTokenId, tokenizer, [this.fakeImageToken]),
      "fakeImageTokenId",
    );
    this.padTokenId = need(
      "pad",
      resolveId("pad", options.padTokenId, tokenizer, ["<pad>", "<unk>"]),
      "padTokenId",
    );
    const own = tokenizer.applyChatTemplate;
    this.chatTemplate =
      options.chatTemplate ??
      (own
        ? (messages, o) => own.call(tokenizer, messages, { addGenerationPrompt: o.addGenerationPrompt })
        : idefics2ChatTemplate);
    this.maxPixels = options.maxPixels;
  }

  /**
   * Each `<image>` becomes `<fake>` + `<image>`×imageSeqLen + `<fake>` (×5 when splitting), then
   * `<fake><fake>` pairs collapse (Python's left-to-right, non-overlapping `str.replace`).
   */
  expandImageTokens(text: string, doImageSplitting = this.imageProcessor.config.do_image_splitting): string {
    const fake = this.fakeImageToken;
    const one = fake + this.imageToken.repeat(this.imageSeqLen) + fake;
    const imageStr = doImageSplitting ? one.repeat(5) : one;
    return text
      .split(this.imageToken)
      .join(imageStr)
      .split(fake + fake)
      .join(fake);
  }

  countImageTokens(text: string): number {
    return text.split(this.imageToken).length - 1;
  }

  /** Prompts with `<image>` placeholders (and their images) → model inputs. */
  async process(text: string | string[], options: ProcessOptions = {}): Promise<ProcessorBatch> {
    const texts = typeof text === "string" ? [text] : text;
    const labels = options.labels ?? "none";
    if (labels === "assistant") {
      throw new ProcessorInputError(
        'labels "assistant" needs chat messages: use processChat(conversations, …)',
      );
    }
    const split = options.doImageSplitting ?? this.imageProcessor.config.do_image_splitting;
    const prompts = texts.map((t) => this.expandImageTokens(t, split));
    const ids = prompts.map((p, i) => this.encodeChecked(p, i, this.countImageTokens(texts[i]), split));
    return this.finish(texts, prompts, ids, null, options);
  }

  /**
   * Chat messages (one conversation, or one per sample) → model inputs, rendered by the chat
   * template. With `labels: "assistant"`, only the assistant turns carry labels.
   */
  async processChat(
    conversations: ChatMessage[] | ChatMessage[][],
    options: ProcessChatOptions = {},
  ): Promise<ProcessorBatch> {
    const convs = (
      conversations.length > 0 && !Array.isArray(conversations[0]) ? [conversations] : conversations
    ) as ChatMessage[][];
    const addGenerationPrompt = options.addGenerationPrompt ?? false;
    const split = options.doImageSplitting ?? this.imageProcessor.config.do_image_splitting;
    const texts = convs.map((c) => this.chatTemplate(c, { addGenerationPrompt }));
    const prompts = texts.map((t) => this.expandImageTokens(t, split));
    const ids = prompts.map((p, i) => {
      const nImages = convs[i].reduce(
        (n, m) => n + contentParts(m).filter((part) => part.type === "image").length,
        0,
      );
      return this.encodeChecked(p, i, nImages, split);
    });
    let supervised: Uint8Array[] | null = null;
    if (options.labels === "assistant") {
      supervised = convs.map((conv, s) => this.assistantMask(conv, ids[s], split));
    }
    return this.finish(texts, prompts, ids, supervised, options);
  }

  // Marks the tokens of each assistant turn: the turn spans from the end of the conversation so far
  // plus the generation prompt to the end of the conversation including the turn. Boundaries are
  // found by encoding those prefixes and comparing token ids, so any tokenizer works, even one
  // whose tokens merge across a boundary (the span then shrinks to the tokens both agree on).
  private assistantMask(conv: ChatMessage[], fullIds: ArrayLike<number>, split: boolean): Uint8Array {
    const mask = new Uint8Array(fullIds.length);
    const encodePrefix = (msgs: ChatMessage[], gen: boolean) =>
      encodeIds(
        this.tokenizer,
        this.expandImageTokens(this.chatTemplate(msgs, { addGenerationPrompt: gen }), split),
      );
    conv.forEach((m, i) => {
      if (m.role !== "assistant") return;
      const start = commonPrefixLength(encodePrefix(conv.slice(0, i), true), fullIds);
      const end = commonPrefixLength(encodePrefix(conv.slice(0, i + 1), false), fullIds);
      if (end > start) mask.fill(1, start, end);
    });
    return mask;
  }

  private encodeChecked(prompt: string, sample: number, nImages: number, split: boolean): ArrayLike<number> {
    const ids = encodeIds(this.tokenizer, prompt);
    let found = 0;
    for (let i = 0; i < ids.length; i++) if (ids[i] === this.imageTokenId) found++;
    const expected = nImages * this.imageSeqLen * (split ? 5 : 1);
    if (found !== expected) {
      throw new ProcessorInputError(
        `sample ${sample}: the tokenizer produced ${found} image tokens (id ${this.imageTokenId}), expected ${expected} ` +
          `(${nImages} ${this.imageToken} × ${this.imageSeqLen}${split ? " × 5 splits" : ""}); ` +
          `does it encode ${this.imageToken} as one special token?`,
      );
    }
    return ids;
  }

  private async finish(
    texts: string[],
    prompts: string[],
    ids: ArrayLike<number>[],
    supervised: Uint8Array[] | null,
    options: ProcessOptions,
  ): Promise<ProcessorBatch> {
    const batch = this.pad(ids, supervised, options.padding ?? "left", options.labels ?? "none");
    const out: ProcessorBatch = { ...batch, prompts };
    if (options.images) {
      const images = options.images;
      if (
        !Array.isArray(images) ||
        images.length !== texts.length ||
        !images.every((x) => Array.isArray(x))
      ) {
        throw new ProcessorInputError(
          `images must be one list per prompt (${texts.length} prompts), got ${Array.isArray(images) ? `${images.length} entries` : typeof images}`,
        );
      }
      const inText = texts.map((t) => this.countImageTokens(t));
      const given = images.map((l) => l.length);
      if (inText.some((n, i) => n !== given[i])) {
        throw new ProcessorInputError(
          `the number of images in the text [${inText.join(", ")}] and images [${given.join(", ")}] should be the same`,
        );
      }
      // Idefics2Processor loads images with PIL convert("RGB"): alpha is dropped, not composited.
      const img = await this.imageProcessor.process(images, {
        ...options,
        alpha: "drop",
        maxPixels: this.maxPixels,
      });
      out.pixelValues = img.pixelValues;
      out.pixelAttentionMask = img.pixelAttentionMask;
      out.pixelShape = img.shape;
      if (img.resized) out.resized = img.resized;
    }
    return out;
  }

  private pad(
    ids: ArrayLike<number>[],
    supervised: Uint8Array[] | null,
    side: PaddingSide,
    mode: LabelMode,
  ): Pick<ProcessorBatch, "inputIds" | "attentionMask" | "labels" | "shape"> {
    if (side !== "left" && side !== "right")
      throw new ProcessorInputError(`padding must be "left" or "right", got ${side}`);
    if (!["none", "hf", "text", "assistant"].includes(mode)) {
      throw new ProcessorInputError(`labels must be "none", "hf", "text" or "assistant", got ${mode}`);
    }
    const b = ids.length;
    const len = Math.max(0, ...ids.map((x) => x.length));
    const inputIds = new Int32Array(b * len).fill(this.padTokenId);
    const attentionMask = new Int32Array(b * len);
    const labels = mode === "none" ? undefined : new Int32Array(b * len).fill(-100);
    for (let s = 0; s < b; s++) {
      const seq = ids[s];
      const start = s * len + (side === "left" ? len - seq.length : 0);
      for (let i = 0; i < seq.length; i++) {
        const id = seq[i];
        inputIds[start + i] = id;
        attentionMask[start + i] = 1;
        if (!labels) continue;
        const isImage = id === this.imageTokenId;
        const isFake = id === this.fakeImageTokenId;
        let keep: boolean;
        if (mode === "hf") keep = !isImage;
        else if (mode === "text") keep = !isImage && !isFake;
        else keep = supervised![s][i] === 1 && !isImage && !isFake;
        if (keep) labels[start + i] = id;
      }
    }
    const out: Pick<ProcessorBatch, "inputIds" | "attentionMask" | "labels" | "shape"> = {
      inputIds,
      attentionMask,
      shape: [b, len],
    };
    if (labels) out.labels = labels;
    return out;
  }
}

/** Builds a processor from a `preprocessor_config.json` file. */
export async function loadIdefics2Processor(
  preprocessorConfigPath: string,
  options: Omit<Idefics2ProcessorOptions, "imageProcessor">,
): Promise<Idefics2Processor> {
  let imageProcessor: Idefics2ImageProcessor;
  try {
    imageProcessor = await Idefics2ImageProcessor.fromFile(preprocessorConfigPath);
  } catch (err) {
    if (err instanceof ImageProcessorConfigError) throw err;
    throw new ImageProcessorConfigError(`${preprocessorConfigPath}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return new Idefics2Processor({ ...options, imageProcessor });
}
