import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BpeModel } from "./bpe.js";
import { toNormalized } from "./normalizer.js";
import { type BpeSpec, JsonReader, parseModel } from "./spec.js";
import { readFixtureJson } from "./test-helpers.js";

/** A BPE model from a tiny tokenizer.json `model` section. */
function model(vocab: string[], merges: string[], extra: Record<string, unknown> = {}): BpeModel {
  const spec: BpeSpec = parseModel(
    new JsonReader("test"),
    { type: "BPE", vocab: Object.fromEntries(vocab.map((p, i) => [p, i])), merges, ...extra },
    "$.model",
  );
  return new BpeModel(spec);
}

/** Tokenize and return [piece, [cpStart, cpEnd]] per token. */
function run(m: BpeModel, text: string): Array<[string, number, number]> {
  const seq = toNormalized(text, 0, text.length);
  const out = m.tokenize(seq.cps, seq.length);
  return Array.from({ length: out.count }, (_, k) => [
    m.idToPiece[out.ids[k]!]!,
    out.cpStart[k]!,
    out.cpEnd[k]!,
  ]);
}

const pieces = (m: BpeModel, text: string): string[] => run(m, text).map(([p]) => p);

describe("merge order", () => {
  it("merges the lowest rank first", () => {
    // "b c" outranks "a b": abc -> a + bc, never ab + c.
    const m = model(["a", "b", "c", "ab", "bc"], ["b c", "a b"]);
    expect(pieces(m, "abc")).toEqual(["a", "bc"]);
    const m2 = model(["a", "b", "c", "ab", "bc"], ["a b", "b c"]);
    expect(pieces(m2, "abc")).toEqual(["ab", "c"]);
  });

  it("takes the leftmost of equal-rank pairs", () => {
    const m = model(["a", "aa"], ["a a"]);
    expect(pieces(m, "aaa")).toEqual(["aa", "a"]);
    expect(pieces(m, "aaaaa")).toEqual(["aa", "aa", "a"]);
  });

  it("reproduces tokenizers' own 'unrelated' example", () => {
    const vocab = [
      "u",
      "n",
      "r",
      "e",
      "l",
      "a",
      "t",
      "d",
      "re",
      "at",
      "ed",
      "un",
      "ated",
      "rel",
      "related",
      "unrelated",
    ];
    const merges = ["r e", "a t", "e d", "u n", "at ed", "re l", "rel ated", "un related"];
    expect(run(model(vocab, merges), "unrelated")).toEqual([["unrelated", 0, 9]]);
  });

  it("lets a later duplicate merge line override the earlier rank (HashMap collect)", () => {
    // With "a b" re-listed after "b c", "b c" wins.
    const m = model(["a", "b", "c", "ab", "bc"], ["a b", "b c", "a b"]);
    expect(pieces(m, "abc")).toEqual(["a", "bc"]);
  });
});

describe("unknown characters (tokenizers' own unk tests)", () => {
  const vocab = ["<unk>", "a", "b"];
  it("one <unk> per character without fuse_unk", () => {
    const m = model(vocab, [], { unk_token: "<unk>" });
    expect(run(m, "accb")).toEqual([
      ["a", 0, 1],
      ["<unk>", 1, 2],
      ["<unk>", 2, 3],
      ["b", 3, 4],
    ]);
  });

  it("one fused <unk> per run with fuse_unk", () => {
    const m = model(vocab, [], { unk_token: "<unk>", fuse_unk: true });
    expect(run(m, "accb")).toEqual([
      ["a", 0, 1],
      ["<unk>", 1, 3],
      ["b", 3, 4],
    ]);
  });

  it("drops the character when there is no unk_token", () => {
    expect(pieces(model(vocab, []), "acb")).toEqual(["a", "b"]);
  });

  it("byte fallback needs every byte piece, else <unk>", () => {
    const m = model(["<unk>", "<0x61>"], [], { unk_token: "<unk>", byte_fallback: true });
    expect(pieces(m, "c")).toEqual(["<unk>"]);
    expect(pieces(m, "a")).toEqual(["<0x61>"]);
  });

  it("keeps tokenizers' order when byte tokens follow a pending <unk>", () => {
    // merge_word adds byte tokens without flushing the pending unk first.
    const m = model(["<unk>", "b", "<0x41>"], [], {
      unk_token: "<unk>",
      byte_fallback: true,
      fuse_unk: true,
    });
    expect(pieces(m, "éAb")).toEqual(["<0x41>", "<unk>", "b"]);
  });

  it("refuses to tokenize an unknown character when unk_token is not a piece", () => {
    const m = model(["a"], [], { unk_token: "<unk>" });
    expect(() => pieces(m, "ax")).toThrow(/unk_token "<unk>" is not in the vocabulary/);
  });
});

describe("ignore_merges", () => {
  it("returns a whole-sequence piece directly", () => {
    const vocab = ["a", "b", "c", "bc", "abc"];
    expect(pieces(model(vocab, ["b c"], { ignore_merges: true }), "abc")).toEqual(["abc"]);
    expect(pieces(model(vocab, ["b c"], { ignore_merges: false }), "abc")).toEqual(["a", "bc"]);
  });
});

describe("scaling", () => {
  it("handles a 300k-symbol sequence with no spaces without rescanning per merge", () => {
    // Alternating pair that merges at every position: quadratic rescans would take minutes.
    const m = model(["a", "b", "ab", "abab"], ["a b", "ab ab"]);
    const text = "ab".repeat(150_000);
    const t0 = performance.now();
    const out = run(m, text);
    const ms = performance.now() - t0;
    expect(out.length).toBe(75_000);
    expect(out.every(([p]) => p === "abab")).toBe(true);
    expect(ms).toBeLessThan(10_000);
  });
});

describe("stretches between '▁' boundaries", () => {
  it("give the same tokens as one heap over the whole text (fixture vocabulary, random text)", () => {
    const json = readFixtureJson("tokenizer.json") as { model: unknown };
    const spec = parseModel(new JsonReader("tokenizer.json"), json.model, "$.model");
    const chunked = new BpeModel(spec);
    const whole = new BpeModel(spec, { chunked: false });
    const pieces = [...spec.vocab.keys()];
    const part = fc.oneof(
      fc.integer({ min: 0, max: pieces.length - 1 }).map((i) => pieces[i]!),
      fc.integer({ min: 1, max: 12 }).map((n) => "▁".repeat(n)),
      fc.string({ unit: "binary", maxLength: 4 }),
    );
    fc.assert(
      fc.property(fc.array(part, { maxLength: 30 }), (parts) => {
        const text = `▁${parts.join("")}`;
        const a = run(chunked, text);
        const b = run(whole, text);
        expect(a).toEqual(b);
      }),
      { numRuns: 2000, seed: 5 },
    );
  });

  it("is switched off when a merge joins something to a following ▁", () => {
    // "a ▁" makes "a|▁" mergeable, so the text must be one heap: a▁ + b, not a + ▁b.
    const m = model(["a", "b", "▁", "▁b", "a▁"], ["▁ b", "a ▁"]);
    expect(pieces(m, "a▁b")).toEqual(["a", "▁b"]);
    const m2 = model(["a", "b", "▁", "▁b", "a▁"], ["a ▁", "▁ b"]);
    expect(pieces(m2, "a▁b")).toEqual(["a▁", "b"]);
  });
});
