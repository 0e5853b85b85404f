#!/usr/bin/env node
// webvlm-tokenize: JSON lines in, JSON lines out, for debugging prompts and for checking the
// tokenizer from outside (any language can drive it through a pipe).

import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { Tokenizer } from "./tokenizer.js";

const USAGE = `usage: webvlm-tokenize --tokenizer <dir> [--no-special] [--decode]

Reads JSON lines on stdin, writes one JSON line per input line on stdout.
  encode (default): {"text": "..."}  ->  {"text", "ids", "tokens"}
  --decode:         {"ids": [...]}   ->  {"ids", "text"}
  --no-special      encode without the template's <s>; decode skipping special tokens
  --tokenizer <dir> folder with tokenizer.json (+ tokenizer_config.json, special_tokens_map.json)
`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  let values: { tokenizer?: string; "no-special"?: boolean; decode?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        tokenizer: { type: "string", short: "t" },
        "no-special": { type: "boolean", default: false },
        decode: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.tokenizer === undefined) throw new UsageError("--tokenizer <dir> is required");
  const tokenizer = await Tokenizer.fromDirectory(values.tokenizer);
  const special = !values["no-special"];

  const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === "") continue;
    let input: unknown;
    try {
      input = JSON.parse(line);
    } catch (e) {
      throw new Error(`stdin line ${lineNo}: not JSON: ${(e as Error).message}`);
    }
    const obj = (typeof input === "object" && input !== null ? input : {}) as Record<string, unknown>;
    let out: unknown;
    if (values.decode) {
      const ids = obj["ids"];
      if (!Array.isArray(ids) || !ids.every((x) => typeof x === "number")) {
        throw new Error(`stdin line ${lineNo}: expected {"ids": [numbers]}`);
      }
      try {
        out = { ids, text: tokenizer.decode(ids, { skipSpecialTokens: !special }) };
      } catch (e) {
        throw new Error(`stdin line ${lineNo}: ${(e as Error).message}`);
      }
    } else {
      const text = obj["text"];
      if (typeof text !== "string") throw new Error(`stdin line ${lineNo}: expected {"text": string}`);
      const enc = tokenizer.encode(text, { addSpecialTokens: special });
      out = { text, ids: enc.ids, tokens: enc.tokens };
    }
    if (!process.stdout.write(`${JSON.stringify(out)}\n`)) {
      await new Promise<void>((resolve) => process.stdout.once("drain", () => resolve()));
    }
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const usage = e instanceof UsageError;
    process.stderr.write(`webvlm-tokenize: ${(e as Error).message}\n${usage ? USAGE : ""}`);
    process.exitCode = usage ? 2 : 1;
  },
);
