import { Rng } from "@webvlm/tensor/testing";
import { describe, expect, it } from "vitest";
import {
  applyRepetitionPenalty,
  applyTemperature,
  applyTopK,
  applyTopP,
  argmax,
  Prng,
  processAndChoose,
  sample,
  softmax,
} from "./sampling.js";

// Independent references: literal translations of the HF processors or their definitions, O(V²).

/** HF RepetitionPenaltyLogitsProcessor: gather at input_ids, penalise, scatter back (in f32). */
function refRepetitionPenalty(scores: Float32Array, inputIds: number[], penalty: number): Float32Array {
  const out = Float32Array.from(scores);
  const gathered = inputIds.map((id) => scores[id]!);
  const pen = gathered.map((s) => Math.fround(s < 0 ? s * penalty : s / penalty));
  inputIds.forEach((id, i) => {
    out[id] = pen[i]!;
  });
  return out;
}

/** Top-k by definition: x stays iff fewer than k values are strictly greater. */
function refTopKKept(x: Float32Array, k: number): boolean[] {
  return Array.from(x, (v) => Array.from(x).filter((u) => u > v).length < k);
}

/**
 * Top-p by definition (distinct values): token i stays iff the probability mass of every token
 * with value <= x_i exceeds 1 - p, or it is the most likely token.
 */
function refTopPKept(x: Float32Array, p: number): boolean[] {
  const probs = softmax(x);
  const max = Math.max(...x);
  return Array.from(x, (v) => {
    let mass = 0;
    x.forEach((u, j) => {
      if (u <= v) mass += probs[j]!;
    });
    return v === max || mass > 1 - p;
  });
}

const kept = (x: Float32Array) => Array.from(x, (v) => v > Number.NEGATIVE_INFINITY);

describe("Prng", () => {
  it("is deterministic per seed and uniform in [0, 1)", () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const xa = Array.from({ length: 1000 }, () => a.next());
    expect(Array.from({ length: 1000 }, () => b.next())).toEqual(xa);
    expect(Array.from({ length: 1000 }, () => c.next())).not.toEqual(xa);
    const r = new Prng(1);
    let sum = 0;
    const bins = new Array(10).fill(0);
    let inRange = true;
    for (let i = 0; i < 100_000; i++) {
      const u = r.next();
      inRange &&= u >= 0 && u < 1;
      sum += u;
      bins[Math.floor(u * 10)]++;
    }
    expect(inRange).toBe(true);
    expect(Math.abs(sum / 100_000 - 0.5)).toBeLessThan(0.005);
    for (const n of bins) expect(Math.abs(n - 10_000)).toBeLessThan(500);
  });
});

