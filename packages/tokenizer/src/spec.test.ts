import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { TokenizerConfigError } from "./errors.js";
import { type CorpusEntry, readFixtureJson, readJsonl } from "./test-helpers.js";
import { Tokenizer } from "./tokenizer.js";

type Json = Record<string, unknown>;
let base: Json;
let config: Json;

beforeAll(() => {
  base = readFixtureJson("tokenizer.json") as Json;
  config = readFixtureJson("tokenizer_config.json") as Json;
});

/** Load a variant of the fixture, returning the TokenizerConfigError it raises. */
function loadError(tokenizer: Json, cfg: Json = config): TokenizerConfigError {
  try {
    Tokenizer.fromJSON({ tokenizer, config: cfg });
  } catch (e) {
    if (e instanceof TokenizerConfigError) return e;
    throw e;
  }
  throw new Error("expected a TokenizerConfigError");
}

const model = (): Json => base["model"] as Json;

describe("unsupported pipeline pieces are refused with file, JSON path and type", () => {
  it.each([
    [
      "pre-tokenizer",
      { pre_tokenizer: { type: "Metaspace", replacement: "▁" } },
      "$.pre_tokenizer.type",
      "Metaspace",
    ],
    [
      "normalizer inside a Sequence",
      {
        normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "NFKC" }] },
      },
      "$.normalizer.normalizers[1].type",
      "NFKC",
    ],
    ["normalizer", { normalizer: { type: "Lowercase" } }, "$.normalizer.type", "Lowercase"],
    [
      "post-processor",
      { post_processor: { type: "ByteLevel", trim_offsets: true } },
      "$.post_processor.type",
      "ByteLevel",
    ],
    [
      "decoder inside a Sequence",
      { decoder: { type: "Sequence", decoders: [{ type: "Metaspace", replacement: "▁" }] } },
      "$.decoder.decoders[0].type",
      "Metaspace",
    ],
    [
      "Replace with a regex",
      { normalizer: { type: "Replace", pattern: { Regex: "\\s+" }, content: "▁" } },
      "$.normalizer.pattern.Regex",
      "Regex",
    ],
  ] as const)("%s", (_what, patch, path, type) => {
    const err = loadError({ ...base, ...patch });
    expect(err.file).toBe("tokenizer.json");
    expect(err.jsonPath).toBe(path);
    expect(err.type).toBe(type);
    expect(err.message).toContain("tokenizer.json");
    expect(err.message).toContain(path);
    expect(err.message).toContain(type);
  });

  it("model type", () => {
    const err = loadError({ ...base, model: { ...model(), type: "WordPiece" } });
    expect([err.jsonPath, err.type]).toEqual(["$.model.type", "WordPiece"]);
  });

  it("a piece without a type", () => {
    const err = loadError({ ...base, decoder: { decoders: [] } });
    expect(err.jsonPath).toBe("$.decoder.type");
  });
});

