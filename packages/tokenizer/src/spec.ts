// Parses and validates `tokenizer.json` (the Rust `tokenizers` serialisation) into typed specs.
// Every piece this package implements is checked field by field; anything else is refused with a
// TokenizerConfigError naming the file, the JSON path and the type, never skipped.

import { TokenizerConfigError } from "./errors.js";

export type NormalizerSpec =
  | { type: "Sequence"; normalizers: NormalizerSpec[] }
  | { type: "Prepend"; prepend: string }
  | { type: "Replace"; pattern: string; content: string };

export type DecoderSpec =
  | { type: "Sequence"; decoders: DecoderSpec[] }
  | { type: "Replace"; pattern: string; content: string }
  | { type: "ByteFallback" }
  | { type: "Fuse" }
  | { type: "Strip"; content: string; start: number; stop: number };

export interface BpeSpec {
  type: "BPE";
  /** piece -> id */
  vocab: Map<string, number>;
  /** in priority order: index = rank */
  merges: Array<[string, string]>;
  unkToken: string | null;
  fuseUnk: boolean;
  byteFallback: boolean;
  ignoreMerges: boolean;
}

export type TemplatePiece =
  | { kind: "special"; id: string; typeId: number }
  | { kind: "sequence"; sequence: "A" | "B"; typeId: number };

export interface TemplateProcessingSpec {
  type: "TemplateProcessing";
  single: TemplatePiece[];
  pair: TemplatePiece[];
  specialTokens: Map<string, { ids: number[]; tokens: string[] }>;
}

export interface AddedTokenSpec {
  id: number;
  content: string;
  special: boolean;
}

export interface TokenizerSpec {
  addedTokens: AddedTokenSpec[];
  normalizer: NormalizerSpec | null;
  model: BpeSpec;
  postProcessor: TemplateProcessingSpec | null;
  decoder: DecoderSpec | null;
}

/** Small typed accessors that name the file and JSON path in every error. */
export class JsonReader {
  constructor(readonly file: string) {}

  fail(path: string, problem: string, type?: string): never {
    throw new TokenizerConfigError(this.file, path, problem, type === undefined ? {} : { type });
  }

  object(v: unknown, path: string): Record<string, unknown> {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      this.fail(path, `expected an object, got ${describe(v)}`);
    }
    return v as Record<string, unknown>;
  }

  array(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.fail(path, `expected an array, got ${describe(v)}`);
    return v;
  }

  string(v: unknown, path: string): string {
    if (typeof v !== "string") this.fail(path, `expected a string, got ${describe(v)}`);
    return v;
  }

  boolean(v: unknown, path: string): boolean {
    if (typeof v !== "boolean") this.fail(path, `expected a boolean, got ${describe(v)}`);
    return v;
  }

  nonNegativeInt(v: unknown, path: string): number {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      this.fail(path, `expected a non-negative integer, got ${describe(v)}`);
    }
    return v;
  }

  /** The `type` tag of a pipeline piece, which must be one of `supported`. */
  type(obj: Record<string, unknown>, path: string, what: string, supported: readonly string[]): string {
    const t = obj["type"];
    if (typeof t !== "string")
      this.fail(`${path}.type`, `${what} has no string "type" field (got ${describe(t)})`);
    if (!supported.includes(t)) {
      this.fail(
        `${path}.type`,
        `unsupported ${what} type "${t}" (this package implements: ${supported.join(", ")})`,
        t,
      );
    }
    return t;
  }

  /** A field that must be absent, null, or equal to one of `allowed` for us to behave like `tokenizers`. */
  onlyDefault(
    obj: Record<string, unknown>,
    key: string,
    path: string,
    allowed: readonly unknown[],
    why: string,
  ): void {
    const v = obj[key];
    if (v === undefined || v === null || allowed.includes(v)) return;
    this.fail(`${path}.${key}`, `unsupported value ${JSON.stringify(v)}: ${why}`);
  }
}

export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

/** A `{"String": "…"}` pattern; `{"Regex": …}` is refused (not implemented). */
function parsePattern(r: JsonReader, v: unknown, path: string): string {
  const o = r.object(v, path);
  if ("Regex" in o) r.fail(`${path}.Regex`, 'Regex patterns are not supported (only {"String": …})', "Regex");
  const s = r.string(o["String"], `${path}.String`);
  if (s.length === 0) r.fail(`${path}.String`, "empty pattern");
  return s;
}

export function parseNormalizer(r: JsonReader, v: unknown, path: string): NormalizerSpec | null {
  if (v === null || v === undefined) return null;
  const o = r.object(v, path);
  const type = r.type(o, path, "normalizer", ["Sequence", "Prepend", "Replace"]);
  switch (type) {
    case "Sequence": {
      const list = r.array(o["normalizers"], `${path}.normalizers`);
      return {
        type,
        normalizers: list.map((n, i) => {
          const p = parseNormalizer(r, n, `${path}.normalizers[${i}]`);
          if (p === null) r.fail(`${path}.normalizers[${i}]`, "expected a normalizer, got null");
          return p;
        }),
      };
    }
    case "Prepend":
      return { type, prepend: r.string(o["prepend"], `${path}.prepend`) };
    default:
      return {
        type: "Replace",
        pattern: parsePattern(r, o["pattern"], `${path}.pattern`),
        content: r.string(o["content"], `${path}.content`),
      };
  }
}

