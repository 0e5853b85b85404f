import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { badSampleReport } from "../bad-samples.js";
import { shardStream } from "../shard-stream.js";
import { take } from "../stream.js";
import type { Sample } from "../types.js";
import { jsonlSource } from "./jsonl.js";

const dir = mkdtempSync(join(tmpdir(), "webvlm-jsonl-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

mkdirSync(join(dir, "images"));
writeFileSync(join(dir, "images", "a.png"), new Uint8Array([1, 2, 3]));
writeFileSync(join(dir, "images", "b.png"), new Uint8Array([4, 5]));
const lines = [
  JSON.stringify({
    images: ["images/a.png"],
    texts: [{ user: "What is it?", assistant: "A cat.", source: "mine" }],
  }),
  "",
  JSON.stringify({ images: [null, "images/b.png"], texts: ["Intro ünïcödé", null] }),
  "{not json",
  JSON.stringify({ image: "images/a.png", caption: "a caption" }),
  JSON.stringify({ image: "images/gone.png", text: "missing file" }),
  JSON.stringify([1, 2]),
  JSON.stringify({ images: [], texts: [{ user: "text only?", assistant: "yes" }] }),
];
const file = join(dir, "data.jsonl");
writeFileSync(file, lines.join("\n")); // no trailing newline on the last line

describe("jsonlSource", () => {
  it("reads conversations, interleaved documents and pairs with images from the folder", async () => {
    const out = await take(shardStream(jsonlSource([file], { name: "j" })));
    expect(out).toEqual([
      {
        kind: "conversation",
        id: "j/data.jsonl:1",
        images: [{ bytes: new Uint8Array([1, 2, 3]), path: "images/a.png" }],
        turns: [{ user: "What is it?", assistant: "A cat.", source: "mine" }],
      },
      {
        kind: "interleaved",
        id: "j/data.jsonl:3",
        segments: [
          { type: "text", text: "Intro ünïcödé" },
          { type: "image", image: { bytes: new Uint8Array([4, 5]), path: "images/b.png" } },
        ],
      },
      {
        kind: "interleaved",
        id: "j/data.jsonl:5",
        segments: [
          { type: "image", image: { bytes: new Uint8Array([1, 2, 3]), path: "images/a.png" } },
          { type: "text", text: "a caption" },
        ],
      },
      {
        kind: "conversation",
        id: "j/data.jsonl:8",
        images: [],
        turns: [{ user: "text only?", assistant: "yes", source: null }],
      },
    ] satisfies Sample[]);
  });

  it("counts bad lines with the line number and the reason", async () => {
    const s = shardStream(jsonlSource([file], { name: "j" }));
    await take(s);
    const report = badSampleReport(s.state());
    expect(report.total).toBe(3);
    expect(report.byReason).toEqual({ "parse-error": 1, "missing-image-file": 1, schema: 1 });
    expect(report.examples.map((e) => e.id)).toEqual(["j/data.jsonl:4", "j/data.jsonl:6", "j/data.jsonl:7"]);
    expect(report.examples[1].detail).toMatch(/images\/gone.png \(ENOENT\)/);
  });

  it("resumes from a byte offset, and re-reads a shuffle buffer by offset", async () => {
    const many = join(dir, "many.jsonl");
    writeFileSync(
      many,
      `${Array.from({ length: 40 }, (_, i) => JSON.stringify({ image: "images/a.png", text: `line ${i} ${"é".repeat(i % 5)}` })).join("\n")}\n`,
    );
    const make = () => shardStream(jsonlSource([many, file]), { seed: 2, shuffleBuffer: 6 });
    const full = (await take(make())).map((x) => x.id);
    expect(full).toHaveLength(44);
    for (const k of [1, 7, 20, 39, 43]) {
      const s = make();
      const head = (await take(s, k)).map((x) => x.id);
      await s.close(); // the reader holds the file open until closed or finished
      const resumed = make();
      resumed.restore(JSON.parse(JSON.stringify(s.state())));
      expect([...head, ...(await take(resumed)).map((x) => x.id)]).toEqual(full);
    }
  });

  it("names a missing shard file", async () => {
    await expect(take(shardStream(jsonlSource([join(dir, "nope.jsonl")])))).rejects.toThrow(
      /nope.jsonl: cannot open: ENOENT/,
    );
  });
});
