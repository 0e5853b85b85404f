import { readFile } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import type { BadRecord, DatasetImage } from "../types.js";

export interface ImageRefOptions {
  /** Folder that relative image paths are read from. */
  imageRoot?: string;
  /** Maps a string image reference (a URL, a dataset-relative path) to a local file path, or null when it has none. */
  resolveImage?: (ref: string) => string | null;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Text from a string or from UTF-8 bytes (parquet files written without the UTF8 annotation). */
export function asText(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) {
    try {
      return decoder.decode(value);
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * One dataset image reference — `{bytes, path}` (HF `Image` feature), raw bytes, or a
 * string path/URL — as encoded bytes; a `BadRecord` says why it cannot be had.
 */
export async function loadImageRef(
  ref: unknown,
  id: string,
  index: number,
  options: ImageRefOptions,
): Promise<DatasetImage | BadRecord> {
  if (ref instanceof Uint8Array) return { bytes: ref, path: null };
  if (ref && typeof ref === "object") {
    const { bytes, path } = ref as { bytes?: unknown; path?: unknown };
    const p = asText(path);
    if (bytes instanceof Uint8Array && bytes.length > 0) return { bytes, path: p };
    if (p) return loadImagePath(p, id, index, options);
    return { id, reason: "missing-image", detail: `image ${index} has neither bytes nor a path` };
  }
  if (typeof ref === "string") return loadImagePath(ref, id, index, options);
  return {
    id,
    reason: "schema",
    detail: `image ${index} is ${describe(ref)}, expected {bytes, path}, bytes or a path`,
  };
}

async function loadImagePath(
  ref: string,
  id: string,
  index: number,
  options: ImageRefOptions,
): Promise<DatasetImage | BadRecord> {
  let file: string | null;
  if (options.resolveImage) file = options.resolveImage(ref);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) file = null;
  else file = isAbsolute(ref) ? ref : options.imageRoot ? resolve(options.imageRoot, ref) : null;
  if (file === null) {
    return {
      id,
      reason: "image-unavailable",
      detail: `image ${index} is '${ref}', which the reader cannot open (it never downloads): pass imageRoot or resolveImage`,
    };
  }
  try {
    const bytes = await readFile(file);
    return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path: ref };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return {
      id,
      reason: "missing-image-file",
      detail: `image ${index}: cannot read ${file} (${code ?? (e as Error).message})`,
    };
  }
}

export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  return typeof v === "object"
    ? `an object with keys [${Object.keys(v as object).join(", ")}]`
    : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;
}

export function isBad(x: unknown): x is BadRecord {
  return !!x && typeof x === "object" && "reason" in x && "detail" in x && "id" in x;
}
