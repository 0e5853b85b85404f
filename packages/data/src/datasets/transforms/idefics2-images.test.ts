import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { afterAll, describe, expect, it } from "vitest";
import { type ImageBatch, processImages } from "../../processor/image-processor.js";
import { loadImageProcessorConfig } from "../../processor/image-processor-config.js";
import { writeSyntheticCauldron } from "../../synthetic/generate.js";
import { badSampleReport } from "../bad-samples.js";
import { type Pack, packStream } from "../pack.js";
import { shardStream } from "../shard-stream.js";
import { parquetSource } from "../sources/parquet.js";
import { writeCauldronParquet } from "../sources/parquet-write.js";
import { type DataStream, take } from "../stream.js";
import { type DatasetImage, type Sample, sampleImages } from "../types.js";
import { mapInWorkers, WorkerTransformError } from "../worker-pool.js";
import idefics2Images, {
  type Idefics2ImagesOptions,
  type ProcessedPack,
  type ProcessedSample,
  processSampleImages,
} from "./idefics2-images.js";
import { idefics2ImagesModule } from "./module-paths.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../../../../../fixtures/idefics2-tiny");
const SPLIT_CONFIG = join(FIXTURES, "preprocessor_config_split.json");
const dir = mkdtempSync(join(tmpdir(), "webvlm-idefics2-images-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function drain<T>(s: DataStream<T>): Promise<T[]> {
  try {
    return await take(s);
  } finally {
    await s.close();
  }
}

const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** The same images through the main-thread image processor, as `Idefics2Processor` calls it. */
async function reference(
  samples: Sample[],
  config: Awaited<ReturnType<typeof loadImageProcessorConfig>>,
  split: boolean,
): Promise<ImageBatch> {
  const images = samples.flatMap((s) =>
    sampleImages(s).map((im, i) => ({ data: im.bytes, name: `${s.id} image ${i}` })),
  );
  return processImages([images], config, { alpha: "drop", doImageSplitting: split });
}

function expectSamePixels(got: ImageBatch, want: ImageBatch, id: string): void {
  expect(got.shape, id).toEqual(want.shape);
  expect(got.imageSizes, id).toEqual(want.imageSizes);
  expect(got.imagesPerSample, id).toEqual(want.imagesPerSample);
  // Bit for bit, not within a tolerance.
  expect(bytesOf(got.pixelValues).equals(bytesOf(want.pixelValues)), `pixel values of ${id}`).toBe(true);
  expect(bytesOf(got.pixelAttentionMask).equals(bytesOf(want.pixelAttentionMask)), `mask of ${id}`).toBe(
    true,
  );
}

describe("idefics2-images worker transform", () => {
  it("synthetic parquet → shuffle → workers: bit-identical to the main thread, in order", async () => {
    // Shapes (96×96) and text (192 wide, varying height): sizes differ, so resizing, splitting
    // and padding all vary from sample to sample.
    const files = await writeSyntheticCauldron({
      dir: join(dir, "mixed"),
      seed: 5,
      perShard: 10,
      shards: 2,
      tasks: ["shape", "text", "count"],
    });
    const config = await loadImageProcessorConfig(SPLIT_CONFIG);
    const read = () => shardStream(parquetSource(files, { name: "syn" }), { seed: 3, shuffleBuffer: 6 });
    const inputs = await drain(read());
    for (const split of [true, false]) {
      const options: Idefics2ImagesOptions = { config: SPLIT_CONFIG, doImageSplitting: split };
      const s = mapInWorkers<Sample<DatasetImage>, ProcessedSample>(read(), {
        module: idefics2ImagesModule(),
        workers: 2,
        prefetch: 4,
        options,
      });
      const out = await drain(s);
      expect(out.map((x) => x.id)).toEqual(inputs.map((x) => x.id));
      for (let i = 0; i < out.length; i++) {
        expectSamePixels(out[i].pixels, await reference([inputs[i]], config, split), out[i].id);
        expect(out[i].pixels.shape[1]).toBe(split ? 5 : 1);
        const img = sampleImages(out[i])[0];
        expect(img).toMatchObject({ slot: 0, count: split ? 5 : 1 });
        const [o, x] = [out[i], inputs[i]];
        expect(o.kind === "conversation" && x.kind === "conversation" && o.turns).toEqual(
          x.kind === "conversation" && x.turns,
        );
      }
      // The function itself on the main thread gives the same.
      const direct = await processSampleImages(inputs[0], options);
      expectSamePixels(direct.pixels, out[0].pixels, inputs[0].id);
    }
  });

  it("packs: all images of a pack in one batch, in order, with each image's slots", async () => {
    const files = await writeSyntheticCauldron({
      dir: join(dir, "packs"),
      seed: 8,
      perShard: 7,
      shards: 1,
      tasks: ["shape", "text"],
    });
    const config = await loadImageProcessorConfig(SPLIT_CONFIG);
    const s = mapInWorkers<Pack<Sample>, ProcessedPack>(
      packStream(shardStream(parquetSource(files)), { maxLength: 3, length: () => 1 }),
      { module: idefics2ImagesModule(), workers: 2, options: { config: SPLIT_CONFIG } },
    );
    const out = await drain(s);
    expect(out.map((p) => p.items.length)).toEqual([3, 3, 1]);
    const packs = await drain(
      packStream(shardStream(parquetSource(files)), { maxLength: 3, length: () => 1 }),
    );
    for (let i = 0; i < out.length; i++) {
      expectSamePixels(out[i].pixels, await reference(packs[i].items, config, true), out[i].id);
      expect(out[i].items.map((x) => sampleImages(x)[0].slot)).toEqual(out[i].items.map((_, k) => 5 * k));
    }
  });

  it.each([
    ["shared memory", true],
    ["moved ArrayBuffers", false],
  ])("writes recycled outputs' memory (%s) and still gives exactly the fresh result", async (_, shared) => {
    const files = await writeSyntheticCauldron({
      dir: join(dir, `recycle-${shared}`),
      seed: 11,
      perShard: 16,
      shards: 1,
      tasks: ["text", "shape"],
      textScales: [1, 2, 3],
    });
    const config = await loadImageProcessorConfig(SPLIT_CONFIG);
    const inputs = await drain(shardStream(parquetSource(files)));
    const s = mapInWorkers<Sample<DatasetImage>, ProcessedSample>(shardStream(parquetSource(files)), {
      module: idefics2ImagesModule(),
      workers: 1,
      prefetch: 2,
      options: { config: SPLIT_CONFIG, sharedMemory: shared },
    });
    let reused = 0;
    try {
      for (let i = 0; ; i++) {
        const r = await s.next();
        if (r.done) break;
        const out = r.value;
        expectSamePixels(out.pixels, await reference([inputs[i]], config, true), out.id);
        // A reused buffer is often larger than this output needs.
        if (out.pixels.pixelValues.buffer.byteLength > out.pixels.pixelValues.byteLength) reused++;
        expect(out.pixels.pixelValues.buffer instanceof SharedArrayBuffer).toBe(shared);
        expect(s.recycle(out)).toBe(true);
        // Moved memory is detached here; shared memory stays visible (and will be overwritten).
        expect(out.pixels.pixelValues.byteLength === 0).toBe(!shared);
      }
    } finally {
      await s.close();
    }
    expect(reused).toBeGreaterThan(0);
  });

  it("names the record whose image does not decode, after delivering the ones before it", async () => {
    const png = async (w: number, h: number, channels: 3 | 4) =>
      new Uint8Array(
        await sharp({
          create: { width: w, height: h, channels, background: { r: 40, g: 90, b: 200, alpha: 0.5 } },
        })
          .png()
          .toBuffer(),
      );
    const good = await png(70, 40, 3);
    const rgba = await png(30, 90, 4); // alpha dropped, as Idefics2Processor does
    const file = join(dir, "broken.parquet");
    const turn = { user: "q", assistant: "a", source: null };
    writeCauldronParquet(file, [
      { images: [{ bytes: good, path: "a.png" }], turns: [turn] },
      { images: [{ bytes: rgba, path: "b.png" }], turns: [turn] },
      { images: [{ bytes: good.subarray(0, 60), path: "cut.png" }], turns: [turn] },
      { images: [{ bytes: good, path: "d.png" }], turns: [turn] },
    ]);
    const config = await loadImageProcessorConfig(SPLIT_CONFIG);
    const s = mapInWorkers<Sample<DatasetImage>, ProcessedSample>(
      shardStream(parquetSource([file], { name: "bad" })),
      { module: idefics2ImagesModule(), workers: 2, options: { config: SPLIT_CONFIG } },
    );
    const got: ProcessedSample[] = [];
    let error: unknown;
    try {
      for (;;) {
        const r = await s.next();
        if (r.done) break;
        got.push(r.value);
      }
    } catch (e) {
      error = e;
    } finally {
      await s.close();
    }
    expect(got.map((x) => x.id)).toEqual(["bad/broken.parquet#0", "bad/broken.parquet#1"]);
    const rgbaRef = await processImages([[rgba]], config, { alpha: "drop" });
    expectSamePixels(got[1].pixels, rgbaRef, got[1].id);
    expect(error).toBeInstanceOf(WorkerTransformError);
    expect((error as WorkerTransformError).recordId).toBe("bad/broken.parquet#2");
    expect((error as Error).message).toMatch(
      /failed on record bad\/broken\.parquet#2: bad\/broken\.parquet#2 image 0 \(cut\.png\): cannot decode/,
    );

    // minSide rejects instead (counted as a bad sample), onError: skip counts the broken one.
    const skip = mapInWorkers<Sample<DatasetImage>, ProcessedSample>(
      shardStream(parquetSource([file], { name: "bad" })),
      { module: idefics2ImagesModule(), workers: 1, onError: "skip", options: { minSide: 35 } },
    );
    expect((await drain(skip)).map((x) => x.id)).toEqual(["bad/broken.parquet#0", "bad/broken.parquet#3"]);
    expect(badSampleReport(skip.state()).byReason).toEqual({ "image-too-small": 1, "transform-error": 1 });
  });

  it("rejects a bad config naming it", async () => {
    const sample: Sample = { kind: "conversation", id: "x#0", images: [], turns: [] };
    await expect(idefics2Images(sample, { config: { resample: 0 } })).rejects.toThrow(
      /idefics2-images transform config: resample must be/,
    );
    await expect(idefics2Images(sample, { config: join(dir, "nope.json") })).rejects.toThrow(
      /nope\.json: cannot read/,
    );
    // No images: an empty batch.
    const empty = await idefics2Images(sample, {});
    expect(empty.pixels.shape).toEqual([1, 0, 3, 0, 0]);
  });

  it("prefetch hides the processing time from a slower consumer", async () => {
    const files = await writeSyntheticCauldron({
      dir: join(dir, "prefetch"),
      seed: 2,
      perShard: 44,
      shards: 1,
      tasks: ["text"],
      textWidth: 384,
      textHeight: 384,
    });
    // Idefics2's real sizes, with splitting: each sample is a few milliseconds of work.
    const options: Idefics2ImagesOptions = { doImageSplitting: true, timing: true };
    const read = () => shardStream(parquetSource(files));
    const s = mapInWorkers<Sample<DatasetImage>, ProcessedSample>(read(), {
      module: idefics2ImagesModule(),
      workers: 1,
      prefetch: 4,
      options,
    });
    const waits: number[] = [];
    const work: number[] = [];
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    let stepMs = 0;
    try {
      for (let i = 0; ; i++) {
        const t0 = performance.now();
        const r = await s.next();
        if (r.done) break;
        waits.push(performance.now() - t0);
        const t = r.value.times!;
        work.push(t.decode + t.resize + t.normalize);
        // The consumer "trains" for twice the worker's time per sample (its fastest after warm-up:
        // load on the machine only makes samples slower); until then it takes them as they come.
        if (i === 9) stepMs = Math.max(10, 2 * Math.min(...work.slice(3)));
        s.recycle(r.value);
        await sleep(stepMs || 1);
      }
    } finally {
      await s.close();
    }
    expect(waits).toHaveLength(44);
    // After the queue has refilled behind the slower consumer.
    const steady = waits.slice(20);
    const meanWait = steady.reduce((a, b) => a + b, 0) / steady.length;
    const meanWork = work.slice(20).reduce((a, b) => a + b, 0) / steady.length;
    console.log(
      `prefetch: worker ${meanWork.toFixed(1)} ms/sample, consumer step ${stepMs.toFixed(1)} ms, ` +
        `mean wait per next() ${meanWait.toFixed(2)} ms (max ${Math.max(...steady).toFixed(1)} ms)`,
    );
    // Near zero: a small fraction of what processing the sample takes.
    expect(meanWait).toBeLessThan(Math.max(1, 0.15 * meanWork));
  });
});
