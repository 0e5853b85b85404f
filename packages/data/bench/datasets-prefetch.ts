// Does a training loop wait for data? Reads synthetic Cauldron parquet, decodes images to RGB
// in worker threads with prefetch, and times how long each `next()` blocks while the consumer
// "trains" for a fixed time per step. Run: node --import tsx bench/datasets-prefetch.ts
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import decodeRgb from "../src/datasets/transforms/decode-rgb.js";
import {
  decodeRgbModule,
  mapInWorkers,
  parquetSource,
  shardStream,
  take,
  writeSyntheticCauldron,
} from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "webvlm-prefetch-"));
const N = 240;
const files = await writeSyntheticCauldron({
  dir,
  seed: 1,
  perShard: N / 4,
  shards: 4,
  shapeSize: 384,
  textWidth: 384,
  textHeight: 384,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const read = () => shardStream(parquetSource(files), { seed: 1, shuffleBuffer: 32 });

// 1. Decode throughput alone: main thread vs workers.
let t = performance.now();
for (const s of await take(read())) await decodeRgb(s, undefined);
const mainMs = performance.now() - t;
for (const workers of [1, 2]) {
  const s = mapInWorkers(read(), { module: decodeRgbModule(), workers, prefetch: 8 });
  await s.next(); // worker start-up is not throughput
  t = performance.now();
  const n = (await take(s)).length;
  const ms = performance.now() - t;
  await s.close();
  console.log(
    `decode only, ${workers} worker(s): ${((n / ms) * 1000).toFixed(0)} samples/s (main thread inline: ${((N / mainMs) * 1000).toFixed(0)} samples/s)`,
  );
}

// 2. A consumer that works `stepMs` per sample: how long does next() block after warm-up?
for (const stepMs of [2, 10]) {
  const s = mapInWorkers(read(), { module: decodeRgbModule(), workers: 1, prefetch: 8 });
  const waits: number[] = [];
  for (;;) {
    const t0 = performance.now();
    const r = await s.next();
    if (r.done) break;
    waits.push(performance.now() - t0);
    await sleep(stepMs);
  }
  await s.close();
  const steady = waits.slice(8).sort((a, b) => a - b);
  const mean = steady.reduce((a, b) => a + b, 0) / steady.length;
  console.log(
    `step ${stepMs} ms, 1 worker, prefetch 8: wait per next() after warm-up mean ${mean.toFixed(2)} ms, p50 ${steady[steady.length >> 1].toFixed(2)} ms, p95 ${steady[Math.floor(steady.length * 0.95)].toFixed(2)} ms (first: ${waits[0].toFixed(0)} ms incl. worker start)`,
  );
}
rmSync(dir, { recursive: true, force: true });
