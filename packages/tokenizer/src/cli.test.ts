// End to end: spawn the CLI from source (through tsx) and talk JSON lines to it.

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { type CorpusEntry, FIXTURE_DIR, readJsonl } from "./test-helpers.js";

const CLI = fileURLToPath(new URL("./cli.ts", import.meta.url));
const PKG = fileURLToPath(new URL("..", import.meta.url));

function cli(args: string[], input: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", CLI, ...args], {
    cwd: PKG,
    input,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const lines = (s: string): unknown[] =>
  s
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));

const corpus = readJsonl<CorpusEntry>("corpus.jsonl");

describe("webvlm-tokenize", () => {
  it("encodes every corpus line (with and without <s>) and decodes them back", () => {
    const input = corpus.map((c) => JSON.stringify({ text: c.text })).join("\n");
    const enc = cli(["--tokenizer", FIXTURE_DIR], `${input}\n`);
    expect(enc.stderr).toBe("");
    expect(enc.status).toBe(0);
    expect(lines(enc.stdout)).toEqual(corpus.map((c) => ({ text: c.text, ids: c.ids, tokens: c.tokens })));

    const noSpecial = cli(["--tokenizer", FIXTURE_DIR, "--no-special"], input);
    expect(lines(noSpecial.stdout).map((o) => (o as { ids: number[] }).ids)).toEqual(
      corpus.map((c) => c.ids_no_special),
    );

    const decodeInput = corpus.map((c) => JSON.stringify({ ids: c.ids })).join("\n");
    const dec = cli(["-t", FIXTURE_DIR, "--decode"], decodeInput);
    expect(lines(dec.stdout)).toEqual(corpus.map((c) => ({ ids: c.ids, text: c.decoded_raw })));
    const decSkip = cli(["-t", FIXTURE_DIR, "--decode", "--no-special"], decodeInput);
    expect(lines(decSkip.stdout).map((o) => (o as { text: string }).text)).toEqual(
      corpus.map((c) => c.decoded_skip_special),
    );
  });

  it("fails with a usage message without --tokenizer, and names the bad stdin line", () => {
    const noDir = cli([], "");
    expect(noDir.status).toBe(2);
    expect(noDir.stderr).toMatch(/--tokenizer <dir> is required/);

    const bad = cli(["--tokenizer", FIXTURE_DIR], '{"text": "ok"}\n{"txt": 1}\n');
    expect(bad.status).toBe(1);
    expect(lines(bad.stdout)).toHaveLength(1);
    expect(bad.stderr).toMatch(/stdin line 2: expected \{"text": string\}/);

    const badId = cli(["--tokenizer", FIXTURE_DIR, "--decode"], '{"ids": [1, 40000]}\n');
    expect(badId.status).toBe(1);
    expect(badId.stderr).toMatch(/stdin line 1: decode: ids\[1\] = 40000 is not a token id/);
  });

  it("reports an unloadable tokenizer folder", () => {
    const r = cli(["--tokenizer", "/nonexistent-dir"], "");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\/nonexistent-dir\/tokenizer\.json: cannot read/);
  });
});