describe("malformed fields", () => {
  it.each([
    ["missing model", { model: undefined }, "$.model", /expected an object/],
    [
      "merge with an unknown piece",
      { model: { merges: ["▁ t", "i n", "q zzz"] } },
      "$.model.merges[2]",
      /"zzz" is not in the vocabulary/,
    ],
    [
      "merge with two spaces",
      { model: { merges: ["▁ t", "a b c"] } },
      "$.model.merges[1]",
      /exactly one space/,
    ],
    ["merge result not a piece", { model: { merges: ["<0x41> <0x42>"] } }, "$.model.merges[0]", /result/],
    [
      "vocab id not an integer",
      { model: { vocab: { a: 1.5 } } },
      '$.model.vocab["a"]',
      /non-negative integer/,
    ],
    ["BPE dropout", { model: { dropout: 0.1 } }, "$.model.dropout", /dropout/],
    [
      "continuing_subword_prefix",
      { model: { continuing_subword_prefix: "##" } },
      "$.model.continuing_subword_prefix",
      /not supported/,
    ],
    ["padding section", { padding: { strategy: "BatchLongest" } }, "$.padding", /not supported/],
  ] as const)("%s", (_what, patch, path, message) => {
    const p = patch as Json;
    const variant =
      "model" in p && p["model"] !== undefined
        ? { ...base, model: { ...model(), ...(p["model"] as Json) } }
        : { ...base, ...p };
    const err = loadError(variant);
    expect(err.jsonPath).toBe(path);
    expect(err.message).toMatch(message);
  });

  it("added token whose id tokenizers would not assign", () => {
    const added = (base["added_tokens"] as Json[]).map((t) => ({ ...t }));
    added[3]!["id"] = 32005;
    const err = loadError({ ...base, added_tokens: added });
    expect(err.jsonPath).toBe("$.added_tokens[3].id");
    expect(err.message).toMatch(/has id 32005, but tokenizers would assign 32000/);
  });

  it("added token with lstrip or normalized=true", () => {
    const added = (base["added_tokens"] as Json[]).map((t) => ({ ...t }));
    added[4]!["lstrip"] = true;
    expect(loadError({ ...base, added_tokens: added }).jsonPath).toBe("$.added_tokens[4].lstrip");
    added[4]!["lstrip"] = false;
    added[4]!["normalized"] = true;
    expect(loadError({ ...base, added_tokens: added }).jsonPath).toBe("$.added_tokens[4].normalized");
  });

  it("tokenizer_config.json flags that contradict the post-processor", () => {
    const err = loadError(base, { ...config, add_eos_token: true });
    expect(err.file).toBe("tokenizer_config.json");
    expect(err.jsonPath).toBe("$.add_eos_token");
  });

  it("tokenizer_config.json naming a token that does not exist", () => {
    const err = loadError(base, { ...config, pad_token: "<pad>" });
    expect([err.file, err.jsonPath]).toEqual(["tokenizer_config.json", "$.pad_token"]);
  });
});

describe("accepted variants", () => {
  it("merges as [left, right] pairs with ignore_merges: false (newer writers) give the same ids", () => {
    const merges = (model()["merges"] as string[]).map((m) => m.split(" "));
    const t = Tokenizer.fromJSON({
      tokenizer: { ...base, model: { ...model(), merges, ignore_merges: false } },
      config,
    });
    for (const c of readJsonl<CorpusEntry>("corpus.jsonl")) expect(t.encode(c.text).ids).toEqual(c.ids);
  });
});

describe("minimal inputs", () => {
  it("tokenizer.json alone: encodes, but padding needs a pad token and there is no chat template", () => {
    const t = Tokenizer.fromJSON({ tokenizer: base });
    expect(t.encode("Hello world!").ids).toEqual([1, 22557, 1526, 28808]);
    expect(t.padTokenId).toBeUndefined();
    expect(() => t.encodeBatch(["a", "bc"], { padding: true })).toThrow(/needs a pad token/);
    expect(() => t.applyChatTemplate([{ role: "user", content: "hi" }])).toThrow(/no chat_template/);
  });

  it("no post-processor: addSpecialTokens adds nothing; no decoder: pieces joined by spaces", () => {
    const t = Tokenizer.fromJSON({ tokenizer: { ...base, post_processor: null, decoder: null } });
    expect(t.encode("Hello world!").ids).toEqual([22557, 1526, 28808]);
    expect(t.decode([22557, 1526, 28808])).toBe("▁Hello ▁world !");
  });
});

describe("fromDirectory errors name the file", () => {
  it("missing tokenizer.json", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tok-"));
    await expect(Tokenizer.fromDirectory(dir)).rejects.toThrow(join(dir, "tokenizer.json"));
  });

  it("tokenizer.json that is not JSON, and a bad type inside a real file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tok-"));
    writeFileSync(join(dir, "tokenizer.json"), "{ not json");
    await expect(Tokenizer.fromDirectory(dir)).rejects.toThrow(/tokenizer\.json: not valid JSON/);
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ ...base, decoder: { type: "ByteLevel" } }));
    const err = await Tokenizer.fromDirectory(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenizerConfigError);
    expect((err as TokenizerConfigError).file).toBe(join(dir, "tokenizer.json"));
    expect((err as TokenizerConfigError).message).toContain(
      '$.decoder.type: unsupported decoder type "ByteLevel"',
    );
  });
});
