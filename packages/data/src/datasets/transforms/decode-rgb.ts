import sharp, { type OutputInfo } from "sharp";
import type { Pack } from "../pack.js";
import { SampleRejected } from "../reject.js";
import { type DatasetImage, mapSampleImages, type Sample } from "../types.js";

/** Decoded pixels, row-major, `channels` bytes per pixel. */
export interface DecodedRgbImage {
  width: number;
  height: number;
  channels: 3;
  data: Uint8Array;
}

export interface DecodeRgbOptions {
  /** Reject (as a bad sample) images whose decoded side is under this. */
  minSide?: number;
}

/**
 * Worker transform: decodes every image of a sample — or of each sample of a
 * `Pack` — to 8-bit RGB with sharp (alpha flattened onto white, EXIF orientation
 * applied). Also the reference for how a transform module looks; pass its path
 * (`decodeRgbModule()`) to `mapInWorkers`.
 */
export default async function decodeRgb(
  input: Sample<DatasetImage> | Pack<Sample<DatasetImage>>,
  options: DecodeRgbOptions | undefined,
): Promise<Sample<DecodedRgbImage> | Pack<Sample<DecodedRgbImage>>> {
  if ("items" in input) {
    const items: Sample<DecodedRgbImage>[] = [];
    for (const sample of input.items) items.push(await decodeSample(sample, options));
    return { id: input.id, items, length: input.length };
  }
  return decodeSample(input, options);
}

async function decodeSample(
  sample: Sample<DatasetImage>,
  options: DecodeRgbOptions | undefined,
): Promise<Sample<DecodedRgbImage>> {
  return mapSampleImages(sample, async (image, index) => {
    let out: { data: Buffer; info: OutputInfo };
    try {
      out = await sharp(image.bytes, { failOn: "error" })
        .rotate()
        .flatten({ background: "#ffffff" })
        .removeAlpha()
        .toColourspace("srgb")
        .raw()
        .toBuffer({ resolveWithObject: true });
    } catch (e) {
      throw new Error(
        `${sample.id}: image ${index}${image.path ? ` (${image.path})` : ""} does not decode: ${(e as Error).message}`,
      );
    }
    const { width, height, channels } = out.info;
    if (channels !== 3)
      throw new Error(`${sample.id}: image ${index} decoded to ${channels} channels, expected 3`);
    if (options?.minSide !== undefined && Math.min(width, height) < options.minSide) {
      throw new SampleRejected(
        "image-too-small",
        `image ${index} is ${width}x${height}, a side under minSide ${options.minSide}`,
      );
    }
    return {
      width,
      height,
      channels: 3,
      data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength),
    };
  });
}
