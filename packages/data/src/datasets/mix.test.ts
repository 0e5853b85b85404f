import { describe, expect, it } from "vitest";
import { mixStreams } from "./mix.js";
import { shardStream } from "./shard-stream.js";
import { memorySource } from "./sources/memory.js";
import { take } from "./stream.js";

const source = (name: string, n: number) =>
  memorySource(name, [Array.from({ length: n }, (_, i) => `${name}${i}`)]);
// Endless sources, as in training: the mix decides the ratios.
const make = (seed = 1) =>
  mixStreams(
    [
      {
        stream: shardStream(source("obelics", 50), {
          seed,
          epochs: Number.POSITIVE_INFINITY,
          shuffleBuffer: 8,
        }),
        weight: 0.5,
      },
      { stream: shardStream(source("pairs", 30), { seed, epochs: Number.POSITIVE_INFINITY }), weight: 0.3 },
      { stream: shardStream(source("pdf", 20), { seed, epochs: Number.POSITIVE_INFINITY }), weight: 0.2 },
    ],
    { seed },
  );

describe("mixStreams", () => {
  it("respects the weights approximately and is deterministic by seed", async () => {
    const a = await take(make(), 5000);
    const share = (prefix: string) => a.filter((x) => x.startsWith(prefix)).length / a.length;
    expect(share("obelics")).toBeCloseTo(0.5, 1);
    expect(share("pairs")).toBeCloseTo(0.3, 1);
    expect(share("pdf")).toBeCloseTo(0.2, 1);
    expect(Math.abs(share("obelics") - 0.5)).toBeLessThan(0.03);
    expect(Math.abs(share("pdf") - 0.2)).toBeLessThan(0.03);
    expect(await take(make(), 5000)).toEqual(a);
    expect(await take(make(2), 5000)).not.toEqual(a);
  });

  it("resumes exactly from a saved state", async () => {
    const full = await take(make(), 400);
    for (const k of [0, 1, 57, 199, 399]) {
      const s = make();
      const head = await take(s, k);
      const r = make();
      r.restore(JSON.parse(JSON.stringify(s.state())));
      expect([...head, ...(await take(r, 400 - k))]).toEqual(full);
    }
  });

  it("stops at the first exhausted stream, or drops it and renormalises", async () => {
    const finite = (mode: "stop" | "drop") =>
      mixStreams(
        [
          { stream: shardStream(source("a", 10)), weight: 1 },
          { stream: shardStream(source("b", 100)), weight: 1 },
        ],
        { seed: 3, onExhausted: mode },
      );
    const stopped = await take(finite("stop"));
    expect(stopped.filter((x) => x.startsWith("a"))).toHaveLength(10);
    expect(stopped.length).toBeLessThan(40);
    const dropped = await take(finite("drop"));
    expect(dropped).toHaveLength(110);
  });

  it("rejects bad weights", () => {
    expect(() => mixStreams([{ stream: shardStream(source("a", 1)), weight: -1, name: "a" }])).toThrow(
      /stream a has weight -1/,
    );
    expect(() => mixStreams([{ stream: shardStream(source("a", 1)), weight: 0 }])).toThrow(
      /every weight is 0/,
    );
  });
});
