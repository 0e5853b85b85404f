import { type AlphaMode, decodeImage, type RgbImage } from "../../image/decode.js";
import {
  type ImageBatch,
  newStageTimes,
  type PreprocessOptions,
  preprocessImages,
  type StageTimes,
} from "../../processor/image-processor.js";
import {
  type Idefics2ImageProcessorConfig,
  loadImageProcessorConfig,
  parseImageProcessorConfig,
} from "../../processor/image-processor-config.js";
import type { Pack } from "../pack.js";
import { SampleRejected } from "../reject.js";
import { type DatasetImage, mapSampleImages, type Sample } from "../types.js";
import type { TransformContext } from "../worker-pool.js";

/** Options of the Idefics2 image transform: the pool's `options`, passed once to each worker. */
export interface Idefics2ImagesOptions {
  /**
   * The image processor's `preprocessor_config.json`: its parsed contents (Hugging Face field
   * names; omitted fields get Hugging Face's defaults) or its path. Default: all defaults.
   */
  config?: string | Partial<Idefics2ImageProcessorConfig> | Record<string, unknown>;
  /** Overrides the config's `do_image_splitting`. */
  doImageSplitting?: boolean;
  /**
   * Alpha handling. Default `"drop"`: what `Idefics2Processor` does (PIL `convert("RGB")`), so the
   * pixels equal the processor's. `"white"` is the image processor called on its own.
   */
  alpha?: AlphaMode;
  /** Pixel limit per decoded image (decompression bombs); default Pillow's. */
  maxPixels?: number;
  /** Reject the sample (bad sample `image-too-small`) when an image has a side under this. */
  minSide?: number;
  /** Add the time spent in each stage to the output (`times`). */
  timing?: boolean;
  /**
   * Default true: outputs live on `SharedArrayBuffer`s, which the consumer gets without a copy
   * and hands back with `recycle()` without a move. False: plain `ArrayBuffer`s, moved to the
   * consumer and back (their views are detached on the other side), at the cost of garbage
   * collections V8 runs for every moved multi-megabyte buffer (measured: ~1.5× the CPU time).
   */
  sharedMemory?: boolean;
}

/** Where an image of a sample went: the first of its `count` slots in `pixels` (5 when splitting). */
export interface ProcessedImage {
  path: string | null;
  /** The decoded image's size, before splitting and resizing. */
  width: number;
  height: number;
  slot: number;
  count: number;
}

/** A sample with its images processed: `pixels` is `[1, images, 3, H, W]`, images in order. */
export type ProcessedSample = Sample<ProcessedImage> & { pixels: ImageBatch; times?: StageTimes };

/** A pack with the images of all its samples processed together, in order, into one `[1, images, 3, H, W]`. */
export interface ProcessedPack extends Pack<Sample<ProcessedImage>> {
  pixels: ImageBatch;
  times?: StageTimes;
}

// The options object is the same for every call in a worker: parse (or read) the config once.
const configs = new WeakMap<object, Promise<Idefics2ImageProcessorConfig>>();

function resolveConfig(options: Idefics2ImagesOptions): Promise<Idefics2ImageProcessorConfig> {
  let config = configs.get(options);
  if (!config) {
    const c = options.config;
    config =
      typeof c === "string"
        ? loadImageProcessorConfig(c)
        : Promise.resolve().then(() =>
            parseImageProcessorConfig(c ?? {}, "idefics2-images transform config"),
          );
    configs.set(options, config);
  }
  return config;
}

/**
 * Worker transform: decodes every image of a sample — or of all samples of a `Pack` — and runs
 * the Idefics2 image processor on them, returning pixel values and mask as typed arrays that move
 * to the consumer without a copy. Pass `idefics2ImagesModule()` to `mapInWorkers`, with
 * {@link Idefics2ImagesOptions} as `options`; recycle consumed outputs (`stream.recycle(out)`) so
 * the next ones are written into their memory.
 */
export default function idefics2Images(
  input: Sample<DatasetImage> | Pack<Sample<DatasetImage>>,
  options: Idefics2ImagesOptions | undefined,
  context?: Pick<TransformContext, "recycled" | "transfer">,
): Promise<ProcessedSample | ProcessedPack> {
  return processSampleImages(input, options, context);
}

