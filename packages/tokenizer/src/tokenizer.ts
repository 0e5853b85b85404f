// The tokenizer: added-token split -> per-segment normalization -> BPE -> post-processor on the
// way in; id -> piece -> decoder chain on the way out. Mirrors `tokenizers`' TokenizerImpl.

import { AddedTokenSplitter } from "./added-tokens.js";
import { BpeModel } from "./bpe.js";
import {
  type ChatMessage,
  type ChatTemplateOptions,
  ChatTemplates,
  normalizeMessages,
} from "./chat-template.js";
import { parseTokenizerConfig, type TokenizerConfig } from "./config.js";
import { buildDecoder, type DecodeChain } from "./decoder.js";
import { TokenizerConfigError, TokenizerInputError } from "./errors.js";
import { buildNormalizer, Normalized, type NormalizeStep, toNormalized } from "./normalizer.js";
import {
  parseTokenizerJson,
  type TemplatePiece,
  type TemplateProcessingSpec,
  type TokenizerSpec,
} from "./spec.js";

export interface Encoding {
  ids: number[];
  /** piece strings (`▁Hello`, `<0x0A>`, `<image>`) */
  tokens: string[];
  /** [start, end) of each token in the input string, in UTF-16 code units; [0, 0] for inserted specials and padding */
  offsets: Array<[number, number]>;
  typeIds: number[];
  /** 1 for tokens the post-processor inserted (e.g. `<s>`) and for padding */
  specialTokensMask: number[];
  /** 1 for real tokens, 0 for padding */
  attentionMask: number[];
}

export interface EncodeOptions {
  /** Apply the post-processor's template (the leading `<s>`). Default true. */
  addSpecialTokens?: boolean;
  /** Second sequence, placed by the template's `pair` form. */
  pair?: string;
}

export interface DecodeOptions {
  /** Drop special added tokens (`<s>`, `</s>`, `<unk>`, `<image>`, …). Default false. */
  skipSpecialTokens?: boolean;
  /** transformers' clean-up of spaces before punctuation; default from tokenizer_config.json. */
  cleanUpTokenizationSpaces?: boolean;
}

export interface BatchEncodeOptions {
  /** Default true. */
  addSpecialTokens?: boolean;
  /** true or "longest": pad to the longest sequence; "max_length": pad to `maxLength`. Default false. */
  padding?: boolean | "longest" | "max_length";
  /** Limit for truncation and for `padding: "max_length"`, counting special tokens. */
  maxLength?: number;
  /** Cut sequences longer than `maxLength` (before the post-processor adds its tokens). Default false. */
  truncation?: boolean;
  /** Default: tokenizer_config.json `padding_side`, else "right". */
  paddingSide?: "left" | "right";
  /** Default: tokenizer_config.json `truncation_side`, else "right". */
  truncationSide?: "left" | "right";
  /** Round the padded length up to a multiple of this. */
  padToMultipleOf?: number;
}

export interface BatchEncoding {
  inputIds: number[][];
  attentionMask: number[][];
  encodings: Encoding[];
}

export interface TokenizerFiles {
  /** parsed tokenizer.json */
  tokenizer: unknown;
  /** parsed tokenizer_config.json */
  config?: unknown;
  /** parsed special_tokens_map.json */
  specialTokensMap?: unknown;
  /** chat_template.jinja text; wins over tokenizer_config.json's chat_template */
  chatTemplate?: string;
  /** names used in error messages (default: the bare file names) */
  fileNames?: { tokenizer?: string; config?: string; specialTokensMap?: string };
}

/** One sequence before post-processing: ids and source spans in growable typed arrays. */
class Piece {
  ids = new Int32Array(64);
  starts = new Int32Array(64);
  ends = new Int32Array(64);
  length = 0;

  get capacity(): number {
    return this.ids.length;
  }

  reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.ids.length) return;
    const cap = Math.max(need, this.ids.length * 2);
    for (const key of ["ids", "starts", "ends"] as const) {
      const next = new Int32Array(cap);
      next.set(this[key].subarray(0, this.length));
      this[key] = next;
    }
  }

  push(id: number, start: number, end: number): void {
    this.reserve(1);
    this.ids[this.length] = id;
    this.starts[this.length] = start;
    this.ends[this.length++] = end;
  }

  /** Keep `budget` tokens, dropping from the right or the left. */
  truncate(budget: number, side: "left" | "right"): void {
    if (this.length <= budget) return;
    if (side === "left") {
      const from = this.length - budget;
      this.ids.copyWithin(0, from, this.length);
      this.starts.copyWithin(0, from, this.length);
      this.ends.copyWithin(0, from, this.length);
    }
    this.length = budget;
  }
}

const SPECIAL_KEYS = ["bosToken", "eosToken", "unkToken", "padToken"] as const;

export class Tokenizer {
  readonly config: TokenizerConfig;
  private readonly spec: TokenizerSpec;
  private readonly model: BpeModel;
  private readonly normalize: NormalizeStep | null;
  private readonly decoder: DecodeChain | null;
  private readonly postProcessor: TemplateProcessingSpec | null;
  private readonly splitter: AddedTokenSplitter;
  private readonly addedById = new Map<number, string>();
  private readonly addedByContent = new Map<string, number>();
  /** contents of added tokens marked special (skipped by `skipSpecialTokens`) */
  private readonly specialContents = new Set<string>();
  /** id -> token text: model pieces overlaid with added tokens */
  private readonly idToTokenTable: string[];
  private readonly chat: ChatTemplates;
  // Scratch reused by every encode (the pipeline is synchronous): two normalization buffers
  // and the pieces for sequences A and B. Dropped after an unusually long input.
  private seqA = new Normalized();
  private seqB = new Normalized();
  private pieceA = new Piece();
  private pieceB = new Piece();

  private constructor(files: TokenizerFiles) {
    const names = {
      tokenizer: files.fileNames?.tokenizer ?? "tokenizer.json",
      config: files.fileNames?.config ?? "tokenizer_config.json",
      specialTokensMap: files.fileNames?.specialTokensMap ?? "special_tokens_map.json",
    };
    this.spec = parseTokenizerJson(files.tokenizer, names.tokenizer);
    this.config = parseTokenizerConfig(files.config, files.specialTokensMap, names);
    this.model = new BpeModel(this.spec.model);
    this.normalize = buildNormalizer(this.spec.normalizer);
    this.decoder = this.spec.decoder === null ? null : buildDecoder(this.spec.decoder);
    this.postProcessor = this.spec.postProcessor;

    // Added tokens get the id `tokenizers` would assign: the vocabulary's id when the content is a
    // piece, else the next id after the vocabulary and the added tokens so far. A file whose ids
    // disagree would make tokenizers use other ids than written, so it is refused.
    let nextId = this.model.vocab.size;
    this.spec.addedTokens.forEach((t, i) => {
      const path = `$.added_tokens[${i}]`;
      if (this.addedByContent.has(t.content)) {
        throw new TokenizerConfigError(
          names.tokenizer,
          path,
          `added token ${JSON.stringify(t.content)} is listed twice`,
        );
      }
      const inVocab = this.model.vocab.get(t.content);
      const expected = inVocab ?? nextId;
      if (t.id !== expected) {
        throw new TokenizerConfigError(
          names.tokenizer,
          `${path}.id`,
          `added token ${JSON.stringify(t.content)} has id ${t.id}, but tokenizers would assign ${expected}`,
        );
      }
      if (inVocab === undefined) nextId = Math.max(nextId, t.id) + 1;
      this.addedById.set(t.id, t.content);
      this.addedByContent.set(t.content, t.id);
      if (t.special) this.specialContents.add(t.content);
    });
    this.splitter = new AddedTokenSplitter(this.spec.addedTokens);
    this.idToTokenTable = Array.from(this.model.idToPiece);
    for (const [id, content] of this.addedById) this.idToTokenTable[id] = content;

    for (const [id, { content }] of this.config.addedTokensDecoder) {
      if (this.addedById.get(id) !== content) {
        throw new TokenizerConfigError(
          names.config,
          `$.added_tokens_decoder["${id}"]`,
          `${JSON.stringify(content)} with id ${id} is not an added token of ${names.tokenizer}` +
            ` (there id ${id} is ${JSON.stringify(this.addedById.get(id) ?? this.model.idToPiece[id] ?? null)})`,
        );
      }
    }
    for (const key of SPECIAL_KEYS) {
      const name = this.config[key];
      if (name !== null && this.tokenToId(name) === undefined) {
        throw new TokenizerConfigError(
          names.config,
          `$.${snake(key)}`,
          `${JSON.stringify(name)} is not a token`,
        );
      }
    }
    this.config.additionalSpecialTokens.forEach((name, i) => {
      if (this.tokenToId(name) === undefined) {
        throw new TokenizerConfigError(
          names.specialTokensMap,
          `$.additional_special_tokens[${i}]`,
          `${JSON.stringify(name)} is not a token`,
        );
      }
    });
    this.checkBosEosFlags(names.config);

    const templates = [...this.config.chatTemplates];
    if (files.chatTemplate !== undefined) {
      const i = templates.findIndex((t) => t.name === "default");
      const entry = { name: "default", template: files.chatTemplate };
      if (i >= 0) templates[i] = entry;
      else templates.unshift(entry);
    }
    this.chat = new ChatTemplates(templates);
  }

