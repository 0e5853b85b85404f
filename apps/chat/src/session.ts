import { access, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { paperConnectors } from "@webvlm/connectors";
import type { ChatContentPart, ChatMessage } from "@webvlm/data";
import {
  checkTokenizerFits,
  createIdefics2,
  type Idefics2Config,
  type Idefics2ForConditionalGeneration,
  type Idefics2InputProcessor,
  inputsFromBatch,
  type LoadedTokenizer,
  loadInputProcessor,
  loadModelTokenizer,
  ModelDirectoryError,
  parseIdefics2Config,
  type WeightDType,
} from "@webvlm/idefics2";
import type { SamplingOptions } from "@webvlm/language";

/** A user-facing problem: printed as one line, no stack trace. */
export class ChatError extends Error {
  override name = "ChatError";
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/**
 * Checks a model directory before the (slow) weight load: names everything that is missing
 * (config.json, weights, preprocessor_config.json and a tokenizer: tokenizer.json, or a fixture
 * manifest.json for the character tokenizer), then parses config.json, loads the tokenizer and
 * checks that it fits the model (its vocabulary within `text_config.vocab_size`, its `<image>`
 * the model's `image_token_id`).
 */
export async function checkModelDir(
  dir: string,
  charTokenizer?: boolean,
): Promise<{ config: Idefics2Config; tokenizer: LoadedTokenizer }> {
  const st = await stat(dir).catch(() => null);
  if (!st) throw new ChatError(`model directory ${dir} does not exist`);
  if (!st.isDirectory()) throw new ChatError(`model path ${dir} is not a directory`);
  const missing: string[] = [];
  if (!(await exists(join(dir, "config.json")))) missing.push("config.json");
  if (
    !(await exists(join(dir, "model.safetensors"))) &&
    !(await exists(join(dir, "model.safetensors.index.json")))
  ) {
    missing.push("model.safetensors (or model.safetensors.index.json)");
  }
  if (!(await exists(join(dir, "preprocessor_config.json")))) missing.push("preprocessor_config.json");
  const hasTokenizer = charTokenizer
    ? await exists(join(dir, "manifest.json"))
    : (await exists(join(dir, "tokenizer.json"))) || (await exists(join(dir, "manifest.json")));
  if (!hasTokenizer) missing.push(charTokenizer ? "manifest.json (for --char-tokenizer)" : "tokenizer.json");
  if (missing.length)
    throw new ChatError(`model directory ${dir} is incomplete: missing ${missing.join(", ")}`);
  const configPath = join(dir, "config.json");
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(configPath, "utf8"));
  } catch (cause) {
    throw new ChatError(`${configPath}: not valid JSON (${(cause as Error).message})`, { cause });
  }
  const config = parseIdefics2Config(raw, configPath);
  const tokenizer = await loadModelTokenizer(dir, charTokenizer === undefined ? {} : { charTokenizer });
  try {
    checkTokenizerFits(
      tokenizer.tokenizer,
      config,
      tokenizer.kind === "hf" ? "tokenizer.json" : "the character tokenizer",
    );
  } catch (cause) {
    throw new ChatError(`model directory ${dir}: ${(cause as Error).message}`, { cause });
  }
  return { config, tokenizer };
}

export interface ChatOptions extends SamplingOptions {
  maxNewTokens: number;
  splitImages?: boolean;
  dtype?: WeightDType;
  charTokenizer?: boolean;
}

export interface TurnStats {
  promptTokens: number;
  newTokens: number;
  /** Seconds from the start of the turn to the first token (processing + vision + prefill). */
  timeToFirstToken: number;
  /** Decode speed after the first token. */
  tokensPerSecond: number;
  finishReason: string;
}

/**
 * A conversation with an Idefics2 model: messages with image parts, rendered by the model's chat
 * template and processed whole each turn (images included).
 */
export class ChatSession {
  private messages: ChatMessage[] = [];
  private images: string[] = [];
  private pending: string[] = [];
  lastPromptTokens = 0;
  totalNewTokens = 0;

  private constructor(
    readonly model: Idefics2ForConditionalGeneration,
    readonly processor: Idefics2InputProcessor,
    readonly tokenizer: LoadedTokenizer,
    readonly options: ChatOptions,
  ) {}

