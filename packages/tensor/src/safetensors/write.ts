import { randomBytes } from "node:crypto";
import { type FileHandle, mkdir, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import {
  DTYPE_SIZE,
  HOST_IS_LITTLE_ENDIAN,
  isSafetensorsDtype,
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
} from "./dtype.js";
import { SafetensorsError } from "./errors.js";

/** Raw bytes, or a typed array whose element type matches the dtype (F32 ↔ Float32Array, ...). */
export type TensorData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

export interface TensorToWrite {
  dtype: SafetensorsDtype;
  shape: readonly number[];
  data: TensorData;
}

/** Typed arrays accepted per dtype besides raw Uint8Array bytes: a mismatch would write wrong values. */
const TYPED_FOR: Record<SafetensorsDtype, string[]> = {
  F64: ["Float64Array"],
  F32: ["Float32Array"],
  F16: ["Uint16Array"],
  BF16: ["Uint16Array"],
  I64: ["BigInt64Array"],
  I32: ["Int32Array"],
  I16: ["Int16Array"],
  I8: ["Int8Array"],
  U64: ["BigUint64Array"],
  U32: ["Uint32Array"],
  U16: ["Uint16Array"],
  U8: ["Uint8Array"],
  BOOL: ["Uint8Array"],
};

interface Prepared {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  bytes: Uint8Array;
}

/** Check every record before touching the disk, so a bad one can never leave a half-written file. */
function prepare(file: string, tensors: Record<string, TensorToWrite>): Prepared[] {
  const out: Prepared[] = [];
  for (const name of Object.keys(tensors).sort(byName)) {
    const bad = (problem: string): never => {
      throw new SafetensorsError(file, `write: ${problem}`, { tensor: name });
    };
    if (name === "" || name === "__metadata__") bad("reserved or empty tensor name");
    const t = tensors[name];
    if (t === null || typeof t !== "object") bad("record must be {dtype, shape, data}");
    const { dtype, shape, data } = t;
    if (!isSafetensorsDtype(dtype))
      bad(`unknown dtype ${JSON.stringify(dtype)} (known: ${SAFETENSORS_DTYPES.join(", ")})`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    if (!ArrayBuffer.isView(data) || data instanceof DataView)
      bad("data must be a Uint8Array or a typed array");
    const kind = data.constructor.name;
    if (kind !== "Uint8Array" && kind !== "Buffer" && !TYPED_FOR[dtype].includes(kind)) {
      bad(
        `data is a ${kind} but dtype is ${dtype} (pass raw bytes as a Uint8Array, or a ${TYPED_FOR[dtype].join("/")})`,
      );
    }
    if (kind !== "Uint8Array" && kind !== "Buffer" && !HOST_IS_LITTLE_ENDIAN)
      bad("typed arrays on a big-endian host");
    let count = 1;
    for (const d of shape) count *= d;
    const need = count * DTYPE_SIZE[dtype];
    if (data.byteLength !== need) {
      bad(`${dtype} [${shape.join(", ")}] needs ${need} bytes, data has ${data.byteLength}`);
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (dtype === "BOOL") {
      const i = bytes.findIndex((b) => b > 1);
      if (i >= 0) bad(`BOOL element ${i} is byte ${bytes[i]}, expected 0 or 1`);
    }
    out.push({ name, dtype, shape: [...shape], bytes });
  }
  return out;
}

/** Code-unit order, matching sorted() in Python and the Rust writer for ASCII names. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function checkMetadata(file: string, metadata: Record<string, string> | undefined): void {
  for (const [k, v] of Object.entries(metadata ?? {})) {
    if (typeof v !== "string")
      throw new SafetensorsError(file, `write: __metadata__["${k}"] must be a string, got ${typeof v}`);
  }
}

/** The header bytes: JSON padded with spaces so the data region starts 8-byte aligned. */
function encodeHeader(prepared: Prepared[], metadata: Record<string, string> | undefined): Uint8Array {
  // Built by hand so entries keep name order (JS objects put integer-like keys first).
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const p of prepared) {
    const end = offset + p.bytes.byteLength;
    parts.push(
      `${JSON.stringify(p.name)}:${JSON.stringify({ dtype: p.dtype, shape: p.shape, data_offsets: [offset, end] })}`,
    );
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const padded = json.byteLength + ((8 - (json.byteLength % 8)) % 8);
  const out = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

const WRITE_CHUNK = 1 << 30;

/**
 * Write chunks to a temp file beside `path`, fsync, then rename over `path`: readers see the old
 * file or the whole new one, never a torn write. On any failure the temp file is removed.
 */
async function atomicWrite(path: string, chunks: Uint8Array[]): Promise<void> {
  const expected = chunks.reduce((s, c) => s + c.byteLength, 0);
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, "wx");
    let pos = 0;
    for (const chunk of chunks) {
      // Re-read byteLength each step: a buffer detached or shrunk by someone else must not go unnoticed.
      for (let done = 0; done < chunk.byteLength; ) {
        const length = Math.min(WRITE_CHUNK, chunk.byteLength - done);
        const { bytesWritten } = await fh.write(chunk, done, length, pos);
        if (bytesWritten <= 0) throw new Error("write made no progress");
        done += bytesWritten;
        pos += bytesWritten;
      }
    }
    if (pos !== expected)
      throw new Error(
        `wrote ${pos} bytes, expected ${expected} (was a data buffer changed during the write?)`,
      );
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (cause) {
    await fh?.close().catch(() => {});
    await rm(tmp, { force: true });
    if (cause instanceof SafetensorsError) throw cause;
    throw new SafetensorsError(path, `write failed, file left untouched: ${(cause as Error).message}`, {
      cause,
    });
  }
  // Persist the rename itself; some platforms cannot open a directory, which only weakens durability.
  try {
    const d = await open(dir, "r");
    await d.sync().finally(() => d.close());
  } catch {}
}

/**
 * Write one safetensors file atomically. Tensors are laid out in name order with contiguous
 * offsets, like the Rust and Python writers; every record is validated before anything is written.
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  const file = resolve(path);
  checkMetadata(file, metadata);
  const prepared = prepare(file, tensors);
  await atomicWrite(file, [encodeHeader(prepared, metadata), ...prepared.map((p) => p.bytes)]);
}

export interface ShardedWriteOptions {
  /** Start a new shard before one would exceed this many tensor bytes (default 5 GB, as HF). */
  maxShardBytes?: number;
  /** `__metadata__` written into every shard. */
  metadata?: Record<string, string>;
  /** File name stem: `<prefix>-00001-of-00002.safetensors`, `<prefix>.safetensors.index.json`. */
  prefix?: string;
}

/**
 * Write a sharded checkpoint the way Hugging Face does: shards filled greedily in name order,
 * then `<prefix>.safetensors.index.json` with `metadata.total_size` and `weight_map`. Each file is
 * written atomically and the index last, so a crash never leaves an index naming missing shards.
 */
export async function writeShardedSafetensors(
  dir: string,
  tensors: Record<string, TensorToWrite>,
  options: ShardedWriteOptions = {},
): Promise<{ index: string; shards: string[] }> {
  const root = resolve(dir);
  const prefix = options.prefix ?? "model";
  const maxBytes = options.maxShardBytes ?? 5_000_000_000;
  const indexPath = join(root, `${prefix}.safetensors.index.json`);
  checkMetadata(indexPath, options.metadata);
  const prepared = prepare(indexPath, tensors);
  const groups: Prepared[][] = [];
  let size = 0;
  for (const p of prepared) {
    if (groups.length === 0 || (size + p.bytes.byteLength > maxBytes && size > 0)) {
      groups.push([]);
      size = 0;
    }
    groups[groups.length - 1].push(p);
    size += p.bytes.byteLength;
  }
  if (groups.length === 0) groups.push([]);
  await mkdir(root, { recursive: true });
  const pad = (i: number): string => String(i).padStart(5, "0");
  const weightMap: Record<string, string> = {};
  const shards: string[] = [];
  for (const [i, group] of groups.entries()) {
    const name = `${prefix}-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`;
    const path = join(root, name);
    await atomicWrite(path, [encodeHeader(group, options.metadata), ...group.map((p) => p.bytes)]);
    for (const p of group) weightMap[p.name] = name;
    shards.push(path);
  }
  const totalSize = prepared.reduce((s, p) => s + p.bytes.byteLength, 0);
  const index = JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2);
  await atomicWrite(indexPath, [new TextEncoder().encode(`${index}\n`)]);
  return { index: indexPath, shards };
}
