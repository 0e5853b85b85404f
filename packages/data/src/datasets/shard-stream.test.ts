import { describe, expect, it } from "vitest";
import { badSampleReport, type StreamState } from "./bad-samples.js";
import { Rng } from "./rng.js";
import { shardStream } from "./shard-stream.js";
import { memorySource } from "./sources/memory.js";
import { take } from "./stream.js";

// 5 shards of uneven sizes, 47 items named "s<shard>-<row>".
const SIZES = [7, 12, 1, 15, 12];
const shards = SIZES.map((n, s) => Array.from({ length: n }, (_, r) => `s${s}-${r}`));
const all = shards.flat();
const source = () => memorySource("mem", shards);

describe("Rng", () => {
  it("resumes bit-exactly from its saved state", () => {
    const a = new Rng(42);
    for (let i = 0; i < 10; i++) a.u32();
    const b = new Rng(a.state());
    expect(Array.from({ length: 100 }, () => a.u32())).toEqual(Array.from({ length: 100 }, () => b.u32()));
  });

  it("int(n) is uniform enough and in range", () => {
    const r = new Rng(1);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60000; i++) counts[r.int(6)]++;
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(400);
  });
});

describe("shardStream", () => {
  it("without shuffling reads shards in order", async () => {
    expect(await take(shardStream(source(), { shuffleShards: false }))).toEqual(all);
  });

  it("shuffles deterministically by seed; each epoch is a permutation", async () => {
    const opts = { seed: 7, shuffleBuffer: 10, epochs: 3 };
    const a = await take(shardStream(source(), opts));
    const b = await take(shardStream(source(), opts));
    const c = await take(shardStream(source(), { ...opts, seed: 8 }));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).toHaveLength(3 * all.length);
    for (let e = 0; e < 3; e++) {
      const epoch = a.slice(e * all.length, (e + 1) * all.length);
      expect([...epoch].sort()).toEqual([...all].sort());
      expect(epoch).not.toEqual(all);
    }
    // Epochs differ from one another (new shard order, continued buffer RNG).
    expect(a.slice(0, all.length)).not.toEqual(a.slice(all.length, 2 * all.length));
  });

  it("shard order alone (no buffer) keeps rows of a shard together", async () => {
    const out = await take(shardStream(source(), { seed: 3 }));
    const firstOf = out.map((x) => x.split("-")[0]).filter((s, i, arr) => arr.indexOf(s) === i);
    expect(firstOf).toHaveLength(5);
    for (const s of firstOf) {
      const rows = out.filter((x) => x.startsWith(`${s}-`));
      expect(rows).toEqual(shards[Number(s.slice(1))]);
    }
  });

  it("a state saved at any point, through JSON, resumes with exactly the same continuation", async () => {
    const opts = { seed: 11, shuffleBuffer: 8, epochs: 2 };
    const full = await take(shardStream(source(), opts));
    // Every cut point, including inside the buffer fill, at shard and epoch boundaries.
    for (let k = 0; k <= full.length; k += 3) {
      const s = shardStream(source(), opts);
      const head = await take(s, k);
      const saved = JSON.parse(JSON.stringify(s.state())) as StreamState;
      const resumed = shardStream(source(), opts);
      resumed.restore(saved);
      expect([...head, ...(await take(resumed))]).toEqual(full);
    }
  });

  it("refuses a state from a different source or stage", async () => {
    const s = shardStream(source(), { seed: 1 });
    await take(s, 3);
    const other = shardStream(memorySource("other", shards), { seed: 1 });
    expect(() => other.restore(s.state())).toThrow(/saved for source 'mem' with 5 shards, this is 'other'/);
    expect(() => shardStream(source()).restore({ stage: "mix" })).toThrow(/stage 'mix'/);
  });

  it("counts bad records with reason and id, and the counts survive a restore", async () => {
    const src = () =>
      memorySource("mem", shards, {
        isBad: (item) =>
          item.endsWith("-3") ? { reason: "broken", detail: `item ${item} is broken` } : null,
      });
    const s = shardStream(src(), { shuffleShards: false });
    const out = await take(s, 20);
    expect(out).not.toContain("s0-3");
    const report = badSampleReport(s.state());
    expect(report.byReason).toEqual({ broken: 2 }); // s0-3 and s1-3 were passed
    expect(report.examples.map((e) => e.id)).toEqual(["mem/0#3", "mem/1#3"]);
    expect(report.examples[0]).toMatchObject({
      reason: "broken",
      stage: "read",
      detail: "item s0-3 is broken",
    });
    const resumed = shardStream(src(), { shuffleShards: false });
    resumed.restore(JSON.parse(JSON.stringify(s.state())));
    await take(resumed);
    expect(badSampleReport(resumed.state()).byReason).toEqual({ broken: 4 }); // s3-3 and s4-3 too
  });
});