/** The transform as a function (on the main thread it gives what the workers give). */
export async function processSampleImages(
  input: Sample<DatasetImage>,
  options?: Idefics2ImagesOptions,
  context?: Pick<TransformContext, "recycled" | "transfer">,
): Promise<ProcessedSample>;
export async function processSampleImages(
  input: Pack<Sample<DatasetImage>>,
  options?: Idefics2ImagesOptions,
  context?: Pick<TransformContext, "recycled" | "transfer">,
): Promise<ProcessedPack>;
export async function processSampleImages(
  input: Sample<DatasetImage> | Pack<Sample<DatasetImage>>,
  options?: Idefics2ImagesOptions,
  context?: Pick<TransformContext, "recycled" | "transfer">,
): Promise<ProcessedSample | ProcessedPack>;
export async function processSampleImages(
  input: Sample<DatasetImage> | Pack<Sample<DatasetImage>>,
  options: Idefics2ImagesOptions = {},
  context?: Pick<TransformContext, "recycled" | "transfer">,
): Promise<ProcessedSample | ProcessedPack> {
  const config = await resolveConfig(options);
  const split = options.doImageSplitting ?? config.do_image_splitting;
  const perImage = split ? 5 : 1;
  const times = options.timing ? newStageTimes() : undefined;
  const samples = "items" in input ? input.items : [input];

  // Decoded one after another: the workers are the parallelism, and memory stays bounded.
  const decoded: RgbImage[] = [];
  const t0 = performance.now();
  const refs: Sample<ProcessedImage>[] = [];
  for (const sample of samples) {
    refs.push(
      await mapSampleImages(sample, async (image, index): Promise<ProcessedImage> => {
        const rgb = await decodeImage(image.bytes, {
          alpha: options.alpha ?? "drop",
          maxPixels: options.maxPixels,
          name: `${sample.id} image ${index}${image.path ? ` (${image.path})` : ""}`,
        });
        if (options.minSide !== undefined && Math.min(rgb.width, rgb.height) < options.minSide) {
          throw new SampleRejected(
            "image-too-small",
            `image ${index} of ${sample.id} is ${rgb.width}x${rgb.height}, a side under minSide ${options.minSide}`,
          );
        }
        const ref = {
          path: image.path,
          width: rgb.width,
          height: rgb.height,
          slot: decoded.length * perImage,
        };
        decoded.push(rgb);
        return { ...ref, count: perImage };
      }),
    );
  }
  if (times) times.decode += performance.now() - t0;

  let pixels: ImageBatch;
  try {
    pixels = preprocessImages([decoded], config, {
      doImageSplitting: split,
      times,
      shared: options.sharedMemory ?? true,
      buffers: recycledBuffers(context?.recycled()),
    });
  } catch (e) {
    throw new Error(`${input.id}: ${(e as Error).message}`, { cause: e });
  }
  // Views of part of a recycled ArrayBuffer move only when named (shared memory is never moved).
  context?.transfer(pixels.pixelValues, pixels.pixelAttentionMask);
  const extra = times ? { pixels, times } : { pixels };
  if ("items" in input) return { id: input.id, items: refs, length: input.length, ...extra };
  return { ...refs[0], ...extra };
}

// A consumed output given back by the consumer: its whole buffers, with what they hold (the
// `shape` and `imageSizes` of the output they were), so only stale cells get cleared.
function recycledBuffers(value: unknown): PreprocessOptions["buffers"] {
  const pixels = (value as { pixels?: Partial<ImageBatch> } | undefined)?.pixels;
  if (
    !pixels ||
    !(pixels.pixelValues instanceof Float32Array) ||
    !(pixels.pixelAttentionMask instanceof Uint8Array) ||
    !Array.isArray(pixels.shape) ||
    !Array.isArray(pixels.imageSizes) ||
    pixels.pixelValues.byteOffset !== 0 ||
    pixels.pixelAttentionMask.byteOffset !== 0
  ) {
    return undefined;
  }
  const values = pixels.pixelValues.buffer;
  const mask = pixels.pixelAttentionMask.buffer;
  return {
    pixelValues: new Float32Array(values, 0, values.byteLength >>> 2),
    pixelAttentionMask: new Uint8Array(mask),
    shape: pixels.shape,
    imageSizes: pixels.imageSizes,
  };
}
