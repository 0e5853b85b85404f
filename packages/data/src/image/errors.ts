/** An image could not be decoded, is of a refused format, or is larger than the pixel limit. */
export class ImageDecodeError extends Error {
  override name = "ImageDecodeError";
  /** The file path, dataset record or caller-supplied name of the offending image. */
  readonly source: string;
  constructor(source: string, message: string, options?: { cause?: unknown }) {
    super(`${source}: ${message}`, options);
    this.source = source;
  }
}

/** A decoded image whose pixel count exceeds the configured limit (a likely decompression bomb). */
export class ImageTooLargeError extends ImageDecodeError {
  override name = "ImageTooLargeError";
  readonly pixels: number;
  readonly maxPixels: number;
  constructor(source: string, width: number, height: number, maxPixels: number) {
    super(
      source,
      `image is ${width}×${height} = ${width * height} pixels, over the limit of ${maxPixels} ` +
        "(possible decompression bomb; raise maxPixels if the image is trusted)",
    );
    this.pixels = width * height;
    this.maxPixels = maxPixels;
  }
}

/** A preprocessor_config.json (or processor option) that is malformed or asks for something unsupported. */
export class ImageProcessorConfigError extends Error {
  override name = "ImageProcessorConfigError";
}
