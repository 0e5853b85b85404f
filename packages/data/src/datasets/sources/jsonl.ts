import { type FileHandle, open } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { type Address, DatasetError, type Sample, type ShardSource, type SourceRecord } from "../types.js";
import { type ImageRefOptions, isBad } from "./image-ref.js";
import { type RowSchema, rowToSample } from "./rows.js";

export interface JsonlSourceOptions extends ImageRefOptions {
  /** Prefix of record ids; also checked on restore (default `jsonl`). */
  name?: string;
  /** Row layout; `auto` decides per line (default). */
  schema?: RowSchema | "auto";
}

const CHUNK = 1 << 18;

/** Lines of a file from byte `offset`, each with its start offset and ordinal. Blank lines are skipped but counted. */
async function* readLines(
  path: string,
  offset: number,
  firstLine: number,
): AsyncGenerator<{ line: string; offset: number; row: number; next: number }> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    throw new DatasetError(
      `jsonl shard ${path}: cannot open: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      { cause: e },
    );
  }
  try {
    const decoder = new TextDecoder();
    let pending: Uint8Array[] = [];
    let pendingLen = 0;
    let lineStart = offset;
    let pos = offset;
    let row = firstLine;
    const buf = new Uint8Array(CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      const eof = bytesRead === 0;
      let from = 0;
      const chunk = buf.subarray(0, bytesRead);
      for (;;) {
        const nl = eof ? -1 : chunk.indexOf(0x0a, from);
        if (nl < 0) break;
        pending.push(chunk.slice(from, nl));
        pendingLen += nl - from;
        const bytes = concat(pending, pendingLen);
        const next = lineStart + pendingLen + 1;
        const line = decoder.decode(bytes);
        if (line.trim() !== "") yield { line, offset: lineStart, row, next };
        row++;
        lineStart = next;
        pending = [];
        pendingLen = 0;
        from = nl + 1;
      }
      if (eof) {
        if (pendingLen > 0) {
          const line = decoder.decode(concat(pending, pendingLen));
          if (line.trim() !== "") yield { line, offset: lineStart, row, next: lineStart + pendingLen };
        }
        return;
      }
      pending.push(chunk.slice(from));
      pendingLen += bytesRead - from;
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(length);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * JSON Lines shards with images in a folder. Each line is one record in any of
 * the layouts `rowToSample` knows, with image entries as paths relative to
 * `imageRoot` (default: the JSONL file's folder):
 * `{"images": ["a.png"], "texts": [{"user": "...", "assistant": "..."}]}`,
 * `{"images": [null, "b.png"], "texts": ["intro", null]}`, `{"image": "c.png", "text": "a cat"}`.
 */
export class JsonlSource implements ShardSource<Sample> {
  readonly name: string;

  constructor(
    readonly shards: readonly string[],
    private readonly options: JsonlSourceOptions = {},
  ) {
    this.name = options.name ?? "jsonl";
  }

  async *read(shard: number, from: Address | null): AsyncIterable<SourceRecord<Sample>> {
    for await (const l of readLines(this.shards[shard], from?.offset ?? 0, from?.row ?? 0)) {
      yield await this.toRecord(shard, l);
    }
  }

  async fetch(shard: number, addresses: readonly Address[]): Promise<SourceRecord<Sample>[]> {
    const out: SourceRecord<Sample>[] = [];
    for (const a of addresses) {
      if (a.offset === undefined)
        throw new DatasetError(`jsonl ${this.shards[shard]}: address of row ${a.row} has no byte offset`);
      const it = readLines(this.shards[shard], a.offset, a.row);
      const r = await it.next();
      await it.return(undefined);
      if (r.done || r.value.row !== a.row)
        throw new DatasetError(
          `jsonl ${this.shards[shard]}: no line ${a.row + 1} at byte ${a.offset}; did the file change?`,
        );
      out.push(await this.toRecord(shard, r.value));
    }
    return out;
  }

  private async toRecord(
    shard: number,
    l: { line: string; offset: number; row: number; next: number },
  ): Promise<SourceRecord<Sample>> {
    const path = this.shards[shard];
    const id = `${this.name}/${basename(path)}:${l.row + 1}`;
    const address = { row: l.row, offset: l.offset };
    const next = { row: l.row + 1, offset: l.next };
    let parsed: unknown;
    try {
      parsed = JSON.parse(l.line);
    } catch (e) {
      return {
        address,
        next,
        bad: { id, reason: "parse-error", detail: `line ${l.row + 1} is not JSON: ${(e as Error).message}` },
      };
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      return {
        address,
        next,
        bad: { id, reason: "schema", detail: `line ${l.row + 1} is not a JSON object` },
      };
    }
    const sample = await rowToSample(parsed as Record<string, unknown>, id, this.options.schema ?? "auto", {
      imageRoot: this.options.imageRoot ?? dirname(path),
      resolveImage: this.options.resolveImage,
    });
    return isBad(sample) ? { address, next, bad: sample } : { address, next, value: sample };
  }
}

export function jsonlSource(shards: readonly string[], options: JsonlSourceOptions = {}): JsonlSource {
  return new JsonlSource(shards, options);
}
