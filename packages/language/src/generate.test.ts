import { concat, getDevice, Tensor, tidy } from "@webvlm/tensor";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generate, type TokenEvent } from "./generate.js";
import type { MistralForCausalLM } from "./mistral.js";
import { applyRepetitionPenalty, argmax } from "./sampling.js";
import { CASES, Case, diffs, loadTinyLm } from "./test-fixtures.js";

let lm: MistralForCausalLM;
const V = 1000;

beforeAll(async () => {
  await getDevice();
  lm = await loadTinyLm();
});

afterAll(() => {
  lm?.dispose();
  console.log(`generation vs HF:\n${diffs.map(([n, d]) => `  ${n}: ${d.toExponential(2)}`).join("\n")}`);
});

/** The fixture's toy tokenizer, decoding: printable ASCII at 3 + (c - 32), specials by name. */
function decode(ids: number[]): string {
  const special: Record<number, string> = {
    1: "<s>",
    2: "</s>",
    997: "<fake_token_around_image>",
    998: "<image>",
    999: "<end_of_utterance>",
  };
  return ids
    .map((id) => special[id] ?? (id >= 3 && id < 3 + 95 ? String.fromCharCode(id - 3 + 32) : ""))
    .join("");
}

async function prompt(name: (typeof CASES)[number]) {
  const c = await Case.open(name);
  const [B, L, H] = c.shape("text.inputs_embeds_merged") as [number, number, number];
  return {
    c,
    B,
    L,
    embeds: Tensor.from(c.f32("text.inputs_embeds_merged"), [B, L, H]),
    inputIds: { data: c.i32("input_ids"), shape: [B, L] },
    attentionMask: { data: c.i32("attention_mask"), shape: [B, L] },
  };
}

