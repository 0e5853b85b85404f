/** An image as stored in a dataset: encoded bytes (PNG, JPEG, ...) and the path it came from, if any. */
export interface DatasetImage {
  bytes: Uint8Array;
  path: string | null;
}

/** One question–answer turn of The Cauldron's `texts` column. */
export interface Turn {
  user: string;
  assistant: string;
  source: string | null;
}

export type Segment<I = DatasetImage> = { type: "text"; text: string } | { type: "image"; image: I };

/** Images plus question–answer turns (The Cauldron, JSONL conversations). */
export interface ConversationSample<I = DatasetImage> {
  kind: "conversation";
  /** Names the record: `<source>/<shard file>#<row>`; used in every report about it. */
  id: string;
  images: I[];
  turns: Turn[];
}

/** A web document where texts and images alternate (OBELICS), or an image–caption pair. */
export interface InterleavedSample<I = DatasetImage> {
  kind: "interleaved";
  id: string;
  segments: Segment<I>[];
}

export type Sample<I = DatasetImage> = ConversationSample<I> | InterleavedSample<I>;

/** The images of a sample in order of appearance. */
export function sampleImages<I>(sample: Sample<I>): I[] {
  if (sample.kind === "conversation") return sample.images;
  const out: I[] = [];
  for (const s of sample.segments) if (s.type === "image") out.push(s.image);
  return out;
}

/** The same sample with each image replaced by `f(image, index)`. */
export async function mapSampleImages<I, J>(
  sample: Sample<I>,
  f: (image: I, index: number) => J | Promise<J>,
): Promise<Sample<J>> {
  if (sample.kind === "conversation") {
    const images: J[] = [];
    for (let i = 0; i < sample.images.length; i++) images.push(await f(sample.images[i], i));
    return { kind: "conversation", id: sample.id, images, turns: sample.turns };
  }
  const segments: Segment<J>[] = [];
  let index = 0;
  for (const s of sample.segments) {
    segments.push(s.type === "text" ? s : { type: "image", image: await f(s.image, index++) });
  }
  return { kind: "interleaved", id: sample.id, segments };
}

/** Where a record lives in its shard: its ordinal and, for line/tar formats, its byte offset. */
export interface Address {
  row: number;
  offset?: number;
}

/** A bad record as a source or stage reports it. */
export interface BadRecord {
  id: string;
  /** Short stable key to count by, e.g. `image-too-small`, `parse-error`. */
  reason: string;
  /** What was wrong, for a person. */
  detail: string;
}

export type SourceRecord<T> =
  | { address: Address; next: Address; value: T }
  | { address: Address; next: Address; bad: BadRecord };

/**
 * A sharded dataset that can be read sequentially from any record boundary and
 * re-read by address. Both are what a saved iterator state needs to resume exactly.
 */
export interface ShardSource<T> {
  /** Prefix of record ids and the name checked when a state is restored. */
  readonly name: string;
  /** One entry per shard (a file path). */
  readonly shards: readonly string[];
  /** Records of `shard` from `from` (the `next` of an earlier record) or from its start. */
  read(shard: number, from: Address | null): AsyncIterable<SourceRecord<T>>;
  /** The records at `addresses` of `shard`, in the order given. */
  fetch(shard: number, addresses: readonly Address[]): Promise<SourceRecord<T>[]>;
}

/** A problem with a dataset file or a saved state (not a bad sample: those are counted). */
export class DatasetError extends Error {
  override name = "DatasetError";
}
