import { fmtShape, noGrad, ShapeError, type Tensor } from "@webvlm/tensor";
import type { MistralConfig } from "./config.js";
import type { KVCache } from "./kv-cache.js";
import type { CausalLMInputs, LayerHooks } from "./mistral.js";
import { checkMask, type HostIntInput, readHostMatrix } from "./positions.js";
import { Prng, processAndChoose, type SamplingOptions } from "./sampling.js";

/** What generation needs from a model: logits for new tokens given a cache (MistralForCausalLM, Idefics2). */
export interface CausalLM {
  readonly config: Pick<MistralConfig, "vocab_size" | "pad_token_id" | "eos_token_id">;
  forward(inputs: CausalLMInputs): Tensor;
  createCache(batch: number, maxLength: number): KVCache;
}

export interface TokenEvent {
  /** 0 for the first generated token. */
  step: number;
  /** This step's token per row (pad for rows that finished earlier). */
  tokens: number[];
  /** Rows finished after this step. */
  finished: boolean[];
}

export type FinishReason = "stop-token" | "stop-string" | "length" | "aborted";

export interface GenerateOptions extends SamplingOptions {
  /** Prompt ids [B, T]: returned at the head of `sequences` and seen by the repetition penalty. */
  inputIds?: HostIntInput;
  /** Prompt embeddings [B, T, hidden] (Idefics2: image features merged); default: embed `inputIds`. */
  inputsEmbeds?: Tensor;
  /** [B, T] 1 = token, 0 = left padding. Default all ones. */
  attentionMask?: HostIntInput;
  maxNewTokens: number;
  /** A row finishes after emitting one of these (kept in its output). Default: the config's eos_token_id. */
  stopTokens?: readonly number[];
  /**
   * A row finishes once the decoded text of its new tokens contains one of these (the paper's
   * evaluation stops on "Question", "User", "<end_of_utterance>"). Needs `decode`.
   */
  stopStrings?: readonly string[];
  /** Token ids → text, for stop strings (e.g. the tokenizer's decode). */
  decode?: (ids: number[]) => string;
  /** Emitted by finished rows. Default: config.pad_token_id, else 0. */
  padTokenId?: number;
  /** Called once per step; returning false stops generation (rows left unfinished report "aborted"). */
  onToken?: (event: TokenEvent) => boolean | undefined;
  layerHooks?: LayerHooks;
  /** Keep the processed scores (HF `output_scores`): one [B × vocab] array per step. */
  outputScores?: boolean;
  /** Keep the raw logits (HF `output_logits`): one [B × vocab] array per step. */
  outputLogits?: boolean;
  /** Reuse a cache (reset here) instead of allocating one of T + maxNewTokens slots. */
  cache?: KVCache;
}

export interface GenerateResult {
  /** Per row: prompt ids (when given) followed by the new tokens. */
  sequences: number[][];
  /** Per row: the generated tokens, pad after a row finished. */
  newTokens: number[][];
  finishReasons: FinishReason[];
  /** Processed scores per step, [B × vocab] row-major, when `outputScores`. */
  scores?: Float32Array[];
  /** Raw logits per step, when `outputLogits`. */
  logits?: Float32Array[];
}

/**
 * Autoregressive generation with a preallocated KV cache: one prefill forward over the prompt,
 * then one token per step; the last position's logits are read back and processed on the host
 * (HF order: repetition penalty, temperature, top-k, top-p; argmax unless `doSample`). Batched
 * rows are left padded; a finished row keeps emitting pad and its mask stays 1, as in HF.
 */