describe("logits processors vs references", () => {
  it("argmax takes the first of equal maxima (torch.argmax)", () => {
    expect(argmax([1, 3, 2, 3])).toBe(1);
    expect(argmax([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY])).toBe(0);
  });

  it("repetition penalty matches HF gather/scatter, repeats counted once", () => {
    const rng = new Rng(3);
    for (const penalty of [1.3, 0.7, 2]) {
      const x = rng.normal(100, 2);
      const ids = Array.from(rng.int(40, 0, 100));
      ids.push(ids[0]!, ids[0]!, ids[1]!); // repeats
      const got = Float32Array.from(x);
      applyRepetitionPenalty(got, ids, penalty);
      expect(Array.from(got)).toEqual(Array.from(refRepetitionPenalty(x, ids, penalty)));
    }
    expect(() => applyRepetitionPenalty(new Float32Array(4), [7], 1.2)).toThrow(
      /token id 7 is outside the vocabulary 0..3/,
    );
    expect(() => applyRepetitionPenalty(new Float32Array(4), [1], 0)).toThrow(/repetitionPenalty/);
  });

  it("temperature divides", () => {
    const x = Float32Array.from([1, -2, 4]);
    applyTemperature(x, 0.5);
    expect(Array.from(x)).toEqual([2, -4, 8]);
    expect(() => applyTemperature(x, 0)).toThrow(/greedy/);
  });

  it("top-k keeps exactly the k largest (ties with the k-th kept)", () => {
    const rng = new Rng(5);
    for (const k of [1, 2, 7, 50, 199, 200, 500]) {
      const x = rng.normal(200, 3);
      const got = Float32Array.from(x);
      applyTopK(got, k);
      expect(kept(got)).toEqual(refTopKKept(x, k));
      got.forEach((v, i) => {
        if (v > Number.NEGATIVE_INFINITY) expect(v).toBe(x[i]);
      });
    }
    const ties = Float32Array.from([1, 2, 2, 3]);
    applyTopK(ties, 2);
    expect(kept(ties)).toEqual([false, true, true, true]);
  });

  it("top-p keeps the nucleus as HF defines it", () => {
    const rng = new Rng(9);
    for (const p of [0.05, 0.3, 0.5, 0.9, 0.99]) {
      for (let trial = 0; trial < 5; trial++) {
        const x = rng.normal(120, 1 + trial);
        const got = Float32Array.from(x);
        applyTopP(got, p);
        expect(kept(got)).toEqual(refTopPKept(x, p));
      }
    }
  });

  it("top-k then top-p: the nucleus is taken over the k survivors", () => {
    const rng = new Rng(11);
    const x = rng.normal(80, 2);
    const got = Float32Array.from(x);
    applyTopK(got, 10);
    applyTopP(got, 0.6);
    const afterK = Float32Array.from(x);
    applyTopK(afterK, 10);
    const finite = afterK.map((v) => (v > Number.NEGATIVE_INFINITY ? v : -1e30));
    const ref = refTopPKept(finite, 0.6).map((k, i) => k && afterK[i]! > Number.NEGATIVE_INFINITY);
    expect(kept(got)).toEqual(ref);
  });

  it("sampling draws tokens with their softmax probabilities, deterministic by seed", () => {
    const logits = Float32Array.from([0.1, 2, -1, 1.5, Number.NEGATIVE_INFINITY, 0]);
    const probs = softmax(logits);
    const rng = new Prng(123);
    const counts = new Array(logits.length).fill(0);
    const N = 40_000;
    const first: number[] = [];
    for (let i = 0; i < N; i++) {
      const t = sample(logits, rng);
      counts[t]++;
      if (i < 50) first.push(t);
    }
    expect(counts[4]).toBe(0);
    counts.forEach((c, i) => {
      expect(Math.abs(c / N - probs[i]!)).toBeLessThan(0.01);
    });
    const again = new Prng(123);
    expect(Array.from({ length: 50 }, () => sample(logits, again))).toEqual(first);
  });

  it("processAndChoose applies penalty, temperature, top-k, top-p in HF order", () => {
    const rng = new Rng(17);
    const x = rng.normal(60, 2);
    const prev = [3, 5, 5, 8];
    const got = Float32Array.from(x);
    const token = processAndChoose(
      got,
      prev,
      { doSample: true, repetitionPenalty: 1.5, temperature: 0.7, topK: 12, topP: 0.8 },
      new Prng(9),
    );
    const ref = refRepetitionPenalty(x, prev, 1.5);
    applyTemperature(ref, 0.7);
    applyTopK(ref, 12);
    applyTopP(ref, 0.8);
    expect(Array.from(got)).toEqual(Array.from(ref));
    expect(token).toBe(sample(ref, new Prng(9)));
    expect(ref[token]! > Number.NEGATIVE_INFINITY).toBe(true);
    // Greedy ignores the warpers but not the penalty.
    const g = Float32Array.from(x);
    expect(processAndChoose(g, prev, { repetitionPenalty: 1.5, temperature: 0.1, topK: 1 }, null)).toBe(
      argmax(refRepetitionPenalty(x, prev, 1.5)),
    );
  });
});
