// Shared by the tests: fixture locations and loaders. Not exported from the package.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** fixtures/tokenizer/, found relative to this file (packages/tokenizer/src). */
export const FIXTURE_DIR = fileURLToPath(new URL("../../../fixtures/tokenizer/", import.meta.url));

export function readFixtureJson(name: string): unknown {
  return JSON.parse(readFileSync(`${FIXTURE_DIR}${name}`, "utf8"));
}

export function readJsonl<T>(name: string): T[] {
  return readFileSync(`${FIXTURE_DIR}${name}`, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as T);
}

export interface CorpusEntry {
  text: string;
  ids: number[];
  ids_no_special: number[];
  tokens: string[];
  decoded_skip_special: string;
  decoded_raw: string;
  category: string;
}

export const ADDED_TOKENS = [
  "<unk>",
  "<s>",
  "</s>",
  "<fake_token_around_image>",
  "<image>",
  "<end_of_utterance>",
];
