// Encode throughput of @webvlm/tokenizer against @huggingface/tokenizers and mistral-tokenizer-js,
// in one process on the same inputs:
//   - one long mixed-language document (1 MiB and 4 MiB of UTF-8, built deterministically from
//     fixtures/tokenizer/corpus.jsonl) — the model has no pre-tokenizer, so it is one BPE sequence;
//   - a batch of short Idefics2 chat prompts rendered with the tokenizer's chat template.
// Prints a table and writes bench/results.json. Run: pnpm --filter @webvlm/tokenizer bench
// (-- --quick: 1 MiB and 500 prompts only; -- --full: the other libraries on 4 MiB as well, ~3 min more).

import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import mistral from "mistral-tokenizer-js";
import { type ChatMessage, Tokenizer } from "../src/index.js";

const FIXTURES = fileURLToPath(new URL("../../../fixtures/tokenizer/", import.meta.url));
const RESULTS = fileURLToPath(new URL("./results.json", import.meta.url));
const ADDED = ["<unk>", "<s>", "</s>", "<fake_token_around_image>", "<image>", "<end_of_utterance>"];
const MiB = 1 << 20;

/** mulberry32: a tiny seeded PRNG so the inputs are the same on every run and machine. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const corpus = readFileSync(`${FIXTURES}corpus.jsonl`, "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l) as { text: string; category: string });
// Texts with added-token strings are left out: mistral-tokenizer-js has no added tokens, so all
// three libraries then tokenize the same thing.
const plain = corpus.map((c) => c.text).filter((t) => t !== "" && !ADDED.some((a) => t.includes(a)));

/** Corpus texts in seeded random order, joined by newlines or spaces, until `bytes` of UTF-8. */
function document(bytes: number, seed: number): string {
  const next = rng(seed);
  const parts: string[] = [];
  let size = 0;
  while (size < bytes) {
    const t = plain[Math.floor(next() * plain.length)]!;
    const sep = next() < 0.7 ? "\n" : " ";
    parts.push(t, sep);
    size += Buffer.byteLength(t) + 1;
  }
  return parts.join("");
}

function chatPrompts(count: number, seed: number): ChatMessage[][] {
  const next = rng(seed);
  const pick = (): string => plain[Math.floor(next() * plain.length)]!;
  return Array.from({ length: count }, () => {
    const turns: ChatMessage[] = [
      {
        role: "user",
        content:
          next() < 0.5
            ? [{ type: "image" }, { type: "text", text: pick() }]
            : [{ type: "text", text: pick() }],
      },
    ];
    if (next() < 0.5) {
      turns.push({ role: "assistant", content: [{ type: "text", text: pick() }] });
      turns.push({ role: "user", content: [{ type: "text", text: pick() }] });
    }
    return turns;
  });
}

interface Measurement {
  library: string;
  input: string;
  bytes: number;
  tokens: number;
  runs: number;
  medianMs: number;
  mbPerS: number;
  tokensPerS: number;
  idsMatchOurs: boolean | null;
  note?: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median wall time of `runs` calls of `fn`, after one call of `warm` (a small input, to JIT-compile). */
function time<T>(runs: number, warm: () => unknown, fn: () => T): { ms: number; result: T } {
  warm();
  const ms: number[] = [];
  let result: T | undefined;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    result = fn();
    ms.push(performance.now() - t0);
  }
  return { ms: median(ms), result: result! };
}

const sameIds = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