  static async open(dir: string, options: ChatOptions): Promise<ChatSession> {
    const checked = await checkModelDir(dir, options.charTokenizer);
    const model = await createIdefics2({ connectors: paperConnectors }).load(dir, {
      dtype: options.dtype ?? "auto",
    });
    const { processor, tokenizer } = await loadInputProcessor(dir, model, {
      tokenizer: checked.tokenizer,
      ...(options.splitImages === undefined ? {} : { doImageSplitting: options.splitImages }),
    });
    return new ChatSession(model, processor, tokenizer, options);
  }

  /** The context the decoder was trained for. */
  get contextLength(): number {
    return this.model.config.text_config.max_position_embeddings;
  }

  /** Attaches an image to the next user message (checked for readability now). */
  async attach(path: string): Promise<void> {
    const st = await stat(path).catch((e: Error) => {
      throw new ChatError(`cannot read image ${path}: ${e.message.replace(/^[A-Z]+: /, "")}`);
    });
    if (!st.isFile()) throw new ChatError(`cannot read image ${path}: not a file`);
    this.pending.push(path);
  }

  get pendingImages(): readonly string[] {
    return this.pending;
  }

  reset(): void {
    this.messages = [];
    this.images = [];
    this.pending = [];
    this.lastPromptTokens = 0;
    this.totalNewTokens = 0;
  }

  /** Sends one user message (with the attached images) and streams the reply through `write`. */
  async send(text: string, write: (chunk: string) => void): Promise<TurnStats> {
    const t0 = performance.now();
    const content: ChatContentPart[] = [
      ...this.pending.map((): ChatContentPart => ({ type: "image" })),
      { type: "text", text },
    ];
    const messages: ChatMessage[] = [...this.messages, { role: "user", content }];
    const images = [...this.images, ...this.pending];
    const batch = await this.processor.processChat(messages, {
      images: [images],
      addGenerationPrompt: true,
      ...(this.options.splitImages === undefined ? {} : { doImageSplitting: this.options.splitImages }),
    });
    const T = batch.shape[1];
    const { maxNewTokens } = this.options;
    if (T + maxNewTokens > this.contextLength) {
      throw new ChatError(
        `the prompt is ${T} tokens; with --max-new-tokens ${maxNewTokens} that exceeds the model's context of ${this.contextLength} tokens`,
      );
    }
    const tok = this.tokenizer.tokenizer;
    const stopTokens = new Set<number>();
    const eos = this.model.config.text_config.eos_token_id;
    for (const id of eos === null ? [] : Array.isArray(eos) ? eos : [eos]) stopTokens.add(id);
    const eou = tok.tokenToId?.("<end_of_utterance>");
    if (typeof eou === "number") stopTokens.add(eou);
    // HF tokenizers: hide special tokens. The fixtures' character tokenizer shows ids that stand
    // for no character as <id_N>, so a tiny random model's answer is visible at all.
    const skip = this.tokenizer.kind === "hf";
    const generated: number[] = [];
    let shown = "";
    let tFirst = 0;
    const { doSample, temperature, topK, topP, repetitionPenalty, seed } = this.options;
    const result = await this.model.generate(inputsFromBatch(batch), {
      ...{ doSample, temperature, topK, topP, repetitionPenalty, seed },
      maxNewTokens,
      stopTokens: [...stopTokens],
      onToken: (e) => {
        if (e.step === 0) tFirst = performance.now();
        const id = e.tokens[0]!;
        if (stopTokens.has(id)) return;
        generated.push(id);
        const text = tok.decode(generated, { skipSpecialTokens: skip });
        // Byte-fallback pieces decode to U+FFFD until their sequence completes: hold those back.
        const stable = text.endsWith("\uFFFD") ? text.slice(0, text.lastIndexOf("\uFFFD")) : text;
        if (stable.startsWith(shown) && stable.length > shown.length) {
          write(stable.slice(shown.length));
          shown = stable;
        }
      },
    });
    const final = tok.decode(generated, { skipSpecialTokens: skip });
    if (final.startsWith(shown) && final.length > shown.length) write(final.slice(shown.length));
    const tEnd = performance.now();
    this.messages = [...messages, { role: "assistant", content: [{ type: "text", text: final.trim() }] }];
    this.images = images;
    this.pending = [];
    const n = result.newTokens[0]!.length;
    this.lastPromptTokens = T;
    this.totalNewTokens += n;
    return {
      promptTokens: T,
      newTokens: n,
      timeToFirstToken: (tFirst - t0) / 1000,
      tokensPerSecond: n > 1 ? ((n - 1) * 1000) / (tEnd - tFirst) : 0,
      finishReason: result.finishReasons[0]!,
    };
  }

  dispose(): void {
    this.model.dispose();
  }
}

export { ModelDirectoryError };