describe("greedy generation vs HF generate()", () => {
  for (const name of CASES) {
    it(`${name}: 12 new tokens, sequences exact, scores within 1e-4`, async () => {
      const p = await prompt(name);
      const out = await generate(lm, {
        inputsEmbeds: p.embeds,
        inputIds: p.inputIds,
        attentionMask: p.attentionMask,
        maxNewTokens: 12,
        stopTokens: [],
        outputScores: true,
      });
      const seq = p.c.i32("generate.sequences");
      const S = p.c.shape("generate.sequences")[1]!;
      expect(out.sequences.flat()).toEqual(Array.from(seq));
      expect(out.newTokens.every((r) => r.length === 12)).toBe(true);
      expect(S).toBe(p.L + 12);
      const want = p.c.f32("generate.scores"); // [12, B, V]
      let worst = 0;
      out.scores!.forEach((step, s) => {
        for (let i = 0; i < step.length; i++)
          worst = Math.max(worst, Math.abs(step[i]! - want[s * p.B * V + i]!));
      });
      diffs.push([`${name}.generate.scores`, worst]);
      expect(worst).toBeLessThan(1e-4);
      p.embeds.dispose();
    });
  }

  it("KV-cache decoding gives the tokens and logits of full recomputation (batch case)", async () => {
    const p = await prompt("batch");
    const out = await generate(lm, {
      ...p,
      inputsEmbeds: p.embeds,
      maxNewTokens: 6,
      stopTokens: [],
      outputLogits: true,
    });
    // Recompute: embeddings of prompt + generated, whole sequence each step, no cache.
    let embeds = p.embeds;
    const mask = Array.from(p.attentionMask.data);
    let width = p.L;
    let worst = 0;
    for (let s = 0; s < 6; s++) {
      const logits = tidy(() =>
        lm.forward({ inputsEmbeds: embeds, attentionMask: { data: mask, shape: [p.B, width] } }),
      );
      const all = await logits.toFloat32();
      logits.dispose();
      const next: number[] = [];
      for (let b = 0; b < p.B; b++) {
        const row = all.subarray((b * width + width - 1) * V, (b * width + width) * V);
        for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs(row[i]! - out.logits![s]![b * V + i]!));
        next.push(argmax(row));
      }
      expect(next).toEqual(out.newTokens.map((r) => r[s]));
      const prev = embeds;
      const grown = tidy(() => concat([prev, lm.embed({ data: next, shape: [p.B, 1] })], 1)); // [B, T + 1, H]
      if (embeds !== p.embeds) embeds.dispose();
      embeds = grown;
      const m2: number[] = [];
      for (let b = 0; b < p.B; b++) m2.push(...mask.slice(b * width, (b + 1) * width), 1);
      mask.splice(0, mask.length, ...m2);
      width++;
    }
    console.log(`cached vs recomputed logits over 6 steps: max abs diff ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
    embeds.dispose();
    p.embeds.dispose();
  });
});

describe("generation controls", () => {
  it("sampling is deterministic by seed; top-k 1 is greedy", async () => {
    const p = await prompt("single");
    const base = {
      inputsEmbeds: p.embeds,
      inputIds: p.inputIds,
      attentionMask: p.attentionMask,
      maxNewTokens: 8,
      stopTokens: [],
    };
    const a = await generate(lm, { ...base, doSample: true, temperature: 1.5, topP: 0.95, seed: 7 });
    const b = await generate(lm, { ...base, doSample: true, temperature: 1.5, topP: 0.95, seed: 7 });
    const c = await generate(lm, { ...base, doSample: true, temperature: 1.5, topP: 0.95, seed: 8 });
    expect(b.sequences).toEqual(a.sequences);
    expect(c.sequences).not.toEqual(a.sequences);
    const greedy = await generate(lm, base);
    const k1 = await generate(lm, { ...base, doSample: true, topK: 1, temperature: 3, seed: 1 });
    expect(k1.sequences).toEqual(greedy.sequences);
    p.embeds.dispose();
  });

  it("repetition penalty: scores are the raw logits penalised over prompt + generated ids", async () => {
    const p = await prompt("batch");
    const out = await generate(lm, {
      inputsEmbeds: p.embeds,
      inputIds: p.inputIds,
      attentionMask: p.attentionMask,
      maxNewTokens: 5,
      stopTokens: [],
      repetitionPenalty: 1.8,
      outputScores: true,
      outputLogits: true,
    });
    for (let s = 0; s < 5; s++) {
      for (let b = 0; b < p.B; b++) {
        const raw = out.logits![s]!.slice(b * V, (b + 1) * V);
        const history = out.sequences[b]!.slice(0, p.L + s);
        applyRepetitionPenalty(raw, history, 1.8);
        expect(Array.from(out.scores![s]!.subarray(b * V, (b + 1) * V))).toEqual(Array.from(raw));
        expect(out.newTokens[b]![s]).toBe(argmax(raw));
      }
    }
    p.embeds.dispose();
  });

  it("stop tokens: the row keeps the stop token, then emits pad; other rows go on; callback per step", async () => {
    const p = await prompt("batch");
    const base = {
      inputsEmbeds: p.embeds,
      inputIds: p.inputIds,
      attentionMask: p.attentionMask,
      maxNewTokens: 8,
    };
    const free = await generate(lm, { ...base, stopTokens: [] });
    const stop = free.newTokens[0]![2]!; // row 0's third token
    expect(free.newTokens[1]!.slice(0, 8)).not.toContain(stop);
    const events: TokenEvent[] = [];
    const out = await generate(lm, {
      ...base,
      stopTokens: [stop],
      padTokenId: 0,
      onToken: (e) => void events.push(e),
    });
    expect(out.newTokens[0]).toEqual([...free.newTokens[0]!.slice(0, 3), 0, 0, 0, 0, 0]);
    expect(out.newTokens[1]).toEqual(free.newTokens[1]);
    expect(out.finishReasons).toEqual(["stop-token", "length"]);
    expect(events.length).toBe(8);
    expect(events.map((e) => e.tokens[0])).toEqual(out.newTokens[0]);
    expect(events[2]!.finished).toEqual([true, false]);
    // Returning false stops at once.
    const aborted = await generate(lm, { ...base, stopTokens: [], onToken: (e) => e.step < 1 });
    expect(aborted.newTokens[0]!.length).toBe(2);
    expect(aborted.finishReasons).toEqual(["aborted", "aborted"]);
    p.embeds.dispose();
  });

  it("stop strings match decoded text across tokens; all rows finished ends early", async () => {
    const p = await prompt("single");
    const base = {
      inputsEmbeds: p.embeds,
      inputIds: p.inputIds,
      attentionMask: p.attentionMask,
      maxNewTokens: 12,
      stopTokens: [],
    };
    const free = await generate(lm, base);
    // Ids outside the toy tokenizer's ASCII range decode to "[id]" here, so every token has text.
    const dec = (ids: number[]) => ids.map((id) => decode([id]) || `[${id}]`).join("");
    const pieces = free.newTokens[0]!.map((t) => dec([t]));
    // The last character of token 3 and the first of token 4: a stop string across a token boundary.
    const stopString = pieces[3]!.slice(-1) + pieces[4]!.slice(0, 1);
    let stopAt = 0;
    while (!dec(free.newTokens[0]!.slice(0, stopAt + 1)).includes(stopString)) stopAt++;
    expect(stopAt).toBeLessThanOrEqual(4);
    const out = await generate(lm, { ...base, stopStrings: ["never-there", stopString], decode: dec });
    expect(out.finishReasons).toEqual(["stop-string"]);
    expect(out.newTokens[0]).toEqual(free.newTokens[0]!.slice(0, stopAt + 1)); // one row: ends early, no pad
    expect(dec(out.newTokens[0]!).includes(stopString)).toBe(true);
    await expect(generate(lm, { ...base, stopStrings: ["x"] })).rejects.toThrow(/decode/);
    p.embeds.dispose();
  });

  it("layer hooks run after each layer during prefill and decode", async () => {
    const p = await prompt("single");
    const base = {
      inputsEmbeds: p.embeds,
      inputIds: p.inputIds,
      attentionMask: p.attentionMask,
      maxNewTokens: 4,
      stopTokens: [],
      outputLogits: true,
    };
    const plain = await generate(lm, base);
    const seen: [number, number][] = [];
    const identity = await generate(lm, {
      ...base,
      layerHooks: {
        afterLayer(i, h) {
          seen.push([i, h.shape[1]!]);
          return h;
        },
      },
    });
    expect(identity.logits).toEqual(plain.logits);
    expect(seen).toEqual([
      [0, p.L],
      [1, p.L],
      ...Array.from({ length: 3 }, () => [
        [0, 1],
        [1, 1],
      ]).flat(),
    ]);
    const shifted = await generate(lm, {
      ...base,
      layerHooks: { afterLayer: (i, h) => (i === 0 ? h.mul(1.5) : h) },
    });
    expect(shifted.logits![0]).not.toEqual(plain.logits![0]);
    p.embeds.dispose();
  });
});
