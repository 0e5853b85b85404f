import { BadLog, type BadSample, type StreamState } from "./bad-samples.js";
import { imageSize } from "./image-size.js";
import { type DataStream, DONE, Stage } from "./stream.js";
import { type DatasetImage, type Sample, sampleImages } from "./types.js";

/** Why an item is dropped, or null to keep it. */
export type Rejection = { reason: string; detail: string } | null;

export interface FilterOptions {
  onBad?: (bad: BadSample) => void;
  /** Names an item in reports (default: its `id` field). */
  idOf?: (item: unknown) => string;
}

/** Drops items the predicate rejects, counting each with its reason and id. */
export class FilterStream<T> extends Stage<T> {
  private readonly bad: BadLog;
  private readonly idOf: (item: unknown) => string;

  constructor(
    private readonly upstream: DataStream<T>,
    private readonly predicate: (item: T) => Rejection,
    options: FilterOptions = {},
  ) {
    super("filter");
    this.bad = new BadLog("filter", options.onBad);
    this.idOf = options.idOf ?? ((x) => String((x as { id?: unknown }).id ?? "?"));
  }

  async next(): Promise<IteratorResult<T, undefined>> {
    this.started = true;
    for (;;) {
      const r = await this.upstream.next();
      if (r.done) return DONE;
      const rejection = this.predicate(r.value);
      if (!rejection) return r;
      this.bad.record({ id: this.idOf(r.value), ...rejection });
    }
  }

  state(): StreamState {
    return { stage: "filter", bad: this.bad.toJSON(), upstream: this.upstream.state() };
  }

  protected restoreOwn(state: StreamState): void {
    this.bad.load(state.bad);
    this.upstream.restore(state.upstream as StreamState);
  }

  override close(): Promise<void> {
    return this.upstream.close();
  }
}

export function filterStream<T>(
  upstream: DataStream<T>,
  predicate: (item: T) => Rejection,
  options: FilterOptions = {},
): FilterStream<T> {
  return new FilterStream(upstream, predicate, options);
}

export interface ImageSizeLimits {
  /** Smallest allowed min(width, height). */
  minSide?: number;
  /** Largest allowed max(width, height). */
  maxSide?: number;
  maxPixels?: number;
  /** Largest allowed max(w, h) / min(w, h). */
  maxAspectRatio?: number;
  /** Most images in one sample. */
  maxImages?: number;
}

/**
 * Rejects a sample when any image is outside the limits or has a header we cannot
 * read (PNG, JPEG, GIF, WebP and BMP are read), naming the image's index and size.
 */
export function imageSizeFilter(limits: ImageSizeLimits): (sample: Sample<DatasetImage>) => Rejection {
  return (sample) => {
    const images = sampleImages(sample);
    if (limits.maxImages !== undefined && images.length > limits.maxImages) {
      return {
        reason: "too-many-images",
        detail: `${images.length} images, more than maxImages ${limits.maxImages}`,
      };
    }
    for (let i = 0; i < images.length; i++) {
      const size = imageSize(images[i].bytes);
      if (!size) {
        const head = Array.from(images[i].bytes.subarray(0, 8), (x) => x.toString(16).padStart(2, "0")).join(
          " ",
        );
        return {
          reason: "unreadable-image",
          detail: `image ${i} (${images[i].bytes.length} bytes, starting ${head}) is not a PNG, JPEG, GIF, WebP or BMP`,
        };
      }
      const { width: w, height: h } = size;
      const dims = `image ${i} is ${w}x${h}`;
      if (limits.minSide !== undefined && Math.min(w, h) < limits.minSide)
        return { reason: "image-too-small", detail: `${dims}, a side under minSide ${limits.minSide}` };
      if (limits.maxSide !== undefined && Math.max(w, h) > limits.maxSide)
        return { reason: "image-too-large", detail: `${dims}, a side over maxSide ${limits.maxSide}` };
      if (limits.maxPixels !== undefined && w * h > limits.maxPixels)
        return {
          reason: "image-too-large",
          detail: `${dims}, ${w * h} pixels over maxPixels ${limits.maxPixels}`,
        };
      if (limits.maxAspectRatio !== undefined && Math.max(w, h) > limits.maxAspectRatio * Math.min(w, h)) {
        return {
          reason: "image-aspect-ratio",
          detail: `${dims}, aspect ratio over ${limits.maxAspectRatio}`,
        };
      }
    }
    return null;
  };
}