async function main(): Promise<void> {
  const ours = await Tokenizer.fromDirectory(FIXTURES);
  const hf = new HfTokenizer(
    JSON.parse(readFileSync(`${FIXTURES}tokenizer.json`, "utf8")),
    JSON.parse(readFileSync(`${FIXTURES}tokenizer_config.json`, "utf8")),
  );
  const quick = process.argv.includes("--quick");
  const results: Measurement[] = [];
  const record = (
    library: string,
    input: string,
    bytes: number,
    runs: number,
    warm: () => unknown,
    fn: () => number[][],
    reference: number[][] | null,
    note?: string,
  ): number[][] => {
    const { ms, result } = time(runs, warm, fn);
    return push(library, input, bytes, runs, ms, result, reference, note);
  };
  const push = (
    library: string,
    input: string,
    bytes: number,
    runs: number,
    ms: number,
    result: number[][],
    reference: number[][] | null,
    note?: string,
  ): number[][] => {
    const tokens = result.reduce((n, ids) => n + ids.length, 0);
    const m: Measurement = {
      library,
      input,
      bytes,
      tokens,
      runs,
      medianMs: Math.round(ms * 10) / 10,
      mbPerS: Math.round((bytes / MiB / (ms / 1000)) * 100) / 100,
      tokensPerS: Math.round(tokens / (ms / 1000)),
      idsMatchOurs: reference === null ? null : result.every((ids, i) => sameIds(ids, reference[i]!)),
      ...(note === undefined ? {} : { note }),
    };
    results.push(m);
    process.stderr.write(`  ${library.padEnd(26)} ${input.padEnd(24)} ${m.medianMs} ms\n`);
    return result;
  };

  const full = process.argv.includes("--full");
  const small = document(64 * 1024, 99);
  const docs = new Map<number, string>();
  for (const size of quick ? [MiB] : [MiB, 4 * MiB]) docs.set(size, document(size, 20261126));

  // Ours at 1 and 4 MiB, interleaved round by round so a change in machine load hits both sizes.
  ours.encode(small);
  const times = new Map<number, number[]>([...docs.keys()].map((k) => [k, []]));
  const ourIds = new Map<number, number[]>();
  const rounds = 5;
  for (let r = 0; r < rounds; r++) {
    for (const [size, text] of docs) {
      const t0 = performance.now();
      const ids = ours.encode(text).ids;
      times.get(size)!.push(performance.now() - t0);
      ourIds.set(size, ids);
    }
  }
  for (const [size, text] of docs) {
    const label = `document ${size / MiB} MiB`;
    const bytes = Buffer.byteLength(text);
    const mine = [ourIds.get(size)!];
    push("@webvlm/tokenizer", label, bytes, rounds, median(times.get(size)!), mine, null);
    // The other libraries take 10-100x longer; by default they run on 1 MiB only.
    if (size > MiB && !full) continue;
    record(
      "@huggingface/tokenizers",
      label,
      bytes,
      1,
      () => hf.encode(small),
      () => [hf.encode(text).ids],
      mine,
    );
    record(
      "mistral-tokenizer-js",
      label,
      bytes,
      1,
      () => mistral.encode(small),
      () => [mistral.encode(text) as number[]],
      mine,
      "no added tokens; same ids expected on this text",
    );
  }

  const prompts = chatPrompts(quick ? 500 : 2000, 7).map((m) =>
    ours.applyChatTemplate(m, { addGenerationPrompt: true }),
  );
  const promptBytes = prompts.reduce((n, p) => n + Buffer.byteLength(p), 0);
  const label = `${prompts.length} chat prompts`;
  const ourBatch = (): number[][] => ours.encodeBatch(prompts).inputIds;
  const hfBatch = (): number[][] => prompts.map((p) => hf.encode(p).ids);
  const mistralBatch = (): number[][] => prompts.map((p) => mistral.encode(p) as number[]);
  const mine = record("@webvlm/tokenizer", label, promptBytes, 9, ourBatch, ourBatch, null);
  record("@huggingface/tokenizers", label, promptBytes, 5, hfBatch, hfBatch, mine);
  record(
    "mistral-tokenizer-js",
    label,
    promptBytes,
    3,
    mistralBatch,
    mistralBatch,
    mine,
    "encodes <image>/<end_of_utterance> as plain text, so its ids differ",
  );

  const find = (lib: string, input: string): Measurement =>
    results.find((r) => r.library === lib && r.input === input)!;
  const speedup = (input: string): number =>
    Math.round(
      (find("@huggingface/tokenizers", input).medianMs / find("@webvlm/tokenizer", input).medianMs) * 10,
    ) / 10;
  const summary: Record<string, number> = {
    speedupVsHfDocument1MiB: speedup("document 1 MiB"),
    speedupVsHfChat: speedup(label),
  };
  if (!quick) {
    const t1 = find("@webvlm/tokenizer", "document 1 MiB");
    const t4 = find("@webvlm/tokenizer", "document 4 MiB");
    if (full) summary["speedupVsHfDocument4MiB"] = speedup("document 4 MiB");
    // 4.0 is linear; an O(n log n) heap adds a little, a quadratic algorithm would give ~16.
    summary["timeRatio4MiBOver1MiB"] = Math.round((t4.medianMs / t1.medianMs) * 100) / 100;
    summary["bytesRatio4MiBOver1MiB"] = Math.round((t4.bytes / t1.bytes) * 100) / 100;
  }

  const header = ["library", "input", "MB/s", "tokens/s", "median ms", "runs", "ids = ours"];
  const rows = results.map((r) => [
    r.library,
    r.input,
    r.mbPerS.toFixed(2),
    r.tokensPerS.toLocaleString("en-US"),
    r.medianMs.toFixed(1),
    String(r.runs),
    r.idsMatchOurs === null ? "-" : r.idsMatchOurs ? "yes" : "no",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of rows) console.log(line(r));
  console.log(summary);

  const cpus = os.cpus();
  writeFileSync(
    RESULTS,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        cpu: `${cpus[0]?.model ?? "unknown"} x${cpus.length}`,
        loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
        note: "MB = MiB of UTF-8 input; median of the timed runs after one warm-up run",
        summary,
        results,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`wrote ${RESULTS}`);
}

await main();
