// Benchmark worker: decodes and processes one JPEG per message with processImages, returning the
// pixel buffers (transferred, not copied) and its stage times.
import { parentPort, workerData } from "node:worker_threads";
import sharp from "sharp";
import { type Idefics2ImageProcessorConfig, newStageTimes, processImages } from "../src/index.js";

export interface Job {
  id: number;
  jpeg: Uint8Array;
  config: Idefics2ImageProcessorConfig;
  /** An earlier, consumed result, whose memory is written into. */
  buffers?: Recycled;
}

export interface Recycled {
  pixelValues: Float32Array;
  pixelAttentionMask: Uint8Array;
  shape: number[];
  imageSizes: [number, number][];
}

export interface JobResult extends Recycled {
  id: number;
  times: { decode: number; resize: number; normalize: number };
}

// One libvips thread per worker: the workers are the parallelism.
sharp.concurrency(workerData?.sharpThreads ?? 1);

parentPort!.on("message", async (job: Job) => {
  const times = newStageTimes();
  const out = await processImages([[{ data: job.jpeg, name: `bench image ${job.id}` }]], job.config, {
    times,
    buffers: job.buffers,
  });
  const { pixelValues, pixelAttentionMask, shape, imageSizes } = out;
  const result: JobResult = { id: job.id, pixelValues, pixelAttentionMask, shape, imageSizes, times };
  parentPort!.postMessage(result, [
    pixelValues.buffer as ArrayBuffer,
    pixelAttentionMask.buffer as ArrayBuffer,
  ]);
});
