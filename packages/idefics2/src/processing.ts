import {
  type ChatMessage,
  type ChatTemplate,
  type Idefics2ImageProcessor,
  Idefics2Processor,
  type ImageBatch,
  type ImageInput,
  idefics2ChatTemplate,
  type LabelMode,
  type PaddingSide,
  type ProcessorBatch,
  ProcessorInputError,
  type TextTokenizer,
} from "@webvlm/data";
import type { Idefics2Inputs } from "./model.js";

/** What the input processor needs from the model: the image token id, vocabulary and tokens per image. */
export interface ImageTokenSource {
  readonly config: {
    image_token_id: number;
    text_config: { pad_token_id: number | null; vocab_size: number };
  };
  /** `<image>` tokens per (sub-)image for a batch padded to height × width (the connector's count). */
  imageSeqLen(height: number, width: number): number;
}

/** A tokenizer that can say how many ids it produces (`@webvlm/tokenizer`'s `Tokenizer` can). */
export type SizedTokenizer = TextTokenizer & { readonly vocabSize?: number };

export interface InputProcessorOptions {
  tokenizer: SizedTokenizer;
  imageProcessor: Idefics2ImageProcessor;
  /** Default: the Idefics2 template. */
  chatTemplate?: ChatTemplate;
  fakeImageTokenId?: number;
  padTokenId?: number;
  maxPixels?: number;
}

export interface ProcessInputsOptions {
  /** One list of images per prompt, in `<image>` order (paths, bytes or decoded RGB). */
  images?: ImageInput[][];
  /** Overrides the preprocessor config's `do_image_splitting`. */
  doImageSplitting?: boolean;
  /** Default "left" (generation). */
  padding?: PaddingSide;
  /** Default "none". */
  labels?: LabelMode;
  /** Keep each resized uint8 (sub-)image (debugging, fixture checks). */
  keepResized?: boolean;
  /** Chat input only: append the template's `Assistant:`. */
  addGenerationPrompt?: boolean;
}

/** A tokenizer produces ids the model has no embedding for, or disagrees with it on `<image>`. */
export class TokenizerMismatchError extends Error {
  override name = "TokenizerMismatchError";
}

/**
 * Checks that `tokenizer` fits the model `config` before any prompt is encoded: its vocabulary
 * (model vocabulary plus added tokens) must fit `text_config.vocab_size` (an id past it has no
 * embedding row), and its `<image>` must be `image_token_id` (the slots the connector fills).
 * A tokenizer that does not report its size is checked on `<image>` only.
 */
export function checkTokenizerFits(
  tokenizer: SizedTokenizer,
  config: ImageTokenSource["config"],
  what = "the tokenizer",
): void {
  const modelVocab = config.text_config.vocab_size;
  const size = tokenizer.vocabSize;
  if (typeof size === "number" && size > modelVocab) {
    throw new TokenizerMismatchError(
      `${what} has a vocabulary of ${size} tokens (ids up to ${size - 1}), which exceeds the model's ` +
        `text_config.vocab_size ${modelVocab}: ids from ${modelVocab} on have no embedding; is it this model's tokenizer?`,
    );
  }
  const image = tokenizer.tokenToId?.("<image>");
  if (typeof image === "number" && image !== config.image_token_id) {
    throw new TokenizerMismatchError(
      `${what} encodes <image> as id ${image}, but the model's image_token_id is ${config.image_token_id}`,
    );
  }
}

/**
 * `Idefics2Processor` with the `<image>` expansion taken from the model's connector: images are
 * processed first, so a connector whose token count depends on the patch grid (an MLP per patch)
 * gets the padded batch's grid; the perceiver always answers its latent count.
 */
export class Idefics2InputProcessor {
  readonly tokenizer: TextTokenizer;
  readonly imageProcessor: Idefics2ImageProcessor;
  readonly chatTemplate: ChatTemplate;
  private readonly fakeImageTokenId: number | undefined;
  private readonly padTokenId: number;

  constructor(
    readonly model: ImageTokenSource,
    readonly options: InputProcessorOptions,
  ) {
    checkTokenizerFits(options.tokenizer, model.config);
    this.tokenizer = options.tokenizer;
    this.imageProcessor = options.imageProcessor;
    this.chatTemplate = options.chatTemplate ?? idefics2ChatTemplate;
    this.fakeImageTokenId = options.fakeImageTokenId;
    const fromTokenizer =
      this.tokenizer.padTokenId ??
      this.tokenizer.tokenToId?.("<pad>") ??
      this.tokenizer.tokenToId?.("<unk>") ??
      undefined;
    this.padTokenId = options.padTokenId ?? fromTokenizer ?? model.config.text_config.pad_token_id ?? 0;
  }

