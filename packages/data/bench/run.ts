// Images per second through decode + Idefics2 image processing (real Idefics2 settings:
// longest_edge 980, shortest_edge 378), with and without splitting, on 1 and on all cores,
// with each stage's share of the time. Writes bench/results.json.
//
//   pnpm --filter @webvlm/data bench [-- --images 32]
import { writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import sharp from "sharp";
import {
  IDEFICS2_IMAGE_PROCESSOR_DEFAULTS,
  type ImageBatch,
  newStageTimes,
  processImages,
  type StageTimes,
} from "../src/index.js";
import { makeJpegs } from "./jpegs.js";
import type { Job, JobResult } from "./worker.js";

const here = dirname(fileURLToPath(import.meta.url));
const argImages = process.argv.indexOf("--images");
const N = argImages > 0 ? Number(process.argv[argImages + 1]) : 32;
const CORES = availableParallelism();
const TARGET = 40; // images/s with splitting, all cores of a 2-core machine

// Two shapes of "980-px" photo: square at Idefics2's native 980 (no resize needed) and 4:3
// with a 980-px short side (the whole image is resized to 980×735; crops stay as they are).
const SETS = [
  { name: "980x980", width: 980, height: 980 },
  { name: "1306x980", width: 1306, height: 980 },
];

type BufferMode = "fresh" | "recycled";
interface Row {
  images: string;
  split: boolean;
  threads: number;
  buffers: BufferMode;
  imagesPerSecond: number;
  msPerImage: number;
  /** Process CPU time (all threads) per image: less sensitive than wall time to other load on the machine. */
  cpuMsPerImage: number;
  imagesPerSecondIfCoresIdle: number;
  /** Share of the summed stage time. */
  share: { decode: number; resize: number; normalize: number };
  stageMsPerImage: StageTimes;
}

function summarise(times: StageTimes, n: number): Pick<Row, "share" | "stageMsPerImage"> {
  const total = times.decode + times.resize + times.normalize;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return {
    share: {
      decode: r(times.decode / total),
      resize: r(times.resize / total),
      normalize: r(times.normalize / total),
    },
    stageMsPerImage: {
      decode: r(times.decode / n),
      resize: r(times.resize / n),
      normalize: r(times.normalize / n),
    },
  };
}

/** Wall ms, CPU ms of the whole process (all threads), stage times. */
type Measured = [number, number, StageTimes];

function cpuMs(since: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(since);
  return (c.user + c.system) / 1000;
}

async function oneThread(jpegs: Uint8Array[], split: boolean, mode: BufferMode): Promise<Measured> {
  sharp.concurrency(1);
  const config = { ...IDEFICS2_IMAGE_PROCESSOR_DEFAULTS, do_image_splitting: split };
  let last: ImageBatch | undefined;
  // Warm-up: JIT and coefficient tables.
  for (const j of jpegs.slice(0, 2)) await processImages([[j]], config);
  const times = newStageTimes();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (const j of jpegs) {
    const out = await processImages([[j]], config, {
      times,
      buffers: mode === "recycled" ? last : undefined,
    });
    last = out;
  }
  return [performance.now() - t0, cpuMs(c0), times];
}

async function allCores(jpegs: Uint8Array[], split: boolean, mode: BufferMode): Promise<Measured> {
  const config = { ...IDEFICS2_IMAGE_PROCESSOR_DEFAULTS, do_image_splitting: split };
  const workers = Array.from(
    { length: CORES },
    () => new Worker(join(here, "worker-entry.mjs"), { workerData: { sharpThreads: 1 } }),
  );
  const run = async (list: Uint8Array[], times: StageTimes) => {
    let next = 0;
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const send = (buffers?: Job["buffers"]) => {
              if (next >= list.length) return resolve();
              const job: Job = { id: next, jpeg: list[next++], config, buffers };
              w.postMessage(
                job,
                buffers
                  ? [
                      buffers.pixelValues.buffer as ArrayBuffer,
                      buffers.pixelAttentionMask.buffer as ArrayBuffer,
                    ]
                  : [],
              );
            };
            w.on("message", (r: JobResult) => {
              times.decode += r.times.decode;
              times.resize += r.times.resize;
              times.normalize += r.times.normalize;
              // The consumer is done with the batch at once: hand the memory back, or drop it.
              send(mode === "recycled" ? r : undefined);
            });
            w.once("error", reject);
            send();
          }),
      ),
    );
    for (const w of workers) w.removeAllListeners("message");
  };
  await run(jpegs.slice(0, 2 * CORES), newStageTimes()); // warm-up
  const times = newStageTimes();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await run(jpegs, times);
  const elapsed = performance.now() - t0;
  const cpu = cpuMs(c0);
  await Promise.all(workers.map((w) => w.terminate()));
  return [elapsed, cpu, times];
}

