import { basename } from "node:path";
import {
  type Address,
  type BadRecord,
  DatasetError,
  type Sample,
  type ShardSource,
  type SourceRecord,
} from "../types.js";
import { isBad } from "./image-ref.js";
import { readTar, TarError } from "./tar.js";

/** One WebDataset sample: the files sharing a key, by extension (`jpg`, `txt`, `json`, ...). */
export interface WebDatasetRecord {
  key: string;
  files: Record<string, Uint8Array>;
}

export interface WebDatasetSourceOptions {
  /** Prefix of record ids; also checked on restore (default `webdataset`). */
  name?: string;
  /** Turns a record into a sample; the default makes an image–caption pair. */
  map?: (record: WebDatasetRecord, id: string) => Sample | BadRecord;
}

const IMAGE_EXTS = ["jpg", "jpeg", "png", "webp", "gif", "bmp"];
const TEXT_EXTS = ["txt", "caption", "text"];

/** An image–caption pair from the first image (`jpg`, `png`, ...) and text (`txt`, `caption`) files. */
export function webDatasetPair(record: WebDatasetRecord, id: string): Sample | BadRecord {
  const exts = Object.keys(record.files);
  const imageExt = exts.find((e) => IMAGE_EXTS.includes(e.toLowerCase()));
  const textExt = exts.find((e) => TEXT_EXTS.includes(e.toLowerCase()));
  if (!imageExt)
    return {
      id,
      reason: "missing-image",
      detail: `no image file (have .${exts.join(", .")}; expected one of .${IMAGE_EXTS.join(", .")})`,
    };
  if (!textExt)
    return {
      id,
      reason: "missing-text",
      detail: `no caption file (have .${exts.join(", .")}; expected one of .${TEXT_EXTS.join(", .")})`,
    };
  const text = new TextDecoder().decode(record.files[textExt]);
  return {
    kind: "interleaved",
    id,
    segments: [
      { type: "image", image: { bytes: record.files[imageExt], path: `${record.key}.${imageExt}` } },
      { type: "text", text },
    ],
  };
}

/** WebDataset convention: the key is the path up to the first dot of the file name, the extension the rest. */
function splitKey(name: string): [string, string] | null {
  const m = /^((?:.*\/|)[^./]+)\.([^/]*)$/.exec(name);
  return m ? [m[1], m[2]] : null;
}

/**
 * WebDataset `.tar` shards: consecutive files with the same key form one record.
 * A record's address is the byte offset of its first header, so a restore seeks
 * straight to it. A corrupt or truncated shard yields one bad record naming the
 * offset and ends that shard.
 */
export class WebDatasetSource implements ShardSource<Sample> {
  readonly name: string;
  private readonly map: (record: WebDatasetRecord, id: string) => Sample | BadRecord;

  constructor(
    readonly shards: readonly string[],
    options: WebDatasetSourceOptions = {},
  ) {
    this.name = options.name ?? "webdataset";
    this.map = options.map ?? webDatasetPair;
  }

  async *read(shard: number, from: Address | null): AsyncIterable<SourceRecord<Sample>> {
    const path = this.shards[shard];
    let row = from?.row ?? 0;
    let group: { key: string; files: Record<string, Uint8Array>; offset: number } | null = null;
    try {
      for await (const entry of readTar(path, from?.offset ?? 0)) {
        const split = splitKey(entry.name);
        if (!split) continue; // no extension: not part of any sample (WebDataset skips these too)
        const [key, ext] = split;
        if (group && group.key !== key) {
          yield this.toRecord(shard, row++, group, entry.offset);
          group = null;
        }
        group ??= { key, files: {}, offset: entry.offset };
        group.files[ext] = entry.data;
      }
    } catch (e) {
      if (!(e instanceof TarError)) throw e;
      if (group) yield this.toRecord(shard, row++, group, Number.MAX_SAFE_INTEGER);
      group = null;
      const at = { row, offset: Number.MAX_SAFE_INTEGER };
      yield {
        address: at,
        next: at,
        bad: {
          id: `${this.name}/${basename(path)}`,
          reason: "corrupt-shard",
          detail: `${e.message}; rest of the shard skipped`,
        },
      };
      return;
    }
    if (group) yield this.toRecord(shard, row, group, Number.MAX_SAFE_INTEGER);
  }

  async fetch(shard: number, addresses: readonly Address[]): Promise<SourceRecord<Sample>[]> {
    const out: SourceRecord<Sample>[] = [];
    for (const a of addresses) {
      if (a.offset === undefined)
        throw new DatasetError(
          `webdataset ${this.shards[shard]}: address of record ${a.row} has no byte offset`,
        );
      const it = this.read(shard, a)[Symbol.asyncIterator]();
      const r = await it.next();
      await it.return?.();
      if (r.done || r.value.address.offset !== a.offset)
        throw new DatasetError(
          `webdataset ${this.shards[shard]}: no record at byte ${a.offset}; did the file change?`,
        );
      out.push(r.value);
    }
    return out;
  }

  private toRecord(
    shard: number,
    row: number,
    group: { key: string; files: Record<string, Uint8Array>; offset: number },
    next: number,
  ): SourceRecord<Sample> {
    const id = `${this.name}/${basename(this.shards[shard])}:${group.key}`;
    const address = { row, offset: group.offset };
    const nextAddress = { row: row + 1, offset: next };
    let sample: Sample | BadRecord;
    try {
      sample = this.map({ key: group.key, files: group.files }, id);
    } catch (e) {
      sample = { id, reason: "map-error", detail: (e as Error).message };
    }
    return isBad(sample)
      ? { address, next: nextAddress, bad: sample }
      : { address, next: nextAddress, value: sample };
  }
}

export function webDatasetSource(
  shards: readonly string[],
  options: WebDatasetSourceOptions = {},
): WebDatasetSource {
  return new WebDatasetSource(shards, options);
}
