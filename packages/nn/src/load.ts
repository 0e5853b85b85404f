import {
  type DType,
  f32ArrayToF16,
  fmtShape,
  openSafetensors,
  type SafetensorsCheckpoint,
  Tensor,
  toFloat32,
} from "@webvlm/tensor";
import type { Module, Parameter } from "./module.js";

/** Loading found problems; every missing, unexpected and mis-shaped key is listed at once. */
export class WeightLoadError extends Error {
  override name = "WeightLoadError";
  constructor(
    message: string,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly mismatched: { name: string; expected: readonly number[]; found: readonly number[] }[],
  ) {
    super(message);
  }
}

export interface LoadOptions {
  /** Prefix of this module's keys in the checkpoint, e.g. "model.vision_model". */
  prefix?: string;
  /** Checkpoint keys outside the module that are fine to leave unread (regexps). Keys outside `prefix` are ignored. */
  ignoreUnexpected?: RegExp[];
  /** Parameters that may stay unloaded (e.g. LoRA adapters when loading a base checkpoint). */
  allowMissing?: RegExp[];
  /** Device dtype of floating-point parameters; bf16/f16/f32 checkpoints are converted. Default f32. */
  dtype?: DType;
}

export interface LoadReport {
  loaded: number;
  bytes: number;
}

function list(names: string[], max = 8): string {
  return names.length <= max
    ? names.join(", ")
    : `${names.slice(0, max).join(", ")}, … (${names.length - max} more)`;
}

/**
 * Loads a module's parameters from safetensors by their Hugging Face paths. Checks every key
 * first and reports all problems in one error, before any tensor is read.
 */
export async function loadWeights(
  module: Module,
  source: string | SafetensorsCheckpoint,
  options: LoadOptions = {},
): Promise<LoadReport> {
  const ckpt = typeof source === "string" ? await openSafetensors(source) : source;
  try {
    const prefix = options.prefix ? `${options.prefix}.` : "";
    const params = module.namedParameters();
    const wanted = new Map<string, Parameter>(params.map(([n, p]) => [prefix + n, p]));
    const names = new Set(ckpt.names());
    const missing: string[] = [];
    const mismatched: WeightLoadError["mismatched"] = [];
    for (const [key, p] of wanted) {
      if (!names.has(key)) {
        if (!options.allowMissing?.some((r) => r.test(key))) missing.push(key);
        continue;
      }
      const info = ckpt.info(key);
      if (info.shape.length !== p.shape.length || info.shape.some((d, i) => d !== p.shape[i])) {
        mismatched.push({ name: key, expected: p.shape, found: info.shape });
      }
    }
    const unexpected = [...names].filter(
      (n) => n.startsWith(prefix) && !wanted.has(n) && !options.ignoreUnexpected?.some((r) => r.test(n)),
    );
    if (missing.length || unexpected.length || mismatched.length) {
      const parts: string[] = [];
      if (missing.length) parts.push(`${missing.length} keys missing (${list(missing)})`);
      if (unexpected.length) parts.push(`${unexpected.length} unexpected (${list(unexpected)})`);
      if (mismatched.length) {
        parts.push(
          `${mismatched.length} mis-shaped (${list(mismatched.map((m) => `${m.name}: expected ${fmtShape(m.expected)}, found ${fmtShape(m.found)}`))})`,
        );
      }
      throw new WeightLoadError(`load: ${parts.join("; ")}`, missing, unexpected, mismatched);
    }
    const dtype = options.dtype ?? "f32";
    let loaded = 0;
    let bytes = 0;
    for (const [key, p] of wanted) {
      if (!names.has(key)) continue;
      const entry = await ckpt.read(key);
      const f32 = toFloat32(entry);
      const t =
        dtype === "f16"
          ? Tensor.from(f32ArrayToF16(f32), p.shape, { dtype: "f16" })
          : Tensor.from(f32, p.shape, { dtype: "f32" });
      p.set(t);
      loaded++;
      bytes += t.byteLength;
    }
    return { loaded, bytes };
  } finally {
    if (typeof source === "string") await ckpt.close();
  }
}
