import { type FileHandle, open, readFile, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, resolve } from "node:path";
import type { SafetensorsDtype, SafetensorsTensor } from "./dtype.js";
import { SafetensorsError } from "./errors.js";
import { type HeaderEntry, parseHeader, parseHeaderLength } from "./header.js";

export const INDEX_FILE = "model.safetensors.index.json";
export const SINGLE_FILE = "model.safetensors";

export interface SafetensorsInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  byteLength: number;
  /** Absolute path of the file holding the tensor. */
  file: string;
  /** Absolute position of the first byte in that file. */
  fileOffset: number;
}

/** A read tensor: always carries its name and file, so conversions can name it in errors. */
export interface ReadTensor extends SafetensorsTensor {
  name: string;
  file: string;
}

export interface SafetensorsCheckpoint {
  /** The file or index that was opened. */
  readonly path: string;
  /** `__metadata__` of the file; for a sharded checkpoint, of all shards merged. */
  readonly metadata: Record<string, string>;
  /** The index's own `metadata` object (e.g. total_size); undefined for a single file. */
  readonly indexMetadata: Record<string, unknown> | undefined;
  /** Every file the checkpoint spans (one, or the shards). */
  readonly files: readonly string[];
  /** Tensor names, sorted. */
  names(): string[];
  has(name: string): boolean;
  info(name: string): SafetensorsInfo;
  /** Reads only this tensor's bytes, with positioned reads, into a fresh 8-byte-aligned buffer. */
  read(name: string): Promise<ReadTensor>;
  close(): Promise<void>;
}

/** Largest single read(2); Linux caps one call at ~2 GiB and a 5 GB shard can hold bigger tensors. */
const READ_CHUNK = 1 << 30;

async function readExactly(
  fh: FileHandle,
  into: Uint8Array,
  position: number,
  file: string,
  what: string,
): Promise<void> {
  let done = 0;
  while (done < into.byteLength) {
    const length = Math.min(READ_CHUNK, into.byteLength - done);
    const { bytesRead } = await fh.read(into, done, length, position + done);
    if (bytesRead === 0) {
      throw new SafetensorsError(
        file,
        `unexpected end of file reading ${what} at byte ${position + done} (file changed since it was opened?)`,
      );
    }
    done += bytesRead;
  }
}

interface OpenFile {
  path: string;
  fh: FileHandle;
  dataStart: number;
  metadata: Record<string, string>;
  tensors: Map<string, HeaderEntry>;
}

