// Random strings against @huggingface/tokenizers, an independent implementation that agrees with
// the Rust reference on encode (fixtures/tokenizer/README.md: 20205/20205) and on decode of
// anything encode produces (it differs only on invalid byte-token runs, see decode_cases).

import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { ADDED_TOKENS, FIXTURE_DIR, readFixtureJson } from "./test-helpers.js";
import { Tokenizer } from "./tokenizer.js";

let tok: Tokenizer;
let hf: HfTokenizer;
let pieces: string[];

beforeAll(async () => {
  tok = await Tokenizer.fromDirectory(FIXTURE_DIR);
  const json = readFixtureJson("tokenizer.json") as { model: { vocab: Record<string, number> } };
  hf = new HfTokenizer(json, readFixtureJson("tokenizer_config.json") as object);
  // Vocabulary pieces as text (▁ -> space), so random strings hit real merges.
  pieces = Object.keys(json.model.vocab)
    .filter((p) => !/^<.*>$/.test(p))
    .map((p) => p.replaceAll("▁", " "));
});

/** Random text mixing vocabulary pieces, space runs, arbitrary code points and (optionally) added tokens. */
function textArb(withAdded: boolean): fc.Arbitrary<string> {
  const parts: Array<fc.Arbitrary<string>> = [
    fc.integer({ min: 0, max: 31999 }).map((i) => pieces[i % pieces.length]!),
    fc.integer({ min: 0, max: 40 }).map((n) => " ".repeat(n)),
    fc.string({ unit: "binary", maxLength: 6 }),
    fc.string({ unit: "grapheme", maxLength: 6 }),
    fc.constantFrom(
      "\n",
      "\t",
      "\r\n",
      "\u00a0",
      "\u3000",
      "\u2581",
      "\ufffd",
      "\u0001",
      "\u007f",
      "🦙",
      "é",
      "中文",
    ),
  ];
  if (withAdded) parts.push(fc.constantFrom(...ADDED_TOKENS));
  return fc.array(fc.oneof(...parts), { maxLength: 12 }).map((xs) => xs.join(""));
}

const RUNS = 1000;

describe("against @huggingface/tokenizers", () => {
  it("encode: same ids with and without special tokens", () => {
    fc.assert(
      fc.property(textArb(true), (text) => {
        expect(tok.encode(text).ids).toEqual(hf.encode(text).ids);
        expect(tok.encode(text, { addSpecialTokens: false }).ids).toEqual(
          hf.encode(text, { add_special_tokens: false }).ids,
        );
        expect(tok.encode(text).tokens).toEqual(hf.encode(text).tokens);
      }),
      { numRuns: RUNS, seed: 20261126 },
    );
  });

  it("encode: same ids on arbitrary code points only", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (text) => {
        expect(tok.encode(text).ids).toEqual(hf.encode(text).ids);
      }),
      { numRuns: RUNS, seed: 7 },
    );
  });

  it("decode: same text for whatever encode produced (both modes)", () => {
    fc.assert(
      fc.property(textArb(true), (text) => {
        const ids = tok.encode(text).ids;
        expect(tok.decode(ids)).toBe(hf.decode(ids, { skip_special_tokens: false }));
        expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(
          hf.decode(ids, { skip_special_tokens: true }),
        );
      }),
      { numRuns: RUNS, seed: 11 },
    );
  });
});

describe("round trip", () => {
  it("decode(encode(x)) == x for text without added tokens or a literal ▁", () => {
    const arb = textArb(false).filter(
      (t) => !t.includes("\u2581") && !ADDED_TOKENS.some((a) => t.includes(a)),
    );
    fc.assert(
      fc.property(arb, (text) => {
        expect(tok.decode(tok.encode(text).ids, { skipSpecialTokens: true })).toBe(text);
        expect(tok.decode(tok.encode(text, { addSpecialTokens: false }).ids)).toBe(text);
      }),
      { numRuns: RUNS, seed: 3 },
    );
  });
});