  /**
   * transformers rebuilds the post-processor from add_bos_token/add_eos_token; this package uses
   * tokenizer.json's. Refuse a config whose flags say otherwise instead of silently disagreeing.
   */
  private checkBosEosFlags(file: string): void {
    const single = this.postProcessor?.single ?? [];
    const specialIds = (pieces: TemplatePiece[]): number[] =>
      pieces.flatMap((p) => (p.kind === "special" ? this.postProcessor!.specialTokens.get(p.id)!.ids : []));
    const firstSeq = single.findIndex((p) => p.kind === "sequence");
    const before = specialIds(single.slice(0, firstSeq));
    const after = specialIds(single.slice(firstSeq + 1));
    const bos = this.config.bosToken === null ? undefined : this.tokenToId(this.config.bosToken);
    const eos = this.config.eosToken === null ? undefined : this.tokenToId(this.config.eosToken);
    const { addBosToken, addEosToken } = this.config;
    if (addBosToken !== null && bos !== undefined && addBosToken !== before.includes(bos)) {
      throw new TokenizerConfigError(
        file,
        "$.add_bos_token",
        `add_bos_token is ${addBosToken} but tokenizer.json's post_processor ${addBosToken ? "does not add" : "adds"} the bos token`,
      );
    }
    if (addEosToken !== null && eos !== undefined && addEosToken !== after.includes(eos)) {
      throw new TokenizerConfigError(
        file,
        "$.add_eos_token",
        `add_eos_token is ${addEosToken} but tokenizer.json's post_processor ${addEosToken ? "does not add" : "adds"} the eos token`,
      );
    }
  }

  /** Load from already parsed files (works anywhere, no file system needed). */
  static fromJSON(files: TokenizerFiles): Tokenizer {
    return new Tokenizer(files);
  }

