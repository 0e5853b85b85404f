import { readFile } from "node:fs/promises";
import { ImageProcessorConfigError } from "../image/errors.js";
import { PIL_RESAMPLE_CODES } from "../image/resample.js";

/** `preprocessor_config.json` of an `Idefics2ImageProcessor`, with Hugging Face field names. */
export interface Idefics2ImageProcessorConfig {
  do_convert_rgb: boolean;
  do_resize: boolean;
  size: { shortest_edge: number; longest_edge: number };
  /** A `PIL.Image.Resampling` code: 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming. */
  resample: number;
  do_rescale: boolean;
  rescale_factor: number;
  do_normalize: boolean;
  image_mean: [number, number, number];
  image_std: [number, number, number];
  do_pad: boolean;
  do_image_splitting: boolean;
}

/** `Idefics2ImageProcessor.__init__` defaults (what a config file that omits a field gets). */
const DEFAULTS: Idefics2ImageProcessorConfig = {
  do_convert_rgb: true,
  do_resize: true,
  size: { shortest_edge: 378, longest_edge: 980 },
  resample: 2,
  do_rescale: true,
  rescale_factor: 1 / 255,
  do_normalize: true,
  // IDEFICS_STANDARD_MEAN / IDEFICS_STANDARD_STD (the CLIP constants).
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_std: [0.26862954, 0.26130258, 0.27577711],
  do_pad: true,
  do_image_splitting: false,
};
export const IDEFICS2_IMAGE_PROCESSOR_DEFAULTS: Readonly<Idefics2ImageProcessorConfig> =
  Object.freeze(DEFAULTS);

const BOOLEAN_FIELDS = [
  "do_convert_rgb",
  "do_resize",
  "do_rescale",
  "do_normalize",
  "do_pad",
  "do_image_splitting",
] as const;

/**
 * Validates a parsed `preprocessor_config.json` (or a partial override) and fills in defaults.
 * Unknown fields (`image_processor_type`, `processor_class`, …) are ignored as Hugging Face does.
 */
export function parseImageProcessorConfig(
  raw: unknown,
  source = "preprocessor_config.json",
): Idefics2ImageProcessorConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ImageProcessorConfigError(`${source}: expected a JSON object, got ${JSON.stringify(raw)}`);
  }
  const r = raw as Record<string, unknown>;
  const d = IDEFICS2_IMAGE_PROCESSOR_DEFAULTS;
  const fail = (field: string, expected: string): never => {
    throw new ImageProcessorConfigError(
      `${source}: ${field} must be ${expected}, got ${JSON.stringify(r[field])}`,
    );
  };
  const cfg: Idefics2ImageProcessorConfig = {
    ...d,
    size: { ...d.size },
    image_mean: [...d.image_mean],
    image_std: [...d.image_std],
  };
  for (const f of BOOLEAN_FIELDS) {
    if (r[f] === undefined) continue;
    if (typeof r[f] !== "boolean") fail(f, "a boolean");
    cfg[f] = r[f] as boolean;
  }
  if (r.size !== undefined) {
    const s = r.size as Record<string, unknown>;
    const ok =
      typeof s === "object" &&
      s !== null &&
      Number.isInteger(s.shortest_edge) &&
      Number.isInteger(s.longest_edge) &&
      (s.shortest_edge as number) > 0 &&
      (s.longest_edge as number) >= (s.shortest_edge as number);
    if (!ok)
      fail("size", "{ shortest_edge, longest_edge } with positive integers, longest_edge ≥ shortest_edge");
    cfg.size = { shortest_edge: s.shortest_edge as number, longest_edge: s.longest_edge as number };
  }
  if (r.resample !== undefined) {
    if (typeof r.resample !== "number" || !(r.resample in PIL_RESAMPLE_CODES)) {
      fail("resample", "a PIL resampling code 1–5 (NEAREST, 0, is not supported)");
    }
    cfg.resample = r.resample as number;
  }
  if (r.rescale_factor !== undefined) {
    if (typeof r.rescale_factor !== "number" || !Number.isFinite(r.rescale_factor))
      fail("rescale_factor", "a finite number");
    cfg.rescale_factor = r.rescale_factor as number;
  }
  for (const f of ["image_mean", "image_std"] as const) {
    let v = r[f];
    if (v === undefined) continue;
    // HF accepts a scalar for all channels.
    if (typeof v === "number") v = [v, v, v];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
      fail(f, "a number or 3 finite numbers");
    }
    if (f === "image_std" && (v as number[]).some((x) => x === 0)) fail(f, "non-zero");
    cfg[f] = [...(v as number[])] as [number, number, number];
  }
  return cfg;
}

/** Reads and validates a `preprocessor_config.json` file. */
export async function loadImageProcessorConfig(path: string): Promise<Idefics2ImageProcessorConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ImageProcessorConfigError(`${path}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ImageProcessorConfigError(`${path}: invalid JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseImageProcessorConfig(raw, path);
}
