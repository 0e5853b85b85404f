import sharp, { type OutputInfo } from "sharp";
import { ImageDecodeError, ImageTooLargeError } from "./errors.js";

/** An 8-bit RGB image, rows top to bottom, pixels interleaved: `data[(y * width + x) * 3 + c]`. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * What to do with an alpha channel. Hugging Face does two different things:
 * - `"drop"`: `Idefics2Processor` loads images with PIL `convert("RGB")`, which discards alpha;
 * - `"white"`: `Idefics2ImageProcessor` alone composites non-RGB images over opaque white.
 */
export type AlphaMode = "drop" | "white";

/** Pillow's DecompressionBombError threshold (2 × `Image.MAX_IMAGE_PIXELS`). */
export const DEFAULT_MAX_PIXELS = 178_956_970;

export const SUPPORTED_IMAGE_FORMATS = ["png", "jpeg", "webp", "gif"] as const;

export interface DecodeImageOptions {
  /** Default `"drop"` (the processor path). */
  alpha?: AlphaMode;
  /** Refuse images with more pixels than this. Default {@link DEFAULT_MAX_PIXELS}. */
  maxPixels?: number;
  /** How errors name the image (a dataset record id, say). Defaults to the path, or a description of the buffer. */
  name?: string;
}

/** An encoded image: a file path, the file's bytes, or bytes with a name for error messages. */
export type EncodedImage = string | Uint8Array | { data: Uint8Array; name: string };

function describe(input: EncodedImage): string {
  if (typeof input === "string") return input;
  if (input instanceof Uint8Array) return `<image buffer of ${input.byteLength} bytes>`;
  return input.name;
}

/**
 * Decodes PNG, JPEG, WebP or GIF (first frame) to RGB uint8, applying EXIF orientation like
 * PIL's `ImageOps.exif_transpose`. Embedded ICC profiles are ignored, as PIL ignores them.
 */
export async function decodeImage(input: EncodedImage, options: DecodeImageOptions = {}): Promise<RgbImage> {
  const source = options.name ?? describe(input);
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(Number.isInteger(maxPixels) && maxPixels > 0)) {
    throw new RangeError(`decodeImage: maxPixels must be a positive integer, got ${maxPixels}`);
  }
  const bytes = typeof input === "string" || input instanceof Uint8Array ? input : input.data;

  let decoded: { data: Buffer; info: OutputInfo };
  try {
    const inputOptions = { failOn: "error", autoOrient: true, ignoreIcc: true, pages: 1, page: 0 } as const;
    const decode = () =>
      sharp(bytes, { ...inputOptions, limitInputPixels: maxPixels })
        .raw({ depth: "uchar" })
        .toBuffer({ resolveWithObject: true });
    // Bytes whose signature is a supported format go straight to decoding (sharp checks the pixel
    // limit from the header first): a separate header read costs a libvips round trip per image.
    // Anything else, and an image over the limit, gets its header read to say what is wrong.
    let direct: { data: Buffer; info: OutputInfo } | null = null;
    if (typeof bytes !== "string" && sniffFormat(bytes) !== null) {
      try {
        direct = await decode();
      } catch (err) {
        if (!/pixel limit/i.test(err instanceof Error ? err.message : String(err))) throw err;
      }
    }
    if (direct) {
      decoded = direct;
    } else {
      // Reading the header decodes no pixels, so it can run unlimited and report the real size.
      const meta = await sharp(bytes, { ...inputOptions, limitInputPixels: false }).metadata();
      const format = meta.format as string | undefined;
      if (!format || !(SUPPORTED_IMAGE_FORMATS as readonly string[]).includes(format)) {
        throw new ImageDecodeError(
          source,
          `unsupported image format ${format ?? "(unknown)"}; expected one of ${SUPPORTED_IMAGE_FORMATS.join(", ")}`,
        );
      }
      const w = meta.width ?? 0;
      const h = meta.pageHeight ?? meta.height ?? 0;
      if (w * h > maxPixels) throw new ImageTooLargeError(source, w, h, maxPixels);
      // sharp enforces the limit again itself, from the same header, before decoding.
      decoded = await decode();
    }
  } catch (err) {
    if (err instanceof ImageDecodeError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    if (/pixel limit/i.test(message)) {
      throw new ImageDecodeError(
        source,
        `image exceeds the limit of ${maxPixels} pixels (possible decompression bomb; raise maxPixels if trusted)`,
        { cause: err },
      );
    }
    throw new ImageDecodeError(source, `cannot decode image: ${message}`, { cause: err });
  }

  const { width, height, channels } = decoded.info;
  if (width * height > maxPixels) throw new ImageTooLargeError(source, width, height, maxPixels);
  return toRgb(decoded.data, width, height, channels, options.alpha ?? "drop", source);
}

/** The supported format a file's signature names, or null (other formats, garbage, too short). */
export function sniffFormat(b: Uint8Array): (typeof SUPPORTED_IMAGE_FORMATS)[number] | null {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    if (b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return "png";
  }
  const ascii = (from: number, text: string) =>
    b.length >= from + text.length && [...text].every((ch, i) => b[from + i] === ch.charCodeAt(0));
  if (ascii(0, "GIF87a") || ascii(0, "GIF89a")) return "gif";
  if (ascii(0, "RIFF") && ascii(8, "WEBP")) return "webp";
  return null;
}

/** Converts 1–4 channel uint8 pixels to RGB, handling alpha as `alpha` says (3 channels: shares `src`). */
export function toRgb(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  alpha: AlphaMode,
  source = "image",
): RgbImage {
  const n = width * height;
  if (src.length !== n * channels) {
    throw new ImageDecodeError(
      source,
      `expected ${n * channels} bytes for ${width}×${height}×${channels}, got ${src.length}`,
    );
  }
  // RGB needs no conversion: a plain Uint8Array view (not a Buffer) of the same memory.
  if (channels === 3) return { width, height, data: new Uint8Array(src.buffer, src.byteOffset, src.length) };
  const out = new Uint8Array(n * 3);
  const hasAlpha = channels === 2 || channels === 4;
  const grey = channels <= 2;
  if (!hasAlpha || alpha === "drop") {
    for (let i = 0, p = 0, o = 0; i < n; i++, p += channels, o += 3) {
      const r = src[p];
      out[o] = r;
      out[o + 1] = grey ? r : src[p + 1];
      out[o + 2] = grey ? r : src[p + 2];
    }
  } else {
    const a = channels - 1;
    for (let i = 0, p = 0, o = 0; i < n; i++, p += channels, o += 3) {
      const r = src[p];
      out[o] = overWhite(r, src[p + a]);
      out[o + 1] = overWhite(grey ? r : src[p + 1], src[p + a]);
      out[o + 2] = overWhite(grey ? r : src[p + 2], src[p + a]);
    }
  }
  return { width, height, data: out };
}

/**
 * Pillow's `alpha_composite` of a colour over opaque white (AlphaComposite.c with the destination
 * alpha fixed at 255): 7-bit fixed point with its divide-by-255 shift trick. Equals
 * `round((c·a + 255·(255 − a)) / 255)` for every input; the integer form avoids float rounding doubts.
 */
export function overWhite(c: number, a: number): number {
  const t = 128 * (c * a + 255 * (255 - a)) + (0x80 << 7);
  return (((t >> 8) + t) >> 8) >> 7;
}
