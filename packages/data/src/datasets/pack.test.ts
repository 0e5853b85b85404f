import { describe, expect, it } from "vitest";
import { badSampleReport } from "./bad-samples.js";
import { approxSampleLength, packStream } from "./pack.js";
import { shardStream } from "./shard-stream.js";
import { memorySource } from "./sources/memory.js";
import { take } from "./stream.js";
import type { Sample } from "./types.js";

const docs = [5, 3, 4, 9, 1, 1, 12, 2, 8, 8, 10, 3].map((len, i) => ({ id: `d${i}`, len }));
const make = () =>
  packStream(shardStream(memorySource("docs", [docs])), { maxLength: 10, length: (d) => d.len });

describe("packStream", () => {
  it("packs greedily in order up to maxLength and counts over-long documents", async () => {
    const s = make();
    const packs = await take(s);
    expect(packs.map((p) => [p.items.map((d) => d.len), p.length])).toEqual([
      [[5, 3], 8],
      [[4], 4],
      [[9, 1], 10],
      [[1, 2], 3],
      [[8], 8],
      [[8], 8],
      [[10], 10],
      [[3], 3],
    ]);
    expect(packs[0].id).toBe("d0+d1");
    for (const p of packs) expect(p.length).toBeLessThanOrEqual(10);
    const report = badSampleReport(s.state());
    expect(report.byReason).toEqual({ "too-long": 1 });
    expect(report.examples[0]).toMatchObject({
      id: "d6",
      stage: "pack",
      detail: "length 12 is over maxLength 10",
    });
    // Every document is either packed or reported.
    expect(packs.flatMap((p) => p.items).length + report.total).toBe(docs.length);
  });

  it("respects maxItems", async () => {
    const s = packStream(shardStream(memorySource("docs", [docs])), {
      maxLength: 100,
      maxItems: 5,
      length: (d) => d.len,
    });
    expect((await take(s)).map((p) => p.items.length)).toEqual([5, 5, 2]);
  });

  it("resumes exactly, re-reading the document held over for the next pack", async () => {
    const full = (await take(make())).map((p) => p.id);
    for (let k = 0; k <= full.length; k++) {
      const s = make();
      const head = (await take(s, k)).map((p) => p.id);
      const r = make();
      r.restore(JSON.parse(JSON.stringify(s.state())));
      expect([...head, ...(await take(r)).map((p) => p.id)]).toEqual(full);
      expect(badSampleReport(r.state()).total).toBe(1);
    }
  });

  it("approxSampleLength counts image tokens and text", () => {
    const len = approxSampleLength({ tokensPerImage: 64, charsPerToken: 4 });
    const img = { bytes: new Uint8Array(0), path: null };
    const conv: Sample = {
      kind: "conversation",
      id: "c",
      images: [img, img],
      turns: [{ user: "12345678", assistant: "1234", source: null }],
    };
    const doc: Sample = {
      kind: "interleaved",
      id: "d",
      segments: [
        { type: "text", text: "123456789" },
        { type: "image", image: img },
      ],
    };
    expect(len(conv)).toBe(2 * 64 + 3);
    expect(len(doc)).toBe(3 + 64);
  });
});
