import { BadLog, type BadSample, type StreamState } from "./bad-samples.js";
import { deriveSeed, Rng } from "./rng.js";
import { DONE, Stage } from "./stream.js";
import { type Address, DatasetError, type ShardSource, type SourceRecord } from "./types.js";

export interface ShardStreamOptions {
  /** Seeds shard order and the shuffle buffer. */
  seed?: number;
  /** Visit shards in a seeded order that changes each epoch (default true). */
  shuffleShards?: boolean;
  /** Records held for shuffling; 0 or 1 keeps the order of the shards (default 0). */
  shuffleBuffer?: number;
  /** Passes over the data; `Infinity` repeats forever (default 1). */
  epochs?: number;
  /** Called when a record is dropped (may run ahead of the consumer). */
  onBad?: (bad: BadSample) => void;
}

interface Buffered<T> {
  value: T;
  /** The entry `state()` saves, built once: state() runs per item, the buffer can hold thousands. */
  saved: SavedAddress;
}

type SavedAddress = [shard: number, row: number, offset: number | null];

interface ShardStreamState extends StreamState {
  stage: "read";
  source: string;
  shards: number;
  epoch: number;
  /** Index into this epoch's shard order. */
  position: number;
  /** Where to resume reading the current shard (null: its start). */
  cursor: Address | null;
  inputDone: boolean;
  rng: number[];
  /** Shuffle buffer contents by address, in buffer order. */
  buffer: SavedAddress[];
  done: boolean;
}

/**
 * Reads a sharded source epoch by epoch: shards in a seeded order, records through
 * a seeded shuffle buffer (drained at the end of each epoch, so every epoch sees each
 * record once). The saved state stores the buffer as addresses, so it stays small
 * and a restore re-reads just those records.
 */
export class ShardStream<T> extends Stage<T> {
  private readonly seed: number;
  private readonly shuffleShards: boolean;
  private readonly bufferSize: number;
  private readonly epochs: number;
  private readonly bad: BadLog;

  private epoch = 0;
  private position = 0;
  private cursor: Address | null = null;
  private inputDone = false;
  private done = false;
  private rng: Rng;
  private buffer: Buffered<T>[] = [];
  private order: number[] | null = null;
  private iter: AsyncIterator<SourceRecord<T>> | null = null;
  private pendingBuffer: ShardStreamState["buffer"] | null = null;

  constructor(
    readonly source: ShardSource<T>,
    options: ShardStreamOptions = {},
  ) {
    super("read");
    this.seed = options.seed ?? 0;
    this.shuffleShards = options.shuffleShards ?? true;
    this.bufferSize = Math.max(0, Math.floor(options.shuffleBuffer ?? 0));
    this.epochs = options.epochs ?? 1;
    if (!(this.epochs > 0))
      throw new DatasetError(`shardStream(${source.name}): epochs must be > 0, got ${this.epochs}`);
    if (source.shards.length === 0)
      throw new DatasetError(`shardStream(${source.name}): the source has no shards`);
    this.bad = new BadLog("read", options.onBad);
    this.rng = new Rng(deriveSeed(this.seed, "shuffle-buffer", source.name));
  }

  /** Shard order of `epoch`: a pure function of (seed, epoch), so it is never stored. */
  shardOrder(epoch: number): number[] {
    const order = this.source.shards.map((_, i) => i);
    if (this.shuffleShards) new Rng(deriveSeed(this.seed, "shards", epoch, this.source.name)).shuffle(order);
    return order;
  }

  async next(): Promise<IteratorResult<T, undefined>> {
    this.started = true;
    if (this.pendingBuffer) await this.refillBuffer();
    while (!this.done) {
      if (!this.inputDone) {
        const item = await this.pull();
        if (item) {
          if (this.bufferSize <= 1) return { done: false, value: item.value };
          if (this.buffer.length < this.bufferSize) {
            this.buffer.push(item);
            continue;
          }
          const j = this.rng.int(this.buffer.length);
          const out = this.buffer[j];
          this.buffer[j] = item;
          return { done: false, value: out.value };
        }
        this.inputDone = true;
      }
      if (this.buffer.length > 0) {
        const j = this.rng.int(this.buffer.length);
        const out = this.buffer[j];
        this.buffer[j] = this.buffer[this.buffer.length - 1];
        this.buffer.pop();
        return { done: false, value: out.value };
      }
      this.epoch++;
      this.position = 0;
      this.cursor = null;
      this.order = null;
      this.inputDone = false;
      if (this.epoch >= this.epochs) this.done = true;
    }
    return DONE;
  }

