// Logits processing on the host, one row (vocab floats) at a time, with Hugging Face semantics.
// Generation reads back only the last position's logits per step, so this stays off the GPU.

/**
 * Deterministic PRNG (sfc32 seeded through splitmix32): the same seed gives the same draws on
 * every platform. Draws are uniform in [0, 1) with 53 random bits.
 */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`Prng: seed must be a finite number, got ${seed}`);
    let s = Math.floor(seed) >>> 0;
    const mix = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix();
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

/** Index of the largest value; the first one on ties (torch.argmax). NaN never wins. */
export function argmax(logits: ArrayLike<number>): number {
  let best = -1;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > bestValue || (best < 0 && v === bestValue)) {
      best = i;
      bestValue = v;
    }
  }
  if (best < 0) throw new RangeError("argmax: every logit is NaN");
  return best;
}

/**
 * HF `RepetitionPenaltyLogitsProcessor`, in place: every id that occurs in `previous` (prompt
 * and generated tokens; repeats count once) has its logit divided by `penalty` when positive and
 * multiplied by it when negative, so penalty > 1 discourages repeats.
 */
export function applyRepetitionPenalty(
  logits: Float32Array,
  previous: Iterable<number>,
  penalty: number,
): void {
  if (!(penalty > 0)) throw new RangeError(`repetitionPenalty must be a positive number, got ${penalty}`);
  if (penalty === 1) return;
  const seen = new Set<number>();
  for (const id of previous) {
    if (seen.has(id)) continue;
    seen.add(id);
    if (!Number.isInteger(id) || id < 0 || id >= logits.length) {
      throw new RangeError(
        `repetition penalty: token id ${id} is outside the vocabulary 0..${logits.length - 1}`,
      );
    }
    const s = logits[id]!;
    logits[id] = s < 0 ? s * penalty : s / penalty;
  }
}

/** HF `TemperatureLogitsWarper`, in place: logits / temperature. */
export function applyTemperature(logits: Float32Array, temperature: number): void {
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    throw new RangeError(
      `temperature must be a positive finite number, got ${temperature} (use greedy decoding for 0)`,
    );
  }
  if (temperature === 1) return;
  for (let i = 0; i < logits.length; i++) logits[i] = logits[i]! / temperature;
}

/**
 * HF `TopKLogitsWarper`, in place: logits below the k-th largest become -Infinity (ties with the
 * k-th value stay, so more than k may remain). k <= 0 or k >= vocab: no-op.
 */
export function applyTopK(logits: Float32Array, k: number, minTokensToKeep = 1): void {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`topK must be a non-negative integer, got ${k}`);
  if (k === 0) return;
  const keep = Math.min(Math.max(k, minTokensToKeep), logits.length);
  if (keep >= logits.length) return;
  const sorted = Float32Array.from(logits).sort(); // ascending; NaN sorts last
  let nan = 0;
  while (nan < sorted.length && Number.isNaN(sorted[sorted.length - 1 - nan]!)) nan++;
  const threshold = sorted[sorted.length - nan - keep]!;
  for (let i = 0; i < logits.length; i++) if (logits[i]! < threshold) logits[i] = Number.NEGATIVE_INFINITY;
}

/**
 * HF `TopPLogitsWarper` (nucleus), in place: sort ascending, and drop every token whose
 * cumulative probability (from the least likely up, itself included) is <= 1 - p; the
 * `minTokensToKeep` most likely tokens always stay. p >= 1: no-op.
 */
export function applyTopP(logits: Float32Array, p: number, minTokensToKeep = 1): void {
  if (!(p > 0 && p <= 1)) throw new RangeError(`topP must be in (0, 1], got ${p}`);
  if (p === 1) return;
  // Tokens already at -Infinity have probability 0 and sit at the front of the order: removed anyway.
  const idx: number[] = [];
  for (let i = 0; i < logits.length; i++) if (logits[i]! > Number.NEGATIVE_INFINITY) idx.push(i);
  idx.sort((x, y) => logits[x]! - logits[y]! || x - y);
  const probs = softmax(Float32Array.from(idx, (i) => logits[i]!));
  let cum = 0;
  const cut = 1 - p;
  const last = idx.length - minTokensToKeep;
  for (let r = 0; r < idx.length; r++) {
    cum += probs[r]!;
    if (r < last && cum <= cut) logits[idx[r]!] = Number.NEGATIVE_INFINITY;
  }
}

/** Softmax in f64 (max subtracted first); -Infinity entries get probability 0. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  const out = new Float64Array(logits.length);
  if (max === Number.NEGATIVE_INFINITY)
    throw new RangeError("softmax: every logit is -Infinity (filters removed all tokens)");
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp(logits[i]! - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / sum;
  return out;
}

/** Draws one index from softmax(logits) with `rng` (inverse CDF over the ids in order). */
export function sample(logits: ArrayLike<number>, rng: Prng): number {
  const probs = softmax(logits);
  const u = rng.next();
  let cum = 0;
  let lastPositive = -1;
  for (let i = 0; i < probs.length; i++) {
    const q = probs[i]!;
    if (q <= 0) continue;
    cum += q;
    lastPositive = i;
    if (u < cum) return i;
  }
  return lastPositive; // u fell in the rounding gap above the final sum
}

export interface SamplingOptions {
  /** Sample instead of taking the argmax. Default false (greedy; temperature/topK/topP ignored, as in HF). */
  doSample?: boolean;
  temperature?: number;
  /** Keep the k most likely tokens; 0 = off (HF's generation default is 50; ours is off). */
  topK?: number;
  /** Nucleus sampling mass; 1 = off. */
  topP?: number;
  /** HF repetition penalty (> 1 discourages repeats); 1 = off. */
  repetitionPenalty?: number;
  /** PRNG seed for sampling. Default 0. */
  seed?: number;
}

/**
 * One step of HF logits processing for one row, in place: repetition penalty, then (sampling
 * only) temperature, top-k, top-p, in HF's order. Returns the chosen token.
 */
export function processAndChoose(
  logits: Float32Array,
  previous: readonly number[],
  options: SamplingOptions,
  rng: Prng | null,
): number {
  applyRepetitionPenalty(logits, previous, options.repetitionPenalty ?? 1);
  if (!options.doSample) return argmax(logits);
  applyTemperature(logits, options.temperature ?? 1);
  applyTopK(logits, options.topK ?? 0);
  applyTopP(logits, options.topP ?? 1);
  if (!rng) throw new Error("processAndChoose: sampling needs a Prng");
  return sample(logits, rng);
}