export async function generate(lm: CausalLM, options: GenerateOptions): Promise<GenerateResult> {
  const { maxNewTokens, inputsEmbeds } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw new RangeError(`generate: maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
  }
  if (options.stopStrings?.length && !options.decode) {
    throw new Error("generate: stopStrings need a decode function (ids → text)");
  }
  let B: number;
  let T: number;
  let promptIds: Int32Array | null = null;
  if (inputsEmbeds) {
    if (inputsEmbeds.rank !== 3)
      throw new ShapeError(
        `generate: inputsEmbeds must be [B, T, hidden], got ${fmtShape(inputsEmbeds.shape)}`,
      );
    [B, T] = inputsEmbeds.shape as [number, number];
    if (options.inputIds !== undefined)
      promptIds = readHostMatrix("generate: inputIds", options.inputIds, B, [T]).data;
  } else {
    if (options.inputIds === undefined) throw new Error("generate: pass inputIds or inputsEmbeds");
    const rows = nestedRows(options.inputIds);
    B = rows ?? 1;
    const flatLength = hostLength(options.inputIds);
    T = flatLength / B;
    promptIds = readHostMatrix("generate: inputIds", options.inputIds, B, [T]).data;
  }
  const mask =
    options.attentionMask !== undefined
      ? readHostMatrix("generate: attentionMask", options.attentionMask, B, [T]).data
      : null;
  if (mask) checkMask("generate: attentionMask", mask, T);
  const V = lm.config.vocab_size;
  const eos = lm.config.eos_token_id;
  const stopTokens = new Set(options.stopTokens ?? (eos === null ? [] : Array.isArray(eos) ? eos : [eos]));
  const pad = options.padTokenId ?? lm.config.pad_token_id ?? 0;
  const rng = options.doSample ? new Prng(options.seed ?? 0) : null;

  const history: number[][] = Array.from({ length: B }, (_, b) =>
    promptIds ? Array.from(promptIds.subarray(b * T, (b + 1) * T)) : [],
  );
  const newTokens: number[][] = Array.from({ length: B }, () => []);
  const finishReasons: FinishReason[] = Array.from({ length: B }, () => "length");
  const finished = new Array<boolean>(B).fill(false);
  const scores: Float32Array[] = [];
  const rawLogits: Float32Array[] = [];

  const ownCache = !options.cache;
  const cache = options.cache ?? lm.createCache(B, T + maxNewTokens);
  if (!ownCache) {
    if (cache.batch !== B || cache.maxLength < T + maxNewTokens) {
      throw new ShapeError(
        `generate: cache holds [${cache.batch}, ${cache.maxLength}], need [${B}, ${T + maxNewTokens}]`,
      );
    }
    cache.reset();
  }
  try {
    let step: CausalLMInputs = inputsEmbeds
      ? { inputsEmbeds, attentionMask: mask ?? undefined }
      : { inputIds: { data: promptIds!, shape: [B, T] }, attentionMask: mask ?? undefined };
    for (let s = 0; s < maxNewTokens; s++) {
      const logitsT = noGrad(() =>
        lm.forward({ ...step, cache, layerHooks: options.layerHooks, numLogitsToKeep: 1 }),
      );
      let logits: Float32Array;
      try {
        logits = await logitsT.toFloat32(); // [B, 1, V]
      } finally {
        logitsT.dispose();
      }
      if (logits.length !== B * V)
        throw new ShapeError(`generate: model returned ${logits.length} logits, expected ${B} × ${V}`);
      if (options.outputLogits) rawLogits.push(Float32Array.from(logits));
      const tokens: number[] = [];
      for (let b = 0; b < B; b++) {
        const row = logits.subarray(b * V, (b + 1) * V);
        const token = processAndChoose(row, history[b]!, options, rng);
        tokens.push(finished[b] ? pad : token);
      }
      if (options.outputScores) scores.push(logits);
      for (let b = 0; b < B; b++) {
        const token = tokens[b]!;
        history[b]!.push(token);
        newTokens[b]!.push(token);
        if (finished[b]) continue;
        if (stopTokens.has(token)) {
          finished[b] = true;
          finishReasons[b] = "stop-token";
        } else if (options.stopStrings?.length) {
          const text = options.decode!(newTokens[b]!);
          if (options.stopStrings.some((x) => text.includes(x))) {
            finished[b] = true;
            finishReasons[b] = "stop-string";
          }
        }
      }
      const go = options.onToken?.({ step: s, tokens, finished: [...finished] });
      if (go === false) {
        for (let b = 0; b < B; b++) if (!finished[b]) finishReasons[b] = "aborted";
        break;
      }
      if (finished.every(Boolean)) break;
      step = { inputIds: { data: tokens, shape: [B, 1] } };
    }
  } finally {
    if (ownCache) cache.dispose();
  }
  return {
    sequences: history,
    newTokens,
    finishReasons,
    ...(options.outputScores ? { scores } : {}),
    ...(options.outputLogits ? { logits: rawLogits } : {}),
  };
}

function nestedRows(x: HostIntInput): number | null {
  if (typeof x === "object" && x !== null && "shape" in x && "data" in x)
    return (x.shape as readonly number[])[0] ?? null;
  if (Array.isArray(x) && x.length > 0 && Array.isArray(x[0])) return x.length;
  return null;
}

function hostLength(x: HostIntInput): number {
  if (typeof x === "object" && x !== null && "shape" in x && "data" in x) return x.data.length;
  if (Array.isArray(x) && x.length > 0 && Array.isArray(x[0]))
    return (x as number[][]).reduce((n, r) => n + r.length, 0);
  return (x as ArrayLike<number>).length;
}
