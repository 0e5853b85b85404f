import { DTYPE_SIZE, isSafetensorsDtype, SAFETENSORS_DTYPES, type SafetensorsDtype } from "./dtype.js";
import { SafetensorsError } from "./errors.js";

/** Same cap as the Rust reference reader: a header is names and offsets, never data. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface HeaderEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Offsets relative to the start of the data region, as in the file. */
  begin: number;
  end: number;
}

export interface ParsedHeader {
  /** Byte length of the JSON header (the u64 at the start of the file). */
  headerLength: number;
  /** Absolute file offset of the data region: 8 + headerLength. */
  dataStart: number;
  metadata: Record<string, string>;
  tensors: Map<string, HeaderEntry>;
}

/** Validate the 8-byte prefix; returns the header length. */
export function parseHeaderLength(prefix: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8)
    throw new SafetensorsError(file, `file is ${fileSize} bytes, too short for the 8-byte header length`);
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      file,
      `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte cap; not a safetensors file?`,
    );
  }
  const headerLength = Number(n);
  if (headerLength > fileSize - 8) {
    throw new SafetensorsError(
      file,
      `header length ${headerLength} runs past the end of the file (${fileSize} bytes); truncated or not a safetensors file?`,
    );
  }
  if (headerLength < 2)
    throw new SafetensorsError(file, `header length ${headerLength} is too small for a JSON object`);
  return headerLength;
}

/**
 * Parse and check the JSON header against the file size. Enforces the format's rules: known
 * dtypes, non-negative integer shapes, byte counts matching the shape, and data_offsets that
 * tile the data region exactly (sorted, no overlap, no hole, no trailing bytes) — the spec
 * forbids holes so that a file cannot smuggle a second payload.
 */
export function parseHeader(json: Uint8Array, fileSize: number, file: string): ParsedHeader {
  const headerLength = json.byteLength;
  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(json);
  } catch (cause) {
    throw new SafetensorsError(file, "header is not valid UTF-8", { cause });
  }
  if (!text.startsWith("{")) {
    throw new SafetensorsError(
      file,
      `header must start with '{', found ${JSON.stringify(text.slice(0, 16))}`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new SafetensorsError(file, `header is not valid JSON (${(cause as Error).message})`, { cause });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new SafetensorsError(file, "header JSON is not an object");
  }

  let metadata: Record<string, string> = {};
  const tensors = new Map<string, HeaderEntry>();
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = parseMetadata(value, file);
      continue;
    }
    tensors.set(name, parseEntry(name, value, dataLength, file));
  }

  // Sort by offsets; each tensor must start exactly where the previous one ended.
  const sorted = [...tensors].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let cursor = 0;
  let previous: string | undefined;
  for (const [name, e] of sorted) {
    if (e.begin < cursor) {
      throw new SafetensorsError(
        file,
        `data_offsets [${e.begin}, ${e.end}] overlap tensor "${previous}" (which ends at ${cursor})`,
        { tensor: name },
      );
    }
    if (e.begin > cursor) {
      throw new SafetensorsError(
        file,
        `data_offsets [${e.begin}, ${e.end}] leave a hole of ${e.begin - cursor} bytes after ${
          previous === undefined ? "the header" : `tensor "${previous}"`
        }; the format requires tensors to tile the data region`,
        { tensor: name },
      );
    }
    cursor = e.end;
    previous = name;
  }
  if (cursor !== dataLength) {
    throw new SafetensorsError(
      file,
      `tensors cover ${cursor} bytes of a ${dataLength}-byte data region; ${dataLength - cursor} trailing bytes belong to no tensor`,
    );
  }
  return { headerLength, dataStart, metadata, tensors };
}

function parseMetadata(value: unknown, file: string): Record<string, string> {
  if (value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new SafetensorsError(file, `__metadata__ must be an object of strings, found ${describe(value)}`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== "string") {
      throw new SafetensorsError(file, `__metadata__["${k}"] must be a string, found ${describe(v)}`);
    }
    out[k] = v;
  }
  return out;
}

function parseEntry(name: string, value: unknown, dataLength: number, file: string): HeaderEntry {
  const bad = (problem: string): never => {
    throw new SafetensorsError(file, problem, { tensor: name });
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    bad(`entry must be an object {dtype, shape, data_offsets}, found ${describe(value)}`);
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (!isSafetensorsDtype(dtype))
    bad(`unknown dtype ${describe(dtype)} (known: ${SAFETENSORS_DTYPES.join(", ")})`);
  const dt = dtype as SafetensorsDtype;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    bad(`shape must be an array of non-negative integers, found ${describe(shape)}`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
  ) {
    bad(`data_offsets must be [begin, end] non-negative integers, found ${describe(offsets)}`);
  }
  const dims = shape as number[];
  const [begin, end] = offsets as [number, number];
  if (begin > end) bad(`data_offsets [${begin}, ${end}] have begin > end`);
  if (end > dataLength) {
    bad(
      `data_offsets [${begin}, ${end}] run past the end of the data region (${dataLength} bytes); truncated file?`,
    );
  }
  let count = 1;
  for (const d of dims) count *= d;
  const bytes = count * DTYPE_SIZE[dt];
  if (!Number.isSafeInteger(bytes)) bad(`shape [${dims.join(", ")}] is too large`);
  if (end - begin !== bytes) {
    bad(
      `data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dt} [${dims.join(", ")}] needs ${bytes}`,
    );
  }
  return { dtype: dt, shape: [...dims], begin, end };
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