  /**
   * Load `tokenizer.json` (required), `tokenizer_config.json`, `special_tokens_map.json` and
   * `chat_template.jinja` (optional) from a model directory. Node only.
   */
  static async fromDirectory(dir: string): Promise<Tokenizer> {
    const fs = await import("node:fs/promises");
    const path = await import("node:path");
    const read = async (name: string, required: boolean): Promise<string | undefined> => {
      const file = path.join(dir, name);
      try {
        return await fs.readFile(file, "utf8");
      } catch (e) {
        if (!required && (e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw new TokenizerConfigError(file, "", `cannot read: ${(e as Error).message}`, { cause: e });
      }
    };
    const parse = (name: string, text: string | undefined): unknown => {
      if (text === undefined) return undefined;
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new TokenizerConfigError(path.join(dir, name), "", `not valid JSON: ${(e as Error).message}`, {
          cause: e,
        });
      }
    };
    const [tok, cfg, stm, tpl] = await Promise.all([
      read("tokenizer.json", true),
      read("tokenizer_config.json", false),
      read("special_tokens_map.json", false),
      read("chat_template.jinja", false),
    ]);
    return new Tokenizer({
      tokenizer: parse("tokenizer.json", tok),
      config: parse("tokenizer_config.json", cfg),
      specialTokensMap: parse("special_tokens_map.json", stm),
      ...(tpl === undefined ? {} : { chatTemplate: tpl }),
      fileNames: {
        tokenizer: path.join(dir, "tokenizer.json"),
        config: path.join(dir, "tokenizer_config.json"),
        specialTokensMap: path.join(dir, "special_tokens_map.json"),
      },
    });
  }

  /** Model vocabulary plus added tokens. */
  get vocabSize(): number {
    let n = this.model.vocab.size;
    for (const id of this.addedById.keys()) if (this.model.idToPiece[id] === undefined) n++;
    return n;
  }

  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token) ?? this.model.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return Number.isInteger(id) ? this.idToTokenTable[id] : undefined;
  }

  get bosTokenId(): number | undefined {
    return this.config.bosToken === null ? undefined : this.tokenToId(this.config.bosToken);
  }

  get eosTokenId(): number | undefined {
    return this.config.eosToken === null ? undefined : this.tokenToId(this.config.eosToken);
  }

  get padTokenId(): number | undefined {
    return this.config.padToken === null ? undefined : this.tokenToId(this.config.padToken);
  }

  /** Ids of all added tokens marked special. */
  get specialTokenIds(): number[] {
    return [...this.addedById].filter(([, c]) => this.specialContents.has(c)).map(([id]) => id);
  }

  /** One sequence before post-processing: added tokens split out, each other segment normalized and BPE'd. */
  private encodeSequence(text: string, piece: Piece): Piece {
    piece.length = 0;
    for (const split of this.splitter.split(text)) {
      if (split.id >= 0) {
        piece.push(split.id, split.start, split.end);
        continue;
      }
      let seq = toNormalized(text, split.start, split.end, this.seqA);
      if (this.normalize !== null) seq = this.normalize(seq, this.seqB);
      const out = this.model.tokenize(seq.cps, seq.length);
      const { starts, ends } = seq;
      const { ids: outIds, cpStart, cpEnd, count } = out;
      piece.reserve(count);
      const base = piece.length;
      for (let k = 0; k < count; k++) {
        piece.ids[base + k] = outIds[k]!;
        // A token covers the source spans of its first through last code point.
        piece.starts[base + k] = starts[cpStart[k]!]!;
        piece.ends[base + k] = ends[cpEnd[k]! - 1]!;
      }
      piece.length += count;
    }
    return piece;
  }

  /** Let a one-off long input's scratch go instead of keeping it for the tokenizer's lifetime. */
  private releaseScratch(): void {
    const LIMIT = 1 << 16;
    if (this.seqA.capacity > LIMIT) this.seqA = new Normalized();
    if (this.seqB.capacity > LIMIT) this.seqB = new Normalized();
    if (this.pieceA.capacity > LIMIT) this.pieceA = new Piece();
    if (this.pieceB.capacity > LIMIT) this.pieceB = new Piece();
  }

  /** The post-processor's template, or plain concatenation (type ids 0 and 1) without one. */
  private postProcess(a: Piece, b: Piece | null, addSpecialTokens: boolean): Encoding {
    // Lay out the parts first so every output array is allocated once at its final size.
    type Part =
      | { piece: Piece; typeId: number }
      | { special: { ids: number[]; tokens: string[] }; typeId: number };
    const parts: Part[] = [];
    const pp = this.postProcessor;
    if (pp === null) {
      parts.push({ piece: a, typeId: 0 });
      if (b !== null) parts.push({ piece: b, typeId: 1 });
    } else {
      for (const t of b === null ? pp.single : pp.pair) {
        if (t.kind === "sequence") {
          const seq = t.sequence === "A" ? a : b;
          if (seq !== null) parts.push({ piece: seq, typeId: t.typeId });
        } else if (addSpecialTokens) {
          parts.push({ special: pp.specialTokens.get(t.id)!, typeId: t.typeId });
        }
      }
    }
    let n = 0;
    for (const p of parts) n += "piece" in p ? p.piece.length : p.special.ids.length;
    const ids: number[] = new Array(n);
    const tokens: string[] = new Array(n);
    const offsets: Array<[number, number]> = new Array(n);
    const typeIds: number[] = new Array(n);
    const specialTokensMask: number[] = new Array(n);
    const attentionMask: number[] = new Array(n);
    const idToToken = this.idToTokenTable;
    let k = 0;
    for (const p of parts) {
      if ("piece" in p) {
        const { piece, typeId } = p;
        for (let i = 0; i < piece.length; i++, k++) {
          const id = piece.ids[i]!;
          ids[k] = id;
          tokens[k] = idToToken[id]!;
          offsets[k] = [piece.starts[i]!, piece.ends[i]!];
          typeIds[k] = typeId;
          specialTokensMask[k] = 0;
          attentionMask[k] = 1;
        }
      } else {
        const { special, typeId } = p;
        for (let i = 0; i < special.ids.length; i++, k++) {
          ids[k] = special.ids[i]!;
          tokens[k] = special.tokens[i]!;
          offsets[k] = [0, 0];
          typeIds[k] = typeId;
          specialTokensMask[k] = 1;
          attentionMask[k] = 1;
        }
      }
    }
    return { ids, tokens, offsets, typeIds, specialTokensMask, attentionMask };
  }

  /** Number of tokens the post-processor adds around a single sequence (or a pair). */
  numSpecialTokensToAdd(pair = false): number {
    const pp = this.postProcessor;
    if (pp === null) return 0;
    let n = 0;
    for (const piece of pair ? pp.pair : pp.single) {
      if (piece.kind === "special") n += pp.specialTokens.get(piece.id)!.ids.length;
    }
    return n;
  }

  encode(text: string, options: EncodeOptions = {}): Encoding {
    if (typeof text !== "string")
      throw new TokenizerInputError(`encode: text must be a string, got ${typeof text}`);
    const a = this.encodeSequence(text, this.pieceA);
    const b = options.pair === undefined ? null : this.encodeSequence(options.pair, this.pieceB);
    const enc = this.postProcess(a, b, options.addSpecialTokens ?? true);
    this.releaseScratch();
    return enc;
  }

  /** Piece strings of `text` (with special tokens when `addSpecialTokens`). */
  tokenize(text: string, options: EncodeOptions = {}): string[] {
    return this.encode(text, options).tokens;
  }

  encodeBatch(texts: readonly string[], options: BatchEncodeOptions = {}): BatchEncoding {
    const addSpecialTokens = options.addSpecialTokens ?? true;
    const maxLength = options.maxLength;
    if (maxLength !== undefined && (!Number.isSafeInteger(maxLength) || maxLength <= 0)) {
      throw new TokenizerInputError(`encodeBatch: maxLength must be a positive integer, got ${maxLength}`);
    }
    const multiple = options.padToMultipleOf;
    if (multiple !== undefined && (!Number.isSafeInteger(multiple) || multiple <= 0)) {
      throw new TokenizerInputError(
        `encodeBatch: padToMultipleOf must be a positive integer, got ${multiple}`,
      );
    }
    const truncationSide = options.truncationSide ?? this.config.truncationSide;
    const paddingSide = options.paddingSide ?? this.config.paddingSide;
    let budget = Number.POSITIVE_INFINITY;
    if (options.truncation) {
      const limit = maxLength ?? this.config.modelMaxLength;
      if (limit === undefined || limit === null) {
        throw new TokenizerInputError(
          "encodeBatch: truncation needs maxLength (the config has no model_max_length)",
        );
      }
      const added = addSpecialTokens ? this.numSpecialTokensToAdd(false) : 0;
      if (limit < added) {
        throw new TokenizerInputError(
          `encodeBatch: maxLength ${limit} is smaller than the ${added} special tokens the template adds`,
        );
      }
      budget = limit - added;
    }
    const encodings = texts.map((text, i) => {
      if (typeof text !== "string") throw new TokenizerInputError(`encodeBatch: texts[${i}] is not a string`);
      const seq = this.encodeSequence(text, this.pieceA);
      seq.truncate(budget, truncationSide);
      return this.postProcess(seq, null, addSpecialTokens);
    });
    this.releaseScratch();

    const padding = options.padding ?? false;
    if (padding !== false) {
      let target: number;
      if (padding === "max_length") {
        if (maxLength === undefined)
          throw new TokenizerInputError('encodeBatch: padding "max_length" needs maxLength');
        target = maxLength;
      } else {
        target = encodings.reduce((max, e) => Math.max(max, e.ids.length), 0);
      }
      if (multiple !== undefined) target = Math.ceil(target / multiple) * multiple;
      const padId = this.padTokenId;
      if (padId === undefined) {
        throw new TokenizerInputError("encodeBatch: padding needs a pad token, and the config defines none");
      }
      const padToken = this.idToToken(padId)!;
      for (const enc of encodings) {
        const n = target - enc.ids.length;
        if (n <= 0) continue;
        const fill = <T>(arr: T[], v: () => T): void => {
          const extra = Array.from({ length: n }, v);
          if (paddingSide === "right") arr.push(...extra);
          else arr.unshift(...extra);
        };
        fill(enc.ids, () => padId);
        fill(enc.tokens, () => padToken);
        fill(enc.offsets, (): [number, number] => [0, 0]);
        fill(enc.typeIds, () => 0);
        fill(enc.specialTokensMask, () => 1);
        fill(enc.attentionMask, () => 0);
      }
    }
    return {
      inputIds: encodings.map((e) => e.ids),
      attentionMask: encodings.map((e) => e.attentionMask),
      encodings,
    };
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skip = options.skipSpecialTokens ?? false;
    const tokens: string[] = [];
    ids.forEach((id, i) => {
      const token = Number.isInteger(id) ? this.idToToken(id) : undefined;
      if (token === undefined) {
        throw new TokenizerInputError(
          `decode: ids[${i}] = ${id} is not a token id (vocabulary has ${this.vocabSize})`,
        );
      }
      if (skip && this.specialContents.has(token)) return;
      tokens.push(token);
    });
    let text = this.decoder === null ? tokens.join(" ") : this.decoder(tokens).join("");
    if (options.cleanUpTokenizationSpaces ?? this.config.cleanUpTokenizationSpaces)
      text = cleanUpTokenization(text);
    return text;
  }

  decodeBatch(batch: readonly (readonly number[])[], options: DecodeOptions = {}): string[] {
    return batch.map((ids) => this.decode(ids, options));
  }

  /** Names of the chat templates in tokenizer_config.json ("default" for a single one). */
  get chatTemplateNames(): string[] {
    return this.chat.names;
  }

  /** Render the chat template to a prompt string. */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const msgs = normalizeMessages(messages, options.stringContent ?? "text-part");
    const cfg = this.config;
    return this.chat.render(options.templateName ?? "default", {
      bos_token: cfg.bosToken ?? "",
      eos_token: cfg.eosToken ?? "",
      unk_token: cfg.unkToken ?? "",
      pad_token: cfg.padToken ?? "",
      additional_special_tokens: cfg.additionalSpecialTokens,
      ...options.variables,
      messages: msgs,
      add_generation_prompt: options.addGenerationPrompt ?? false,
    });
  }

  /** Render the chat template and encode it (with the template's `<s>` unless addSpecialTokens is false). */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions & EncodeOptions = {}): Encoding {
    return this.encode(this.applyChatTemplate(messages, options), {
      addSpecialTokens: options.addSpecialTokens ?? true,
    });
  }
}

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** transformers' `clean_up_tokenization`: drop the space before punctuation and English contractions. */
export function cleanUpTokenization(text: string): string {
  return text
    .replaceAll(" .", ".")
    .replaceAll(" ?", "?")
    .replaceAll(" !", "!")
    .replaceAll(" ,", ",")
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}
