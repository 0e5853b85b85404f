import { type FileHandle, open } from "node:fs/promises";
import { DatasetError } from "../types.js";

/** A regular file inside a tar archive. */
export interface TarEntry {
  name: string;
  data: Uint8Array;
  /** Byte offset of the entry's first header (its pax/GNU long-name header when it has one). */
  offset: number;
  /** Byte offset just past the entry (its data padded to 512). */
  next: number;
}

export class TarError extends DatasetError {
  override name = "TarError";
}

const BLOCK = 512;
const textDecoder = new TextDecoder();

/**
 * Regular files of a ustar/pax/GNU tar from byte `offset` (a header boundary).
 * Checks each header's checksum; a bad header or a truncated file throws `TarError`
 * naming the file and the offset, since nothing after it can be trusted.
 */
export async function* readTar(path: string, offset = 0): AsyncGenerator<TarEntry> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    throw new DatasetError(
      `tar shard ${path}: cannot open: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      { cause: e },
    );
  }
  try {
    const { size: fileSize } = await fh.stat();
    const readExact = async (at: number, length: number): Promise<Uint8Array> => {
      const buf = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, at + got);
        if (bytesRead === 0)
          throw new TarError(
            `tar shard ${path}: truncated at byte ${at + got} (wanted ${length} bytes from ${at}; file has ${fileSize})`,
          );
        got += bytesRead;
      }
      return buf;
    };

    let pos = offset;
    let entryStart = pos;
    let longName: string | null = null;
    let paxPath: string | null = null;
    let paxSize: number | null = null;
    while (pos + BLOCK <= fileSize) {
      const header = await readExact(pos, BLOCK);
      if (header.every((b) => b === 0)) return; // end-of-archive marker
      verifyChecksum(header, path, pos);
      const type = String.fromCharCode(header[156] || 0x30);
      let size = parseNumber(header.subarray(124, 136), path, pos, "size");
      if (paxSize !== null) size = paxSize;
      const dataStart = pos + BLOCK;
      const next = dataStart + Math.ceil(size / BLOCK) * BLOCK;
      // The padding to 512 must be there too: a file cut inside it was truncated (a missing end-of-archive marker alone is tolerated, as Python's tarfile does).
      if (next > fileSize)
        throw new TarError(
          `tar shard ${path}: entry at byte ${pos} claims ${size} bytes (${next - dataStart} padded) but the file ends at ${fileSize}`,
        );

      if (type === "x" || type === "L" || type === "g" || type === "K") {
        const body = await readExact(dataStart, size);
        if (type === "x") {
          const pax = parsePax(body, path, pos);
          if (pax.path !== undefined) paxPath = pax.path;
          if (pax.size !== undefined) paxSize = pax.size;
        } else if (type === "L") {
          longName = textDecoder.decode(body).replace(/\0+$/, "");
        }
        // 'g' (global pax) and 'K' (long link name) do not change file names or sizes.
        pos = next;
        continue;
      }

      const name = paxPath ?? longName ?? headerName(header);
      if (type === "0" || type === "\0" || type === "7") {
        const data = size > 0 ? await readExact(dataStart, size) : new Uint8Array(0);
        yield { name, data, offset: entryStart, next };
      }
      pos = next;
      entryStart = pos;
      longName = null;
      paxPath = null;
      paxSize = null;
    }
    if (pos < fileSize && pos + BLOCK > fileSize) {
      throw new TarError(`tar shard ${path}: ${fileSize - pos} stray bytes at ${pos}, less than a header`);
    }
  } finally {
    await fh.close();
  }
}

function headerName(h: Uint8Array): string {
  const name = cString(h.subarray(0, 100));
  const magic = cString(h.subarray(257, 263));
  // ustar splits long names into prefix (345..500) + name.
  if (magic.startsWith("ustar")) {
    const prefix = cString(h.subarray(345, 500));
    if (prefix) return `${prefix}/${name}`;
  }
  return name;
}

function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return textDecoder.decode(end < 0 ? b : b.subarray(0, end));
}

function parseNumber(field: Uint8Array, path: string, pos: number, what: string): number {
  if (field[0] & 0x80) {
    // GNU base-256 for values that do not fit in octal.
    let v = 0;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i];
    return v;
  }
  const text = cString(field).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text))
    throw new TarError(`tar shard ${path}: header at byte ${pos} has ${what} '${text}', not octal`);
  return Number.parseInt(text, 8);
}

function verifyChecksum(h: Uint8Array, path: string, pos: number): void {
  const stored = parseNumber(h.subarray(148, 156), path, pos, "checksum");
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  if (sum !== stored) {
    throw new TarError(
      `tar shard ${path}: header at byte ${pos} has checksum ${stored} but its bytes sum to ${sum}; the file is corrupt or not a tar`,
    );
  }
}

/** pax records: "<len> <key>=<value>\n" repeated. */
function parsePax(body: Uint8Array, path: string, pos: number): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const sp = body.indexOf(0x20, i);
    const len = Number.parseInt(textDecoder.decode(body.subarray(i, sp)), 10);
    if (sp < 0 || !(len > 0) || i + len > body.length)
      throw new TarError(`tar shard ${path}: malformed pax header at byte ${pos}`);
    const record = textDecoder.decode(body.subarray(sp + 1, i + len - 1));
    const eq = record.indexOf("=");
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if (key === "path") out.path = value;
    else if (key === "size") out.size = Number.parseInt(value, 10);
    i += len;
  }
  return out;
}