export function parseDecoder(r: JsonReader, v: unknown, path: string): DecoderSpec | null {
  if (v === null || v === undefined) return null;
  const o = r.object(v, path);
  const type = r.type(o, path, "decoder", ["Sequence", "Replace", "ByteFallback", "Fuse", "Strip"]);
  switch (type) {
    case "Sequence": {
      const list = r.array(o["decoders"], `${path}.decoders`);
      return {
        type,
        decoders: list.map((d, i) => {
          const p = parseDecoder(r, d, `${path}.decoders[${i}]`);
          if (p === null) r.fail(`${path}.decoders[${i}]`, "expected a decoder, got null");
          return p;
        }),
      };
    }
    case "Replace":
      return {
        type,
        pattern: parsePattern(r, o["pattern"], `${path}.pattern`),
        content: r.string(o["content"], `${path}.content`),
      };
    case "Strip": {
      const content = r.string(o["content"], `${path}.content`);
      if ([...content].length !== 1)
        r.fail(`${path}.content`, `expected a single character, got ${describe(content)}`);
      return {
        type,
        content,
        start: r.nonNegativeInt(o["start"], `${path}.start`),
        stop: r.nonNegativeInt(o["stop"], `${path}.stop`),
      };
    }
    case "ByteFallback":
      return { type };
    default:
      return { type: "Fuse" };
  }
}

export function parseModel(r: JsonReader, v: unknown, path: string): BpeSpec {
  const o = r.object(v, path);
  r.type(o, path, "model", ["BPE"]);
  const vocabObj = r.object(o["vocab"], `${path}.vocab`);
  const vocab = new Map<string, number>();
  const seenIds = new Map<number, string>();
  for (const [piece, id] of Object.entries(vocabObj)) {
    const p = `${path}.vocab[${JSON.stringify(piece)}]`;
    const n = r.nonNegativeInt(id, p);
    const other = seenIds.get(n);
    if (other !== undefined) r.fail(p, `id ${n} is also used by ${JSON.stringify(other)}`);
    seenIds.set(n, piece);
    vocab.set(piece, n);
  }
  const mergesRaw = r.array(o["merges"], `${path}.merges`);
  const merges: Array<[string, string]> = new Array(mergesRaw.length);
  for (let i = 0; i < mergesRaw.length; i++) {
    const m = mergesRaw[i];
    const p = `${path}.merges[${i}]`;
    let pair: [string, string];
    if (typeof m === "string") {
      // Legacy form "left right": pieces never contain an ASCII space in this form.
      const parts = m.split(" ");
      if (parts.length !== 2) r.fail(p, `expected "left right" with exactly one space, got ${describe(m)}`);
      pair = [parts[0]!, parts[1]!];
    } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
      pair = [m[0], m[1]];
    } else {
      r.fail(p, `expected "left right" or ["left", "right"], got ${describe(m)}`);
    }
    for (const side of [0, 1] as const) {
      if (!vocab.has(pair[side]))
        r.fail(p, `merge piece ${JSON.stringify(pair[side])} is not in the vocabulary`);
    }
    if (!vocab.has(pair[0] + pair[1])) {
      r.fail(p, `merge result ${JSON.stringify(pair[0] + pair[1])} is not in the vocabulary`);
    }
    merges[i] = pair;
  }
  const dropout = o["dropout"];
  if (dropout !== undefined && dropout !== null && dropout !== 0) {
    r.fail(`${path}.dropout`, `BPE dropout ${JSON.stringify(dropout)} is not supported (only null or 0)`);
  }
  r.onlyDefault(o, "continuing_subword_prefix", path, [], "continuing_subword_prefix is not supported");
  r.onlyDefault(o, "end_of_word_suffix", path, [], "end_of_word_suffix is not supported");
  const unkRaw = o["unk_token"];
  const unkToken = unkRaw === undefined || unkRaw === null ? null : r.string(unkRaw, `${path}.unk_token`);
  const flag = (key: string): boolean => {
    const f = o[key];
    return f === undefined || f === null ? false : r.boolean(f, `${path}.${key}`);
  };
  return {
    type: "BPE",
    vocab,
    merges,
    unkToken,
    fuseUnk: flag("fuse_unk"),
    byteFallback: flag("byte_fallback"),
    ignoreMerges: flag("ignore_merges"),
  };
}

