// `tokenizer_config.json` and `special_tokens_map.json` (transformers' companions of
// tokenizer.json): special-token names, padding side, chat template.

import { JsonReader } from "./spec.js";

export interface ChatTemplateEntry {
  name: string;
  template: string;
}

export interface TokenizerConfig {
  bosToken: string | null;
  eosToken: string | null;
  unkToken: string | null;
  padToken: string | null;
  additionalSpecialTokens: string[];
  addBosToken: boolean | null;
  addEosToken: boolean | null;
  paddingSide: "left" | "right";
  truncationSide: "left" | "right";
  cleanUpTokenizationSpaces: boolean;
  /** null when the config has none or a value too large to be a real limit */
  modelMaxLength: number | null;
  /** named templates; a plain string template is named "default" */
  chatTemplates: ChatTemplateEntry[];
  /** id -> content from `added_tokens_decoder`, checked against tokenizer.json by the loader */
  addedTokensDecoder: Map<number, { content: string; special: boolean }>;
}

/** A special token given as "text" or as an AddedToken object {"content": "text", ...}. */
function tokenName(r: JsonReader, v: unknown, path: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === "string") return v;
  const o = r.object(v, path);
  return r.string(o["content"], `${path}.content`);
}

function side(r: JsonReader, v: unknown, path: string): "left" | "right" {
  if (v === undefined || v === null) return "right";
  if (v !== "left" && v !== "right") r.fail(path, `expected "left" or "right", got ${JSON.stringify(v)}`);
  return v;
}

function optionalBool(r: JsonReader, v: unknown, path: string): boolean | null {
  return v === undefined || v === null ? null : r.boolean(v, path);
}

/**
 * Merge both files. As in transformers' from_pretrained, an entry of special_tokens_map.json
 * overrides the same entry of tokenizer_config.json.
 */
export function parseTokenizerConfig(
  config: unknown,
  specialTokensMap: unknown,
  files: { config: string; specialTokensMap: string },
): TokenizerConfig {
  const rc = new JsonReader(files.config);
  const rs = new JsonReader(files.specialTokensMap);
  const c = config === undefined || config === null ? {} : rc.object(config, "$");
  const s =
    specialTokensMap === undefined || specialTokensMap === null ? {} : rs.object(specialTokensMap, "$");

  const pick = (key: string): string | null => {
    if (s[key] !== undefined && s[key] !== null) return tokenName(rs, s[key], `$.${key}`);
    return tokenName(rc, c[key], `$.${key}`);
  };
  const additional = (r: JsonReader, o: Record<string, unknown>): string[] | null => {
    const v = o["additional_special_tokens"];
    if (v === undefined || v === null) return null;
    return r
      .array(v, "$.additional_special_tokens")
      .map((t, i) => tokenName(r, t, `$.additional_special_tokens[${i}]`) ?? "");
  };

  const chatTemplates: ChatTemplateEntry[] = [];
  const ct = c["chat_template"];
  if (typeof ct === "string") chatTemplates.push({ name: "default", template: ct });
  else if (Array.isArray(ct)) {
    ct.forEach((entry, i) => {
      const o = rc.object(entry, `$.chat_template[${i}]`);
      chatTemplates.push({
        name: rc.string(o["name"], `$.chat_template[${i}].name`),
        template: rc.string(o["template"], `$.chat_template[${i}].template`),
      });
    });
  } else if (ct !== undefined && ct !== null) {
    rc.fail("$.chat_template", "expected a string or a list of {name, template}");
  }

  const addedTokensDecoder = new Map<number, { content: string; special: boolean }>();
  const atd = c["added_tokens_decoder"];
  if (atd !== undefined && atd !== null) {
    for (const [key, val] of Object.entries(rc.object(atd, "$.added_tokens_decoder"))) {
      const p = `$.added_tokens_decoder[${JSON.stringify(key)}]`;
      if (!/^\d+$/.test(key)) rc.fail(p, "key is not a token id");
      const o = rc.object(val, p);
      addedTokensDecoder.set(Number(key), {
        content: rc.string(o["content"], `${p}.content`),
        special: o["special"] === undefined ? false : rc.boolean(o["special"], `${p}.special`),
      });
    }
  }

  const mml = c["model_max_length"];
  const modelMaxLength = typeof mml === "number" && Number.isSafeInteger(mml) && mml > 0 ? mml : null;
  const cleanUp = c["clean_up_tokenization_spaces"];

  return {
    bosToken: pick("bos_token"),
    eosToken: pick("eos_token"),
    unkToken: pick("unk_token"),
    padToken: pick("pad_token"),
    additionalSpecialTokens: additional(rs, s) ?? additional(rc, c) ?? [],
    addBosToken: optionalBool(rc, c["add_bos_token"], "$.add_bos_token"),
    addEosToken: optionalBool(rc, c["add_eos_token"], "$.add_eos_token"),
    paddingSide: side(rc, c["padding_side"], "$.padding_side"),
    truncationSide: side(rc, c["truncation_side"], "$.truncation_side"),
    cleanUpTokenizationSpaces:
      cleanUp === undefined || cleanUp === null
        ? false
        : rc.boolean(cleanUp, "$.clean_up_tokenization_spaces"),
    modelMaxLength,
    chatTemplates,
    addedTokensDecoder,
  };
}
