import { beforeAll, describe, expect, it } from "vitest";
import type { ChatMessage } from "./chat-template.js";
import { TokenizerInputError } from "./errors.js";
import { type CorpusEntry, FIXTURE_DIR, readJsonl } from "./test-helpers.js";
import { Tokenizer } from "./tokenizer.js";

let tok: Tokenizer;
beforeAll(async () => {
  tok = await Tokenizer.fromDirectory(FIXTURE_DIR);
});

const corpus = readJsonl<CorpusEntry>("corpus.jsonl");
const decodeCases = readJsonl<{
  ids: number[];
  decoded_skip_special: string;
  decoded_raw: string;
  note: string;
}>("decode_cases.jsonl");
const chatCases = readJsonl<{
  messages: ChatMessage[];
  add_generation_prompt: boolean;
  rendered: string;
  ids: number[];
  source: string;
}>("chat_template_cases.jsonl");

describe("corpus.jsonl (tokenizers 0.23.2 reference)", () => {
  it("has the documented 331 entries", () => {
    expect(corpus.length).toBe(331);
  });

  it.each(corpus.map((c, i) => [i, c.category, JSON.stringify(c.text).slice(0, 50), c] as const))(
    "#%i %s %s",
    (_i, _cat, _label, c) => {
      const enc = tok.encode(c.text);
      expect(enc.ids).toEqual(c.ids);
      expect(enc.tokens).toEqual(c.tokens);
      expect(tok.encode(c.text, { addSpecialTokens: false }).ids).toEqual(c.ids_no_special);
      expect(tok.decode(c.ids, { skipSpecialTokens: true })).toBe(c.decoded_skip_special);
      expect(tok.decode(c.ids)).toBe(c.decoded_raw);
    },
  );
});

describe("decode_cases.jsonl", () => {
  it.each(decodeCases.map((c) => [c.note, c] as const))("%s", (_note, c) => {
    expect(tok.decode(c.ids, { skipSpecialTokens: true })).toBe(c.decoded_skip_special);
    expect(tok.decode(c.ids, { skipSpecialTokens: false })).toBe(c.decoded_raw);
  });
});

describe("chat_template_cases.jsonl", () => {
  it.each(chatCases.map((c) => [c.source, c] as const))("%s", (_source, c) => {
    const rendered = tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt });
    expect(rendered).toBe(c.rendered);
    expect(tok.encodeChat(c.messages, { addGenerationPrompt: c.add_generation_prompt }).ids).toEqual(c.ids);
  });

  it("treats string content as one text part", () => {
    const asString = tok.applyChatTemplate([{ role: "user", content: "Hi there" }], {
      addGenerationPrompt: true,
    });
    expect(asString).toBe("User: Hi there<end_of_utterance>\nAssistant:");
  });

  it("rejects unknown part types naming the message", () => {
    const bad = [{ role: "user", content: [{ type: "video" }] }] as unknown as ChatMessage[];
    expect(() => tok.applyChatTemplate(bad)).toThrow(/messages\[0\]\.content\[0\]\.type is "video"/);
  });
});

describe("offsets", () => {
  it("point into the original string (UTF-16 units); the prefix ▁ shares its first character's span", () => {
    expect(tok.encode("Hello world").offsets).toEqual([
      [0, 0],
      [0, 5],
      [5, 11],
    ]);
    // " grabbed": prepended ▁ and the space's ▁ both come from the space.
    expect(tok.encode(" grabbed").offsets).toEqual([
      [0, 0],
      [0, 1],
      [0, 8],
    ]);
  });

  it("give every byte token of a character that character's span, and added tokens their match", () => {
    const text = "<image>🦙x";
    const enc = tok.encode(text, { addSpecialTokens: false });
    expect(enc.tokens).toEqual(["<image>", "▁", "<0xF0>", "<0x9F>", "<0xA6>", "<0x99>", "x"]);
    expect(enc.offsets).toEqual([
      [0, 7],
      [7, 9],
      [7, 9],
      [7, 9],
      [7, 9],
      [7, 9],
      [9, 10],
    ]);
  });

  it("cover each ordinary token's text, for every corpus line", () => {
    for (const c of corpus) {
      const enc = tok.encode(c.text, { addSpecialTokens: false });
      let prevStart = 0;
      enc.offsets.forEach(([start, end], i) => {
        // Spans never run backwards (byte pieces of one character repeat its span).
        expect(start).toBeLessThanOrEqual(end);
        expect(start).toBeGreaterThanOrEqual(prevStart);
        prevStart = start;
        const token = enc.tokens[i]!;
        if (!/^<0x[0-9A-F]{2}>$/.test(token) && !token.startsWith("▁")) {
          expect(c.text.slice(start, end)).toBe(token);
        }
      });
    }
  });
});

