import { spawnSync } from "node:child_process";
import { cp, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ChatError, checkModelDir } from "./session.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const TINY = "fixtures/idefics2-tiny";
const TOKENIZER = "fixtures/tokenizer";
const IMAGE = `${TINY}/images/img_a1.png`;

/** Runs the app as `pnpm chat` does (same node flags, from the workspace root). */
function chat(args: string[], input?: string) {
  const r = spawnSync(
    process.execPath,
    [
      "--conditions=source",
      "--import",
      "tsx",
      "--import",
      "./tools/wgsl/register.mjs",
      "apps/chat/src/main.ts",
      ...args,
    ],
    {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, INIT_CWD: ROOT },
      timeout: 120_000,
      ...(input === undefined ? {} : { input }),
    },
  );
  // Dawn prints two adapter warnings on lavapipe; everything else on stderr is ours.
  const errors = r.stderr.split("\n").filter((l) => l.trim() && !l.startsWith("Warning: maxDynamic"));
  return { code: r.status, stdout: r.stdout, errors };
}

const temps: string[] = [];
afterAll(async () => {
  for (const t of temps) await rm(t, { recursive: true, force: true });
});

describe("pnpm chat", () => {
  it("answers a one-shot prompt with an image, streaming text, and exits 0", () => {
    const r = chat(["--model", TINY, "--image", IMAGE, "--max-new-tokens", "6", "Describe it."]);
    expect(r.code).toBe(0);
    // The tiny random model answers with tokens that are mostly not characters: <id_N>.
    const answer = r.stdout.trim();
    expect(answer.length).toBeGreaterThan(0);
    expect(answer).toMatch(/^(<id_\d+>|[ -~])+$/);
    expect(r.errors.join("\n")).toMatch(/\[\d+ prompt tokens, 6 new \(length\), first token [\d.]+ s/);
  });

  it("is deterministic under greedy decoding and honours sampling options", () => {
    const a = chat(["--model", TINY, "--image", IMAGE, "--max-new-tokens", "4", "Hi"]);
    const b = chat(["--model", TINY, "--image", IMAGE, "--max-new-tokens", "4", "Hi"]);
    expect(a.stdout).toBe(b.stdout);
    const s = chat([
      "--model",
      TINY,
      "--image",
      IMAGE,
      "--max-new-tokens",
      "4",
      "--temperature",
      "1.5",
      "--top-k",
      "50",
      "--seed",
      "7",
      "Hi",
    ]);
    expect(s.code).toBe(0);
  });

  it("holds a conversation: /image, a turn, /tokens, /reset, /quit", () => {
    const r = chat(
      ["--model", TINY, "--max-new-tokens", "3"],
      `/image ${IMAGE}\nWhat is it?\n/tokens\n/reset\n/tokens\n/quit\n`,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\(attached .*img_a1\.png\)/);
    expect(r.stdout).toMatch(/assistant> \S+/);
    expect(r.stdout).toMatch(/last prompt [1-9]\d* tokens, 3 generated/);
    expect(r.stdout).toMatch(/conversation cleared[\s\S]*last prompt 0 tokens, 0 generated/);
  });

  const oneLineError = (r: ReturnType<typeof chat>, pattern: RegExp) => {
    expect(r.code).not.toBe(0);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(pattern);
  };

  it("a missing model directory: one clear line", () => {
    oneLineError(
      chat(["--model", "fixtures/nope", "hi"]),
      /^error: model directory .*fixtures\/nope does not exist$/,
    );
  });

  it("an incomplete model directory names what is missing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "chat-"));
    temps.push(dir);
    await cp(join(ROOT, TINY, "config.json"), join(dir, "config.json"));
    oneLineError(
      chat(["--model", dir, "hi"]),
      /^error: model directory .* is incomplete: missing model\.safetensors .*preprocessor_config\.json, tokenizer\.json$/,
    );
  });

  /** The tiny model (vocab 1000) beside the real Idefics2 tokenizer (32003 tokens). */
  async function tinyWithRealTokenizer(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "chat-"));
    temps.push(dir);
    for (const f of ["config.json", "preprocessor_config.json"]) await cp(join(ROOT, TINY, f), join(dir, f));
    await symlink(join(ROOT, TINY, "model.safetensors"), join(dir, "model.safetensors"));
    for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
      await cp(join(ROOT, TOKENIZER, f), join(dir, f));
    return dir;
  }

  it("model-dir validation: a tokenizer larger than the model's vocabulary is refused before loading", async () => {
    const dir = await tinyWithRealTokenizer();
    const check = checkModelDir(dir);
    await expect(check).rejects.toThrow(ChatError);
    await expect(check).rejects.toThrow(
      /tokenizer\.json has a vocabulary of 32003 tokens \(ids up to 32002\), which exceeds the model's text_config\.vocab_size 1000/,
    );
    // The fixture directory itself passes: its character tokenizer fits.
    const ok = await checkModelDir(join(ROOT, TINY));
    expect(ok.tokenizer.kind).toBe("char");
    expect(ok.config.text_config.vocab_size).toBe(1000);
  });

  it("a tokenizer larger than the model's vocabulary: one clear line naming both sizes", async () => {
    const dir = await tinyWithRealTokenizer();
    oneLineError(
      chat(["--model", dir, "hi"]),
      /^error: model directory .*: tokenizer\.json has a vocabulary of 32003 tokens .*text_config\.vocab_size 1000/,
    );
  });

  it("an unreadable image: one clear line", () => {
    oneLineError(
      chat(["--model", TINY, "--image", `${TINY}/missing.png`, "hi"]),
      /^error: cannot read image .*missing\.png/,
    );
    oneLineError(
      chat(["--model", TINY, "--image", `${TINY}/config.json`, "hi"]),
      /^error: .*config\.json: cannot decode image/,
    );
  });

  it("a prompt longer than the context: one clear line", () => {
    oneLineError(
      chat(["--model", TINY, "--max-new-tokens", "10", "x".repeat(600)]),
      /^error: the prompt is \d+ tokens; with --max-new-tokens 10 that exceeds the model's context of 512 tokens$/,
    );
  });
});
