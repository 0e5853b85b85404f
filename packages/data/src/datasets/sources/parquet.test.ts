import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetWriteFile } from "hyparquet-writer";
import { afterAll, describe, expect, it } from "vitest";
import { badSampleReport } from "../bad-samples.js";
import { shardStream } from "../shard-stream.js";
import { take } from "../stream.js";
import type { InterleavedSample, Sample } from "../types.js";
import { parquetSource } from "./parquet.js";
import { writeCauldronParquet } from "./parquet-write.js";

const dir = mkdtempSync(join(tmpdir(), "webvlm-parquet-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (...xs: number[]) => new Uint8Array(xs);

// OBELICS layout: images list<struct<bytes, path>> or list<string>, texts list<string>, nulls where the other holds the item.
const obelicsSchema = (imageAsPath: boolean) =>
  [
    { name: "schema", num_children: 3 },
    { name: "images", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
    { name: "list", repetition_type: "REPEATED", num_children: 1 },
    ...(imageAsPath
      ? [{ name: "element", repetition_type: "OPTIONAL", type: "BYTE_ARRAY", converted_type: "UTF8" }]
      : [
          { name: "element", repetition_type: "OPTIONAL", num_children: 2 },
          { name: "bytes", repetition_type: "OPTIONAL", type: "BYTE_ARRAY" },
          { name: "path", repetition_type: "OPTIONAL", type: "BYTE_ARRAY", converted_type: "UTF8" },
        ]),
    { name: "texts", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
    { name: "list", repetition_type: "REPEATED", num_children: 1 },
    { name: "element", repetition_type: "OPTIONAL", type: "BYTE_ARRAY", converted_type: "UTF8" },
    { name: "metadata", repetition_type: "OPTIONAL", type: "BYTE_ARRAY", converted_type: "UTF8" },
  ] as Parameters<typeof parquetWriteFile>[0]["schema"];

function writeObelics(
  file: string,
  rows: { images: unknown[] | null; texts: (string | null)[] | null }[],
  imageAsPath = false,
  offsetIndex = true,
): void {
  parquetWriteFile({
    filename: file,
    schema: obelicsSchema(imageAsPath),
    columnData: [
      { name: "images", data: rows.map((r) => r.images), offsetIndex },
      { name: "texts", data: rows.map((r) => r.texts), offsetIndex },
      { name: "metadata", data: rows.map(() => "{}"), offsetIndex },
    ],
    rowGroupSize: 2,
  });
}

describe("parquetSource: OBELICS schema", () => {
  it("reads interleaved documents with nulls, and counts misaligned rows as bad with their id", async () => {
    const file = join(dir, "obelics.parquet");
    writeObelics(file, [
      { images: [null, { bytes: bytes(1, 2), path: "a.jpg" }, null], texts: ["intro", null, "outro"] },
      { images: [{ bytes: bytes(3), path: null }], texts: [null] },
      { images: [null, null], texts: ["only", "text"] },
      { images: [null, { bytes: bytes(4), path: "x" }], texts: ["a", "b"] }, // both at position 1
      { images: [null], texts: ["x", "y"] }, // lengths differ
      { images: [{ bytes: bytes(5), path: "c.png" }, null], texts: [null, "caption"] },
    ]);
    const s = shardStream(parquetSource([file], { name: "obelics" }));
    const out = (await take(s)) as InterleavedSample[];
    expect(out.map((x) => x.id)).toEqual([
      "obelics/obelics.parquet#0",
      "obelics/obelics.parquet#1",
      "obelics/obelics.parquet#2",
      "obelics/obelics.parquet#5",
    ]);
    expect(out[0].segments).toEqual([
      { type: "text", text: "intro" },
      { type: "image", image: { bytes: bytes(1, 2), path: "a.jpg" } },
      { type: "text", text: "outro" },
    ]);
    expect(out[1].segments).toEqual([{ type: "image", image: { bytes: bytes(3), path: null } }]);
    expect(out[2].segments.map((x) => x.type)).toEqual(["text", "text"]);
    const report = badSampleReport(s.state());
    expect(report.byReason).toEqual({ schema: 2 });
    expect(report.examples.map((e) => [e.id, e.detail])).toEqual([
      ["obelics/obelics.parquet#3", "position 1 has both an image and a text"],
      ["obelics/obelics.parquet#4", "images has 1 entries but texts has 2; they must align"],
    ]);
  });

  it("reads string image entries from imageRoot, and reports URLs and missing files", async () => {
    const file = join(dir, "obelics-paths.parquet");
    writeFileSync(join(dir, "img1.png"), bytes(9, 9, 9));
    writeObelics(
      file,
      [
        { images: ["img1.png", null], texts: [null, "cat"] },
        { images: ["https://example.com/x.jpg", null], texts: [null, "dog"] },
        { images: ["missing.png"], texts: [null] },
      ],
      true,
      false, // no page index: whole row groups are read
    );
    const s = shardStream(parquetSource([file], { imageRoot: dir }));
    const out = (await take(s)) as InterleavedSample[];
    expect(out).toHaveLength(1);
    expect(out[0].segments[0]).toEqual({ type: "image", image: { bytes: bytes(9, 9, 9), path: "img1.png" } });
    const report = badSampleReport(s.state());
    expect(report.byReason).toEqual({ "image-unavailable": 1, "missing-image-file": 1 });
    expect(report.examples[0].detail).toMatch(/https:\/\/example.com\/x.jpg.*never downloads/);
    expect(report.examples[1]).toMatchObject({
      id: "parquet/obelics-paths.parquet#2",
      detail: expect.stringMatching(/missing.png \(ENOENT\)/),
    });
  });
});

describe("parquetSource: The Cauldron schema", () => {
  const rows = Array.from({ length: 23 }, (_, i) => ({
    images: [{ bytes: bytes(i, i + 1), path: `img${i}.png` }],
    turns: [{ user: `q${i}`, assistant: `a${i}`, source: "test" }],
  }));

  it("detects the schema and keeps bytes binary and strings text", async () => {
    const file = join(dir, "cauldron.parquet");
    writeCauldronParquet(file, rows, { rowGroupSize: 4 });
    const out = await take(shardStream(parquetSource([file])));
    expect(out[7]).toEqual({
      kind: "conversation",
      id: "parquet/cauldron.parquet#7",
      images: [{ bytes: bytes(7, 8), path: "img7.png" }],
      turns: [{ user: "q7", assistant: "a7", source: "test" }],
    });
  });

  it("names the file and the missing column when the schema is wrong", async () => {
    const file = join(dir, "wrong.parquet");
    parquetWriteFile({ filename: file, columnData: [{ name: "text", data: ["x"], type: "STRING" }] });
    await expect(take(shardStream(parquetSource([file])))).rejects.toThrow(
      /wrong.parquet: no 'images' column \(columns: text\)/,
    );
    await expect(take(shardStream(parquetSource([join(dir, "nope.parquet")])))).rejects.toThrow(
      /nope.parquet: cannot open/,
    );
  });

  it("resumes mid-epoch over several shards with a shuffle buffer, re-reading the buffer by row", async () => {
    const files = [0, 1, 2].map((k) => {
      const f = join(dir, `shard${k}.parquet`);
      writeCauldronParquet(f, rows.slice(k * 8, k * 8 + 8), { rowGroupSize: 3 });
      return f;
    });
    const ids = (xs: Sample[]) => xs.map((x) => x.id);
    // Two read paths: a few rows at a time, and whole row groups (as for big chunks without a page index).
    for (const smallChunkBytes of [1 << 20, 0]) {
      const make = () =>
        shardStream(parquetSource(files, { rowsPerRead: 2, smallChunkBytes }), {
          seed: 4,
          shuffleBuffer: 5,
          epochs: 2,
        });
      const full = ids(await take(make()));
      expect(full).toHaveLength(46);
      expect(new Set(full.slice(0, 23)).size).toBe(23);
      for (const k of [0, 4, 9, 22, 23, 30]) {
        const s = make();
        const head = ids(await take(s, k));
        const resumed = make();
        resumed.restore(JSON.parse(JSON.stringify(s.state())));
        expect([...head, ...ids(await take(resumed))]).toEqual(full);
      }
    }
  });
});