  /** Next good record of this epoch, or null at its end. Bad records are logged and skipped. */
  private async pull(): Promise<Buffered<T> | null> {
    this.order ??= this.shardOrder(this.epoch);
    while (this.position < this.order.length) {
      const shard = this.order[this.position];
      this.iter ??= this.source.read(shard, this.cursor)[Symbol.asyncIterator]();
      const r = await this.iter.next();
      if (r.done) {
        this.iter = null;
        this.position++;
        this.cursor = null;
        continue;
      }
      const rec = r.value;
      this.cursor = rec.next;
      if ("bad" in rec) {
        this.bad.record(rec.bad);
        continue;
      }
      return { value: rec.value, saved: [shard, rec.address.row, rec.address.offset ?? null] };
    }
    return null;
  }

  state(): ShardStreamState {
    return {
      stage: "read",
      source: this.source.name,
      shards: this.source.shards.length,
      epoch: this.epoch,
      position: this.position,
      cursor: this.cursor,
      inputDone: this.inputDone,
      rng: this.rng.state(),
      buffer: this.pendingBuffer ?? this.buffer.map((b) => b.saved),
      done: this.done,
      bad: this.bad.toJSON(),
    };
  }

  protected restoreOwn(raw: StreamState): void {
    const s = raw as ShardStreamState;
    if (s.source !== this.source.name || s.shards !== this.source.shards.length) {
      throw new DatasetError(
        `shardStream: state was saved for source '${s.source}' with ${s.shards} shards, this is '${this.source.name}' with ${this.source.shards.length}`,
      );
    }
    if (s.buffer.length > Math.max(this.bufferSize, 0)) {
      throw new DatasetError(
        `shardStream(${this.source.name}): saved buffer holds ${s.buffer.length} records, more than shuffleBuffer ${this.bufferSize}`,
      );
    }
    this.epoch = s.epoch;
    this.position = s.position;
    this.cursor = s.cursor;
    this.inputDone = s.inputDone;
    this.done = s.done;
    this.rng = new Rng(s.rng);
    this.order = null;
    this.iter = null;
    this.buffer = [];
    this.pendingBuffer = s.buffer.slice();
    this.bad.load(s.bad);
  }

  /** Re-read the saved shuffle buffer, shard by shard, keeping its order. */
  private async refillBuffer(): Promise<void> {
    const saved = this.pendingBuffer ?? [];
    const byShard = new Map<number, number[]>();
    saved.forEach(([shard], i) => {
      const list = byShard.get(shard) ?? [];
      list.push(i);
      byShard.set(shard, list);
    });
    const buffer: Buffered<T>[] = new Array(saved.length);
    for (const [shard, indices] of byShard) {
      if (!(shard >= 0 && shard < this.source.shards.length))
        throw new DatasetError(`shardStream(${this.source.name}): saved buffer names shard ${shard}`);
      const addresses = indices.map((i) => toAddress(saved[i]));
      const records = await this.source.fetch(shard, addresses);
      records.forEach((rec, k) => {
        if ("bad" in rec) {
          throw new DatasetError(
            `shardStream(${this.source.name}): record ${rec.bad.id} was good when the state was saved but now is not (${rec.bad.detail}); did the data change?`,
          );
        }
        buffer[indices[k]] = { value: rec.value, saved: saved[indices[k]] };
      });
    }
    this.buffer = buffer;
    this.pendingBuffer = null;
  }

  override async close(): Promise<void> {
    await this.iter?.return?.();
    this.iter = null;
  }
}

function toAddress([, row, offset]: SavedAddress): Address {
  return offset === null ? { row } : { row, offset };
}

export function shardStream<T>(source: ShardSource<T>, options: ShardStreamOptions = {}): ShardStream<T> {
  return new ShardStream(source, options);
}
