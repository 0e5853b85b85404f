import { basename } from "node:path";
import {
  type AsyncBuffer,
  asyncBufferFromFile,
  type FileMetaData,
  parquetMetadataAsync,
  parquetReadObjects,
  parquetSchema,
} from "hyparquet";
import { type Address, DatasetError, type Sample, type ShardSource, type SourceRecord } from "../types.js";
import type { ImageRefOptions } from "./image-ref.js";
import { isBad } from "./image-ref.js";
import { rowToSample } from "./rows.js";

export interface ParquetSourceOptions extends ImageRefOptions {
  /** Prefix of record ids; also checked on restore (default `parquet`). */
  name?: string;
  /** Row layout; `auto` reads it from the file's schema (default). */
  schema?: "cauldron" | "obelics" | "auto";
  /**
   * Rows decoded per read when the file has page offset indexes (hyparquet then
   * reads only the pages needed); without them a whole row group is read at once.
   */
  rowsPerRead?: number;
  /**
   * Column chunks without an offset index are decoded whole on every read; up to
   * this size (default 1 MiB) that is cheap enough to read `rowsPerRead` rows at a
   * time, above it the whole row group is read at once.
   */
  smallChunkBytes?: number;
}

interface OpenFile {
  file: AsyncBuffer;
  metadata: FileMetaData;
  schema: "cauldron" | "obelics";
  /** Row-group boundaries: group g holds rows [starts[g], starts[g + 1]). */
  starts: number[];
  /** Per row group: can rows be read a few at a time without re-reading big chunks whole? */
  pageIndexed: boolean[];
}

const SMALL_CHUNK = 1 << 20;

/**
 * Hugging Face parquet shards in The Cauldron's schema (`images: [{bytes, path}]`,
 * `texts: [{user, assistant, source}]`) or OBELICS's (`images` and `texts` lists
 * aligned, nulls where the other holds the item). String image entries are paths
 * read from `imageRoot` (the reader never downloads).
 */
export class ParquetSource implements ShardSource<Sample> {
  readonly name: string;
  private readonly open = new Map<number, Promise<OpenFile>>();
  private readonly rowsPerRead: number;

  constructor(
    readonly shards: readonly string[],
    private readonly options: ParquetSourceOptions = {},
  ) {
    this.name = options.name ?? "parquet";
    this.rowsPerRead = Math.max(1, options.rowsPerRead ?? 64);
  }

  private openShard(shard: number): Promise<OpenFile> {
    let p = this.open.get(shard);
    if (!p) {
      p = openParquet(
        this.shards[shard],
        this.options.schema ?? "auto",
        this.options.smallChunkBytes ?? SMALL_CHUNK,
      );
      this.open.set(shard, p);
      p.catch(() => this.open.delete(shard));
    }
    return p;
  }

  async *read(shard: number, from: Address | null): AsyncIterable<SourceRecord<Sample>> {
    const f = await this.openShard(shard);
    const start = from?.row ?? 0;
    for (let g = 0; g + 1 < f.starts.length; g++) {
      const [gs, ge] = [f.starts[g], f.starts[g + 1]];
      if (ge <= start) continue;
      const step = f.pageIndexed[g] ? this.rowsPerRead : ge - gs;
      for (let a = Math.max(start, gs); a < ge; a += step) {
        const b = Math.min(a + step, ge);
        const rows = await this.readRows(f, shard, a, b);
        for (let k = 0; k < rows.length; k++) {
          yield await this.toRecord(shard, f, a + k, rows[k]);
        }
      }
    }
  }