describe("batch encoding", () => {
  it("pads on the config's side (left) with the config's pad id (<unk> = 0)", () => {
    expect(tok.padTokenId).toBe(0);
    const b = tok.encodeBatch(["Hello world!", "Hi"], { padding: true });
    expect(b.inputIds).toEqual([
      [1, 22557, 1526, 28808],
      [0, 0, 1, 15359],
    ]);
    expect(b.attentionMask).toEqual([
      [1, 1, 1, 1],
      [0, 0, 1, 1],
    ]);
    expect(b.encodings[1]!.tokens).toEqual(["<unk>", "<unk>", "<s>", "▁Hi"]);
    expect(b.encodings[1]!.offsets[0]).toEqual([0, 0]);
  });

  it("pads right on request, to max_length and to a multiple", () => {
    const b = tok.encodeBatch(["Hi", "Hello world!"], {
      padding: "max_length",
      maxLength: 6,
      paddingSide: "right",
    });
    expect(b.inputIds).toEqual([
      [1, 15359, 0, 0, 0, 0],
      [1, 22557, 1526, 28808, 0, 0],
    ]);
    const m = tok.encodeBatch(["Hi", "Hello world!"], { padding: true, padToMultipleOf: 8 });
    expect(m.inputIds.map((r) => r.length)).toEqual([8, 8]);
  });

  it("truncates before the template adds <s>, from either side", () => {
    const right = tok.encodeBatch(["The quick brown fox"], { truncation: true, maxLength: 3 });
    expect(right.inputIds).toEqual([[1, 415, 2936]]);
    const left = tok.encodeBatch(["The quick brown fox"], {
      truncation: true,
      maxLength: 3,
      truncationSide: "left",
    });
    expect(left.inputIds).toEqual([[1, 285, 1142]]);
    expect(left.encodings[0]!.tokens).toEqual(["<s>", "▁f", "ox"]);
  });

  it("matches single encodes without padding, and rejects impossible limits", () => {
    const texts = corpus.slice(0, 20).map((c) => c.text);
    const b = tok.encodeBatch(texts);
    expect(b.inputIds).toEqual(corpus.slice(0, 20).map((c) => c.ids));
    expect(() => tok.encodeBatch(["x"], { truncation: true, maxLength: 0 })).toThrow(TokenizerInputError);
    expect(() => tok.encodeBatch(["x"], { padding: "max_length" })).toThrow(/needs maxLength/);
  });
});

describe("pair encoding and vocabulary", () => {
  it("uses the template's pair form <s> $A <s> $B with type ids 0/1", () => {
    const enc = tok.encode("Hello", { pair: "world" });
    expect(enc.ids).toEqual([1, 22557, 1, 1526]);
    expect(enc.typeIds).toEqual([0, 0, 1, 1]);
    expect(enc.specialTokensMask).toEqual([1, 0, 1, 0]);
  });

  it("maps tokens and ids both ways, including added tokens", () => {
    expect(tok.vocabSize).toBe(32003);
    expect(tok.tokenToId("<image>")).toBe(32001);
    expect(tok.idToToken(28705)).toBe("▁");
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenId).toBe(2);
    expect(tok.specialTokenIds.sort((a, b) => a - b)).toEqual([0, 1, 2, 32000, 32001, 32002]);
  });

  it("refuses ids that are not tokens, naming the position", () => {
    expect(() => tok.decode([1, 99999])).toThrow(/ids\[1\] = 99999 is not a token id/);
    expect(() => tok.decode([1.5])).toThrow(TokenizerInputError);
  });

  it("treats a lone surrogate as U+FFFD (what TextEncoder would send)", () => {
    expect(tok.encode("a\ud800b").ids).toEqual(tok.encode("a\ufffdb").ids);
  });
});
