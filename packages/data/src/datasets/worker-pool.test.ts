import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generateSynthetic, writeSyntheticCauldron } from "../synthetic/generate.js";
import { badSampleReport } from "./bad-samples.js";
import { filterStream } from "./filter.js";
import { type Pack, packStream } from "./pack.js";
import { shardStream } from "./shard-stream.js";
import { memorySource } from "./sources/memory.js";
import { parquetSource } from "./sources/parquet.js";
import { type DataStream, take } from "./stream.js";
import type { DecodedRgbImage } from "./transforms/decode-rgb.js";
import { decodeRgbModule } from "./transforms/module-paths.js";
import type { ConversationSample, DatasetImage, Sample } from "./types.js";
import { mapInWorkers, WorkerTransformError } from "./worker-pool.js";

const echo = new URL("./__fixtures__/echo-transform.mjs", import.meta.url);
const dir = mkdtempSync(join(tmpdir(), "webvlm-workers-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Item {
  id: string;
  n: number;
  delay?: number;
  fail?: boolean;
  reject?: boolean;
  exit?: boolean;
}
interface Echoed {
  id: string;
  n: number;
  thread: number;
  concurrent: number;
  data: Float32Array;
}

const items = (n: number, extra: (i: number) => Partial<Item> = () => ({})): Item[] =>
  Array.from({ length: n }, (_, i) => ({ id: `r${i}`, n: i, ...extra(i) }));
const stream = (xs: Item[]) => shardStream(memorySource("m", [xs]));

async function drain<T>(s: DataStream<T>): Promise<T[]> {
  try {
    return await take(s);
  } finally {
    await s.close();
  }
}

describe("mapInWorkers", () => {
  it("delivers in upstream order although workers finish out of order", async () => {
    // Early items are slow, later ones fast: completion order is scrambled.
    const input = items(24, (i) => ({ delay: ((i * 7) % 5) * 8 }));
    const s = mapInWorkers<Item, Echoed>(stream(input), {
      module: echo,
      workers: 3,
      prefetch: 8,
      options: { factor: 10 },
    });
    const out = await drain(s);
    expect(out.map((x) => x.id)).toEqual(input.map((x) => x.id));
    expect(out.map((x) => x.n)).toEqual(input.map((x) => x.n * 10));
    expect(out[3].data).toEqual(new Float32Array([3, 0.5]));
    expect(new Set(out.map((x) => x.thread)).size).toBe(3);
  });

  it("holds at most `concurrency` tasks per worker, the rest waiting in order", async () => {
    const input = items(16, (i) => ({ delay: 5 + ((i * 3) % 4) * 5 }));
    const run = async (concurrency?: number) =>
      drain(
        mapInWorkers<Item, Echoed>(stream(input), { module: echo, workers: 2, prefetch: 8, concurrency }),
      );
    const limited = await run(1);
    expect(limited.map((x) => x.id)).toEqual(input.map((x) => x.id));
    expect(Math.max(...limited.map((x) => x.concurrent))).toBe(1);
    expect(new Set(limited.map((x) => x.thread)).size).toBe(2);
    // Without a limit, the 8 prefetched items are all sent at once: 4 per worker.
    expect(Math.max(...(await run()).map((x) => x.concurrent))).toBeGreaterThan(1);
  });

  it("propagates a transform error naming the record, after the records before it", async () => {
    const s = mapInWorkers<Item, Echoed>(stream(items(10, (i) => ({ fail: i === 6 }))), {
      module: echo,
      workers: 2,
    });
    const got: string[] = [];
    let error: unknown;
    try {
      for (;;) {
        const r = await s.next();
        if (r.done) break;
        got.push(r.value.id);
      }
    } catch (e) {
      error = e;
    } finally {
      await s.close();
    }
    expect(got).toEqual(["r0", "r1", "r2", "r3", "r4", "r5"]);
    expect(error).toBeInstanceOf(WorkerTransformError);
    expect((error as WorkerTransformError).recordId).toBe("r6");
    expect((error as Error).message).toMatch(/echo-transform.mjs failed on record r6: boom on 6/);
    expect(((error as Error).cause as Error).name).toBe("TypeError");
  });

  it("with onError: skip, counts failures and rejections as bad samples with reason and id", async () => {
    const input = items(12, (i) => ({ fail: i === 2 || i === 9, reject: i === 5 }));
    const s = mapInWorkers<Item, Echoed>(stream(input), { module: echo, workers: 2, onError: "skip" });
    const out = await drain(s);
    expect(out.map((x) => x.n)).toEqual([0, 1, 3, 4, 6, 7, 8, 10, 11]);
    const report = badSampleReport(s.state());
    expect(report.byReason).toEqual({ "transform-error": 2, unwanted: 1 });
    expect(report.examples.map((e) => [e.id, e.reason, e.stage])).toEqual([
      ["r2", "transform-error", "workers"],
      ["r5", "unwanted", "workers"],
      ["r9", "transform-error", "workers"],
    ]);
    expect(report.examples[1].detail).toBe("n=5 is unwanted");
  });

  it("a worker that dies fails the records it held, naming them", async () => {
    const s = mapInWorkers<Item, Echoed>(stream(items(4, (i) => ({ exit: i === 1 }))), {
      module: echo,
      workers: 1,
      prefetch: 1,
    });
    await expect(drain(s)).rejects.toThrow(
      /failed on record r1: worker 0 exited with code 3 while transforming r1/,
    );
  });

  it("names a transform module that does not load", async () => {
    const s = mapInWorkers(stream(items(2)), { module: join(dir, "missing-transform.mjs"), workers: 1 });
    await expect(drain(s)).rejects.toThrow(
      /failed on record r0: cannot load transform module file:.*missing-transform.mjs/,
    );
  });

  it("keeps `prefetch` items transformed ahead while the consumer is busy", async () => {
    const s = mapInWorkers<Item, Echoed>(stream(items(50)), { module: echo, workers: 2, prefetch: 6 });
    await s.next();
    for (let i = 0; i < 200 && s.ready < 6; i++) await new Promise((r) => setTimeout(r, 10));
    expect(s.ready).toBe(6);
    expect(s.buffered).toBe(6);
    await s.close();
  });

  it("its state is the consumer's position, not the read-ahead's: a restore continues exactly", async () => {
    const input = items(40, (i) => ({ reject: i % 7 === 3 }));
    const make = () =>
      mapInWorkers<Item, Echoed>(
        shardStream(memorySource("m", [input.slice(0, 25), input.slice(25)]), { seed: 9, shuffleBuffer: 5 }),
        { module: echo, workers: 2, prefetch: 5 },
      );
    const full = (await drain(make())).map((x) => x.id);
    for (const k of [0, 3, 17, full.length]) {
      const s = make();
      const head = (await take(s, k)).map((x) => x.id);
      const saved = JSON.parse(JSON.stringify(s.state()));
      await s.close();
      const r = make();
      r.restore(saved);
      expect([...head, ...(await drain(r)).map((x) => x.id)]).toEqual(full);
      expect(badSampleReport(r.state()).total).toBe(6);
    }
  });

  it("decodes synthetic Cauldron images (single samples and packs) to RGB with sharp off the main thread (TypeScript transform via tsx)", async () => {
    const files = await writeSyntheticCauldron({ dir, seed: 12, perShard: 8, shards: 1 });
    const expected = generateSynthetic({ seed: 12, count: 8 });
    const read = shardStream(parquetSource(files, { name: "syn" }));
    const s = mapInWorkers<Sample<DatasetImage>, Sample<DecodedRgbImage>>(
      filterStream(read, () => null),
      { module: decodeRgbModule(), workers: 2, options: { minSide: 0 } },
    );
    const out = (await drain(s)) as ConversationSample<DecodedRgbImage>[];
    expect(out).toHaveLength(8);
    out.forEach((sample, i) => {
      const img = sample.images[0];
      expect([img.width, img.height, img.channels]).toEqual([expected[i].width, expected[i].height, 3]);
      expect(Buffer.from(img.data).equals(Buffer.from(expected[i].pixels)), `pixels of ${sample.id}`).toBe(
        true,
      );
      expect(sample.turns).toEqual(expected[i].turns);
    });
    // Packs go through whole: every sample of the pack is decoded.
    const packs = mapInWorkers<Pack<Sample>, Pack<Sample<DecodedRgbImage>>>(
      packStream(shardStream(parquetSource(files)), { maxLength: 3, length: () => 1 }),
      {
        module: decodeRgbModule(),
        workers: 1,
      },
    );
    const decoded = await drain(packs);
    expect(decoded.map((p) => p.items.length)).toEqual([3, 3, 2]);
    const last = decoded[2].items[1] as ConversationSample<DecodedRgbImage>;
    expect(Buffer.from(last.images[0].data).equals(Buffer.from(expected[7].pixels))).toBe(true);
  });
});