  private processorFor(imageSeqLen: number): Idefics2Processor {
    return new Idefics2Processor({
      tokenizer: this.tokenizer,
      imageProcessor: this.imageProcessor,
      imageSeqLen,
      imageTokenId: this.model.config.image_token_id,
      ...(this.fakeImageTokenId === undefined ? {} : { fakeImageTokenId: this.fakeImageTokenId }),
      padTokenId: this.padTokenId,
      chatTemplate: this.chatTemplate,
      ...(this.options.maxPixels === undefined ? {} : { maxPixels: this.options.maxPixels }),
    });
  }

  private async images(options: ProcessInputsOptions, counts: number[]): Promise<ImageBatch | null> {
    const images = options.images;
    const given = images?.map((l) => l.length) ?? counts.map(() => 0);
    if (images && (images.length !== counts.length || !images.every(Array.isArray))) {
      throw new ProcessorInputError(
        `images must be one list per prompt (${counts.length} prompts), got ${images.length} entries`,
      );
    }
    if (counts.some((n, i) => n !== given[i])) {
      throw new ProcessorInputError(
        `the number of <image> in the text [${counts.join(", ")}] and images [${given.join(", ")}] should be the same`,
      );
    }
    if (!images || given.every((n) => n === 0)) return null;
    // Idefics2Processor loads images with PIL convert("RGB"): alpha is dropped, not composited.
    return this.imageProcessor.process(images, {
      alpha: "drop",
      ...(options.doImageSplitting === undefined ? {} : { doImageSplitting: options.doImageSplitting }),
      keepResized: options.keepResized ?? false,
      ...(this.options.maxPixels === undefined ? {} : { maxPixels: this.options.maxPixels }),
    });
  }

  private seqLen(img: ImageBatch | null): number {
    return img ? this.model.imageSeqLen(img.shape[3], img.shape[4]) : 1;
  }

  private static attach(batch: ProcessorBatch, img: ImageBatch | null): ProcessorBatch {
    if (!img) return batch;
    return {
      ...batch,
      pixelValues: img.pixelValues,
      pixelAttentionMask: img.pixelAttentionMask,
      pixelShape: img.shape,
      ...(img.resized ? { resized: img.resized } : {}),
    };
  }

  /** Prompts with `<image>` placeholders and their images → token ids, masks, pixels. */
  async process(text: string | string[], options: ProcessInputsOptions = {}): Promise<ProcessorBatch> {
    const texts = typeof text === "string" ? [text] : text;
    const counts = texts.map((t) => t.split("<image>").length - 1);
    const img = await this.images(options, counts);
    const batch = await this.processorFor(this.seqLen(img)).process(texts, {
      padding: options.padding ?? "left",
      labels: options.labels ?? "none",
      ...(options.doImageSplitting === undefined ? {} : { doImageSplitting: options.doImageSplitting }),
    });
    return Idefics2InputProcessor.attach(batch, img);
  }

  /** Chat messages (image parts in order) and their images → model inputs, via the chat template. */
  async processChat(
    conversations: ChatMessage[] | ChatMessage[][],
    options: ProcessInputsOptions = {},
  ): Promise<ProcessorBatch> {
    const convs = (
      conversations.length > 0 && !Array.isArray(conversations[0]) ? [conversations] : conversations
    ) as ChatMessage[][];
    const counts = convs.map((c) =>
      c.reduce(
        (n, m) =>
          n + (typeof m.content === "string" ? 0 : m.content.filter((p) => p.type === "image").length),
        0,
      ),
    );
    const img = await this.images(options, counts);
    const batch = await this.processorFor(this.seqLen(img)).processChat(convs, {
      padding: options.padding ?? "left",
      labels: options.labels ?? "none",
      addGenerationPrompt: options.addGenerationPrompt ?? false,
      ...(options.doImageSplitting === undefined ? {} : { doImageSplitting: options.doImageSplitting }),
    });
    return Idefics2InputProcessor.attach(batch, img);
  }
}

/** Processor output → model inputs (host arrays with their shapes). */
export function inputsFromBatch(
  batch: ProcessorBatch,
): Idefics2Inputs & { labels?: { data: Int32Array; shape: number[] } } {
  const shape = [...batch.shape];
  const out: Idefics2Inputs & { labels?: { data: Int32Array; shape: number[] } } = {
    inputIds: { data: batch.inputIds, shape },
    attentionMask: { data: batch.attentionMask, shape },
  };
  if (batch.labels) out.labels = { data: batch.labels, shape };
  if (batch.pixelValues && batch.pixelShape && batch.pixelAttentionMask) {
    const [B, I, , H, W] = batch.pixelShape;
    out.pixelValues = { data: batch.pixelValues, shape: [...batch.pixelShape] };
    out.pixelAttentionMask = { data: batch.pixelAttentionMask, shape: [B, I, H, W] };
  }
  return out;
}