async function openFile(path: string): Promise<OpenFile> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (cause) {
    throw new SafetensorsError(path, `cannot open: ${(cause as Error).message}`, { cause });
  }
  try {
    const { size } = await fh.stat();
    const prefix = new Uint8Array(8);
    if (size >= 8) await readExactly(fh, prefix, 0, path, "the header length");
    const headerLength = parseHeaderLength(prefix, size, path);
    const json = new Uint8Array(headerLength);
    await readExactly(fh, json, 8, path, "the header");
    const header = parseHeader(json, size, path);
    return { path, fh, dataStart: header.dataStart, metadata: header.metadata, tensors: header.tensors };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/**
 * Open a checkpoint lazily: a `.safetensors` file, a `*.safetensors.index.json`, or a directory
 * holding `model.safetensors.index.json` (preferred) or `model.safetensors`. Headers are read
 * and validated now (every shard's, so a weight_map naming a tensor its shard lacks fails here);
 * tensor bytes are read only by `read(name)`.
 */
export async function openSafetensors(pathOrDir: string): Promise<SafetensorsCheckpoint> {
  const path = resolve(pathOrDir);
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (cause) {
    throw new SafetensorsError(path, `cannot open: ${(cause as Error).message}`, { cause });
  }
  if (isDir) {
    const index = join(path, INDEX_FILE);
    if (await exists(index)) return openSharded(index);
    const single = join(path, SINGLE_FILE);
    if (await exists(single)) return openSingle(single);
    throw new SafetensorsError(path, `directory holds neither ${INDEX_FILE} nor ${SINGLE_FILE}`);
  }
  return path.endsWith(".json") ? openSharded(path) : openSingle(path);
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function openSingle(path: string): Promise<SafetensorsCheckpoint> {
  const f = await openFile(path);
  const where = new Map<string, OpenFile>();
  for (const name of f.tensors.keys()) where.set(name, f);
  return makeCheckpoint(path, f.metadata, undefined, [f], where);
}

async function openSharded(indexPath: string): Promise<SafetensorsCheckpoint> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(indexPath, "utf8"));
  } catch (cause) {
    throw new SafetensorsError(indexPath, `cannot read index: ${(cause as Error).message}`, { cause });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new SafetensorsError(indexPath, "index JSON is not an object");
  }
  const { weight_map: weightMap, metadata } = raw as Record<string, unknown>;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new SafetensorsError(indexPath, "index has no weight_map object");
  }
  if (
    metadata !== undefined &&
    (typeof metadata !== "object" || metadata === null || Array.isArray(metadata))
  ) {
    throw new SafetensorsError(indexPath, "index metadata must be an object");
  }
  const dir = dirname(indexPath);
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    // Shards must live beside the index: an absolute path or ".." could point anywhere.
    if (
      typeof shard !== "string" ||
      shard === "" ||
      isAbsolute(shard) ||
      normalize(shard).split(/[\\/]/).includes("..")
    ) {
      throw new SafetensorsError(
        indexPath,
        `weight_map entry must be a shard file name beside the index, found ${JSON.stringify(shard)}`,
        {
          tensor: name,
        },
      );
    }
    const list = byShard.get(shard) ?? [];
    list.push(name);
    byShard.set(shard, list);
  }

  const opened = new Map<string, OpenFile>();
  try {
    for (const shard of [...byShard.keys()].sort()) {
      const shardPath = join(dir, shard);
      if (!(await exists(shardPath))) {
        throw new SafetensorsError(
          indexPath,
          `shard ${shard} (holding ${byShard.get(shard)!.length} tensors) does not exist`,
          {
            tensor: byShard.get(shard)![0],
          },
        );
      }
      opened.set(shard, await openFile(shardPath));
    }
    const where = new Map<string, OpenFile>();
    const merged: Record<string, string> = {};
    for (const [shard, f] of opened) {
      Object.assign(merged, f.metadata);
      for (const name of byShard.get(shard)!) {
        if (!f.tensors.has(name)) {
          throw new SafetensorsError(
            f.path,
            `weight_map in ${indexPath} places this tensor here, but the shard lacks it`,
            {
              tensor: name,
            },
          );
        }
        where.set(name, f);
      }
    }
    return makeCheckpoint(
      indexPath,
      merged,
      (metadata ?? {}) as Record<string, unknown>,
      [...opened.values()],
      where,
    );
  } catch (e) {
    await Promise.all([...opened.values()].map((f) => f.fh.close()));
    throw e;
  }
}

function makeCheckpoint(
  path: string,
  metadata: Record<string, string>,
  indexMetadata: Record<string, unknown> | undefined,
  opened: OpenFile[],
  where: Map<string, OpenFile>,
): SafetensorsCheckpoint {
  let closed = false;
  const sortedNames = [...where.keys()].sort();
  const locate = (name: string): [OpenFile, HeaderEntry] => {
    const f = where.get(name);
    if (f === undefined) {
      // The usual mismatch is a missing or extra prefix ("model."), so suggest names differing only by one.
      const near = sortedNames.filter((n) => n.endsWith(`.${name}`) || name.endsWith(`.${n}`)).slice(0, 3);
      throw new SafetensorsError(
        path,
        `no such tensor among ${sortedNames.length}${near.length ? `; did you mean ${near.join(", ")}?` : ""}`,
        { tensor: name },
      );
    }
    return [f, f.tensors.get(name)!];
  };
  return {
    path,
    metadata,
    indexMetadata,
    files: opened.map((f) => f.path),
    names: () => [...sortedNames],
    has: (name) => where.has(name),
    info(name) {
      const [f, e] = locate(name);
      return {
        dtype: e.dtype,
        shape: [...e.shape],
        byteLength: e.end - e.begin,
        file: f.path,
        fileOffset: f.dataStart + e.begin,
      };
    },
    async read(name) {
      if (closed) throw new SafetensorsError(path, "read after close()", { tensor: name });
      const [f, e] = locate(name);
      // A fresh ArrayBuffer starts 8-byte aligned, so typed views of any dtype need no copy.
      const data = new Uint8Array(e.end - e.begin);
      await readExactly(f.fh, data, f.dataStart + e.begin, f.path, `tensor "${name}"`);
      return { name, file: f.path, dtype: e.dtype, shape: [...e.shape], data };
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(opened.map((f) => f.fh.close()));
    },
  };
}

/** Read every tensor of one (small) file into memory. For checkpoints use openSafetensors. */
export async function readSafetensorsFile(path: string): Promise<Map<string, ReadTensor>> {
  const ckpt = await openSafetensors(path);
  try {
    const out = new Map<string, ReadTensor>();
    for (const name of ckpt.names()) out.set(name, await ckpt.read(name));
    return out;
  } finally {
    await ckpt.close();
  }
}