function parseTemplate(r: JsonReader, v: unknown, path: string): TemplatePiece[] {
  const list = r.array(v, path);
  return list.map((item, i) => {
    const p = `${path}[${i}]`;
    const o = r.object(item, p);
    if ("SpecialToken" in o) {
      const s = r.object(o["SpecialToken"], `${p}.SpecialToken`);
      return {
        kind: "special" as const,
        id: r.string(s["id"], `${p}.SpecialToken.id`),
        typeId: r.nonNegativeInt(s["type_id"], `${p}.SpecialToken.type_id`),
      };
    }
    if ("Sequence" in o) {
      const s = r.object(o["Sequence"], `${p}.Sequence`);
      const id = r.string(s["id"], `${p}.Sequence.id`);
      if (id !== "A" && id !== "B") r.fail(`${p}.Sequence.id`, `expected "A" or "B", got ${describe(id)}`);
      return {
        kind: "sequence" as const,
        sequence: id,
        typeId: r.nonNegativeInt(s["type_id"], `${p}.Sequence.type_id`),
      };
    }
    return r.fail(
      p,
      `expected {"SpecialToken": …} or {"Sequence": …}, got keys ${JSON.stringify(Object.keys(o))}`,
    );
  });
}

export function parsePostProcessor(r: JsonReader, v: unknown, path: string): TemplateProcessingSpec | null {
  if (v === null || v === undefined) return null;
  const o = r.object(v, path);
  r.type(o, path, "post-processor", ["TemplateProcessing"]);
  const single = parseTemplate(r, o["single"], `${path}.single`);
  const pair = parseTemplate(r, o["pair"], `${path}.pair`);
  const specialsObj = r.object(o["special_tokens"] ?? {}, `${path}.special_tokens`);
  const specialTokens = new Map<string, { ids: number[]; tokens: string[] }>();
  for (const [key, val] of Object.entries(specialsObj)) {
    const p = `${path}.special_tokens[${JSON.stringify(key)}]`;
    const s = r.object(val, p);
    const ids = r.array(s["ids"], `${p}.ids`).map((x, i) => r.nonNegativeInt(x, `${p}.ids[${i}]`));
    const tokens = r.array(s["tokens"], `${p}.tokens`).map((x, i) => r.string(x, `${p}.tokens[${i}]`));
    if (ids.length !== tokens.length) r.fail(p, `${ids.length} ids but ${tokens.length} tokens`);
    specialTokens.set(key, { ids, tokens });
  }
  for (const [name, pieces] of [
    ["single", single],
    ["pair", pair],
  ] as const) {
    pieces.forEach((piece, i) => {
      if (piece.kind === "special" && !specialTokens.has(piece.id)) {
        r.fail(
          `${path}.${name}[${i}].SpecialToken.id`,
          `${JSON.stringify(piece.id)} is not in special_tokens`,
        );
      }
    });
  }
  if (!single.some((p) => p.kind === "sequence" && p.sequence === "A")) {
    r.fail(`${path}.single`, "template has no $A sequence");
  }
  return { type: "TemplateProcessing", single, pair, specialTokens };
}

export function parseAddedTokens(r: JsonReader, v: unknown, path: string): AddedTokenSpec[] {
  if (v === undefined || v === null) return [];
  return r.array(v, path).map((item, i) => {
    const p = `${path}[${i}]`;
    const o = r.object(item, p);
    const content = r.string(o["content"], `${p}.content`);
    if (content.length === 0) r.fail(`${p}.content`, "empty added token");
    const special = o["special"] === undefined ? false : r.boolean(o["special"], `${p}.special`);
    for (const key of ["lstrip", "rstrip", "single_word"]) {
      if (o[key] !== undefined && r.boolean(o[key], `${p}.${key}`)) {
        r.fail(`${p}.${key}`, `added token ${JSON.stringify(content)}: ${key}=true is not supported`);
      }
    }
    // `tokenizers` defaults `normalized` to !special; normalized added tokens are matched after
    // normalization, which this package does not implement.
    const normalized =
      o["normalized"] === undefined ? !special : r.boolean(o["normalized"], `${p}.normalized`);
    if (normalized) {
      r.fail(`${p}.normalized`, `added token ${JSON.stringify(content)}: normalized=true is not supported`);
    }
    return { id: r.nonNegativeInt(o["id"], `${p}.id`), content, special };
  });
}

export function parseTokenizerJson(raw: unknown, file = "tokenizer.json"): TokenizerSpec {
  const r = new JsonReader(file);
  const root = r.object(raw, "$");
  const preTokenizer = root["pre_tokenizer"];
  if (preTokenizer !== null && preTokenizer !== undefined) {
    const o = r.object(preTokenizer, "$.pre_tokenizer");
    const t = o["type"];
    r.fail(
      "$.pre_tokenizer.type",
      `unsupported pre-tokenizer type ${JSON.stringify(t)} (this package implements only pre_tokenizer: null)`,
      typeof t === "string" ? t : undefined,
    );
  }
  for (const key of ["truncation", "padding"]) {
    if (root[key] !== null && root[key] !== undefined) {
      r.fail(
        `$.${key}`,
        `a ${key} section in tokenizer.json is not supported; pass ${key} options to encodeBatch()`,
      );
    }
  }
  return {
    addedTokens: parseAddedTokens(r, root["added_tokens"], "$.added_tokens"),
    normalizer: parseNormalizer(r, root["normalizer"], "$.normalizer"),
    model: parseModel(r, root["model"], "$.model"),
    postProcessor: parsePostProcessor(r, root["post_processor"], "$.post_processor"),
    decoder: parseDecoder(r, root["decoder"], "$.decoder"),
  };
}