  async fetch(shard: number, addresses: readonly Address[]): Promise<SourceRecord<Sample>[]> {
    const f = await this.openShard(shard);
    const total = f.starts[f.starts.length - 1];
    const out: SourceRecord<Sample>[] = new Array(addresses.length);
    // One read per row group touched (or per needed page range when indexed).
    const byGroup = new Map<number, number[]>();
    addresses.forEach((a, i) => {
      if (!(a.row >= 0 && a.row < total))
        throw new DatasetError(`${this.shards[shard]}: row ${a.row} out of range (file has ${total} rows)`);
      const g = groupOf(f.starts, a.row);
      byGroup.set(g, [...(byGroup.get(g) ?? []), i]);
    });
    for (const [g, indices] of byGroup) {
      const rowsWanted = indices.map((i) => addresses[i].row);
      const lo = f.pageIndexed[g] ? Math.min(...rowsWanted) : f.starts[g];
      const hi = f.pageIndexed[g] ? Math.max(...rowsWanted) + 1 : f.starts[g + 1];
      const rows = await this.readRows(f, shard, lo, hi);
      for (const i of indices)
        out[i] = await this.toRecord(shard, f, addresses[i].row, rows[addresses[i].row - lo]);
    }
    return out;
  }

  private async readRows(
    f: OpenFile,
    shard: number,
    rowStart: number,
    rowEnd: number,
  ): Promise<Record<string, unknown>[]> {
    try {
      // utf8: false keeps unannotated BYTE_ARRAY (image bytes) binary; UTF8-annotated strings still decode.
      return await parquetReadObjects({
        file: f.file,
        metadata: f.metadata,
        rowStart,
        rowEnd,
        columns: ["images", "texts"],
        utf8: false,
      });
    } catch (e) {
      throw new DatasetError(
        `${this.shards[shard]}: cannot read rows ${rowStart}..${rowEnd}: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }

  private async toRecord(
    shard: number,
    f: OpenFile,
    row: number,
    data: Record<string, unknown>,
  ): Promise<SourceRecord<Sample>> {
    const id = `${this.name}/${basename(this.shards[shard])}#${row}`;
    const address = { row };
    const next = { row: row + 1 };
    const sample = await rowToSample(data, id, f.schema, this.options);
    return isBad(sample) ? { address, next, bad: sample } : { address, next, value: sample };
  }
}

async function openParquet(
  path: string,
  schema: "cauldron" | "obelics" | "auto",
  smallChunk: number,
): Promise<OpenFile> {
  let file: AsyncBuffer;
  let metadata: FileMetaData;
  try {
    file = await asyncBufferFromFile(path);
    metadata = await parquetMetadataAsync(file);
  } catch (e) {
    throw new DatasetError(`parquet shard ${path}: cannot open: ${(e as Error).message}`, { cause: e });
  }
  const tree = parquetSchema(metadata);
  const columns = tree.children.map((c) => c.element.name);
  for (const col of ["images", "texts"]) {
    if (!columns.includes(col))
      throw new DatasetError(
        `parquet shard ${path}: no '${col}' column (columns: ${columns.join(", ")}); expected The Cauldron's or OBELICS's schema`,
      );
  }
  let detected = schema;
  if (detected === "auto") {
    // texts: LIST -> repeated group -> element; a struct element (user/assistant) means The Cauldron.
    let node = tree.children.find((c) => c.element.name === "texts");
    while (node && node.children.length === 1) node = node.children[0];
    detected = node && node.children.length > 1 ? "cauldron" : "obelics";
  }
  const starts = [0];
  for (const rg of metadata.row_groups) starts.push(starts[starts.length - 1] + Number(rg.num_rows));
  // Without an offset index hyparquet decodes a column chunk whole; that is only cheap to repeat for small chunks.
  const pageIndexed = metadata.row_groups.map((rg) =>
    rg.columns.every(
      (c) =>
        (c.offset_index_offset !== undefined && c.offset_index_length) ||
        Number(c.meta_data?.total_compressed_size ?? 0) <= smallChunk,
    ),
  );
  return { file, metadata, schema: detected, starts, pageIndexed };
}

function groupOf(starts: number[], row: number): number {
  let g = 0;
  while (starts[g + 1] <= row) g++;
  return g;
}

export function parquetSource(shards: readonly string[], options: ParquetSourceOptions = {}): ParquetSource {
  return new ParquetSource(shards, options);
}