const loadavgAtStart = loadavg();
const rows: Row[] = [];
for (const set of SETS) {
  const distinct = await makeJpegs(8, set.width, set.height);
  const jpegs = Array.from({ length: N }, (_, i) => distinct[i % distinct.length]);
  const kb = Math.round(distinct.reduce((a, j) => a + j.length, 0) / distinct.length / 1024);
  console.log(`${set.name} JPEGs, quality 90, ~${kb} KiB each; ${N} per measurement`);
  for (const split of [false, true]) {
    for (const threads of [1, CORES]) {
      for (const mode of ["fresh", "recycled"] as const) {
        const [ms, cpu, times] =
          threads === 1 ? await oneThread(jpegs, split, mode) : await allCores(jpegs, split, mode);
        const row: Row = {
          images: set.name,
          split,
          threads,
          buffers: mode,
          imagesPerSecond: Math.round((N / ms) * 1000 * 10) / 10,
          msPerImage: Math.round((ms / N) * 100) / 100,
          cpuMsPerImage: Math.round((cpu / N) * 100) / 100,
          // What the same CPU work per image gives when these threads have their cores to themselves.
          imagesPerSecondIfCoresIdle: Math.round(((threads * 1000) / (cpu / N)) * 10) / 10,
          ...summarise(times, N),
        };
        rows.push(row);
        const s = row.share;
        console.log(
          `  split=${String(split).padEnd(5)} threads=${threads} buffers=${mode.padEnd(8)} ${String(row.imagesPerSecond).padStart(6)} img/s` +
            ` (cpu ${row.cpuMsPerImage.toFixed(1)} ms/img → ${String(row.imagesPerSecondIfCoresIdle).padStart(5)} img/s on idle cores)` +
            `   decode ${(s.decode * 100).toFixed(0)}%  resize ${(s.resize * 100).toFixed(0)}%  normalize+pad ${(s.normalize * 100).toFixed(0)}%`,
        );
      }
    }
  }
}

const results = {
  date: new Date().toISOString(),
  machine: {
    cpus: CORES,
    model: cpus()[0]?.model,
    node: process.version,
    loadavgAtStart,
    loadavgAtEnd: loadavg(),
  },
  config: {
    size: IDEFICS2_IMAGE_PROCESSOR_DEFAULTS.size,
    resample: "bilinear (Pillow-exact)",
    imagesPerMeasurement: N,
  },
  notes:
    "imagesPerSecond is wall clock for decode + split + resize + rescale/normalise + pad of one image per call. " +
    "buffers=recycled writes into the previous result's memory, passing that result so only cells it set and the new one does not are zeroed (a data loader that reuses batch buffers); " +
    "fresh allocates every time, paying page faults on ~40-60 MB of float32 per split image. " +
    "Shares are of the summed stage times (normalize includes the padded write). " +
    "cpuMsPerImage is process CPU time over all threads; imagesPerSecondIfCoresIdle = threads × 1000 / cpuMsPerImage, " +
    "an estimate for when other processes leave the cores free (compare loadavg).",
  target: { imagesPerSecond: TARGET, split: true, threads: "all (2-core machine)" },
  rows,
};
writeFileSync(join(here, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
console.log(`wrote ${join(here, "results.json")}`);
