import { readFile } from "node:fs/promises";
import { join } from "node:path";

/** The `token_ids` section of a fixture manifest (fixtures/idefics2-tiny/manifest.json). */
export interface FixtureTokenIds {
  pad_token_id: number;
  bos_token_id: number;
  eos_token_id: number;
  unk_token_id?: number;
  fake_token_around_image: number;
  image: number;
  end_of_utterance: number;
  /** e.g. "printable ASCII character c -> 3 + (ord(c) - 32); BOS prepended; left padding with pad_token_id" */
  char_token_rule: string;
}

export interface FixtureTensorEntry {
  file: string;
  shape: number[];
  dtype: string;
  description?: string;
}

export interface FixtureCase {
  prompts: string[];
  /** Image names (keys of `images`) per prompt. */
  images: string[][];
  do_image_splitting: boolean;
  generate?: { max_new_tokens: number; do_sample?: boolean; eos_token_id?: number | number[] | null };
  loss?: number;
  grad_params?: string[];
  [key: string]: unknown;
}

export interface FixtureManifest {
  fixture_set?: string;
  token_ids: FixtureTokenIds;
  images: Record<string, { file: string; width?: number; height?: number; mode?: string }>;
  tensors: Record<string, FixtureTensorEntry>;
  cases: Record<string, FixtureCase>;
  imageproc_direct?: { entries: string[] };
  [key: string]: unknown;
}

/** A fixture manifest is missing, unreadable or lacks a section this code needs. */
export class FixtureError extends Error {
  override name = "FixtureError";
}

/** Reads `<dir>/manifest.json`, checking the sections every reader relies on. */
export async function readFixtureManifest(dir: string): Promise<FixtureManifest> {
  const path = join(dir, "manifest.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new FixtureError(`${path}: cannot read (${(cause as Error).message})`, { cause });
  }
  let m: FixtureManifest;
  try {
    m = JSON.parse(text) as FixtureManifest;
  } catch (cause) {
    throw new FixtureError(`${path}: not valid JSON (${(cause as Error).message})`, { cause });
  }
  for (const key of ["token_ids", "tensors", "cases", "images"] as const) {
    if (typeof m[key] !== "object" || m[key] === null) throw new FixtureError(`${path}: no "${key}" section`);
  }
  return m;
}

const RULE = /printable ASCII character c -> (\d+) \+ \(ord\(c\) - 32\)/;

/**
 * The fixtures' character-level tokenizer, with the ids of the manifest's `token_ids`: printable
 * ASCII `c` → offset + (ord(c) − 32) (the offset is read from `char_token_rule`), the special tokens
 * at their listed ids, BOS prepended, anything else → unk.
 */
export class FixtureCharTokenizer {
  readonly padTokenId: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly unkTokenId: number;
  private readonly offset: number;
  private readonly specials: Map<string, number>;
  private readonly byLength: string[];
  private readonly idToSpecial: Map<number, string>;

  constructor(ids: FixtureTokenIds) {
    const rule = RULE.exec(ids.char_token_rule ?? "");
    if (!rule || !/BOS prepended/.test(ids.char_token_rule)) {
      throw new FixtureError(
        `token_ids.char_token_rule ${JSON.stringify(ids.char_token_rule)} is not the supported rule ("printable ASCII character c -> K + (ord(c) - 32); BOS prepended; …")`,
      );
    }
    this.offset = Number(rule[1]);
    for (const k of [
      "pad_token_id",
      "bos_token_id",
      "eos_token_id",
      "fake_token_around_image",
      "image",
      "end_of_utterance",
    ] as const) {
      if (!Number.isInteger(ids[k]))
        throw new FixtureError(`token_ids.${k} must be an integer, got ${JSON.stringify(ids[k])}`);
    }
    this.padTokenId = ids.pad_token_id;
    this.bosTokenId = ids.bos_token_id;
    this.eosTokenId = ids.eos_token_id;
    this.unkTokenId = ids.unk_token_id ?? ids.pad_token_id;
    this.specials = new Map([
      ["<unk>", this.unkTokenId],
      ["<s>", ids.bos_token_id],
      ["</s>", ids.eos_token_id],
      ["<fake_token_around_image>", ids.fake_token_around_image],
      ["<image>", ids.image],
      ["<end_of_utterance>", ids.end_of_utterance],
    ]);
    this.byLength = [...this.specials.keys()].sort((a, b) => b.length - a.length);
    this.idToSpecial = new Map([...this.specials].map(([t, id]) => [id, t]));
    this.idToSpecial.set(this.padTokenId, this.idToSpecial.get(this.padTokenId) ?? "<pad>");
  }

  encode(text: string): number[] {
    const out = [this.bosTokenId];
    let i = 0;
    outer: while (i < text.length) {
      if (text[i] === "<") {
        for (const tok of this.byLength) {
          if (text.startsWith(tok, i)) {
            out.push(this.specials.get(tok)!);
            i += tok.length;
            continue outer;
          }
        }
      }
      const c = text.charCodeAt(i);
      out.push(c >= 32 && c <= 126 ? this.offset + c - 32 : this.unkTokenId);
      i++;
    }
    return out;
  }

  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    let s = "";
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const special = this.idToSpecial.get(id);
      if (special !== undefined) {
        if (!options.skipSpecialTokens) s += special;
      } else if (id >= this.offset && id <= this.offset + 94) s += String.fromCharCode(id - this.offset + 32);
      else if (!options.skipSpecialTokens) s += `<id_${id}>`; // ids that stand for no character
    }
    return s;
  }

  tokenToId(token: string): number | undefined {
    if (token === "<pad>") return this.padTokenId;
    const id = this.specials.get(token);
    if (id !== undefined) return id;
    if (token.length === 1 && token.charCodeAt(0) >= 32 && token.charCodeAt(0) <= 126)
      return this.offset + token.charCodeAt(0) - 32;
    return undefined;
  }
}
