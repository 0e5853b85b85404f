import { BadLog, type BadSample, type StreamState } from "./bad-samples.js";
import { type DataStream, DONE, Stage } from "./stream.js";
import type { Sample } from "./types.js";

/** Documents packed into one training sequence. */
export interface Pack<T> {
  /** The item ids joined by `+`. */
  id: string;
  items: T[];
  /** Sum of the items' lengths, at most `maxLength`. */
  length: number;
}

export interface PackOptions<T> {
  /** Sequence budget, in the unit `length` counts (tokens, with each image's tokens). */
  maxLength: number;
  length: (item: T) => number;
  /** Most items in one pack (e.g. to cap images per sequence). */
  maxItems?: number;
  onBad?: (bad: BadSample) => void;
  idOf?: (item: T) => string;
}

/**
 * Greedy, order-keeping packing: items join the current pack until the next would
 * overflow `maxLength`; that item starts the following pack. An item longer than
 * `maxLength` alone is counted as bad (`too-long`), never cut silently.
 * The saved state is the upstream position before the held-over item, so a
 * restore re-reads it.
 */
export class PackStream<T> extends Stage<Pack<T>> {
  private readonly bad: BadLog;
  private pending: { item: T; length: number; before: StreamState } | null = null;
  private readonly idOf: (item: T) => string;

  constructor(
    private readonly upstream: DataStream<T>,
    private readonly options: PackOptions<T>,
  ) {
    super("pack");
    if (!(options.maxLength > 0))
      throw new RangeError(`pack: maxLength must be > 0, got ${options.maxLength}`);
    this.bad = new BadLog("pack", options.onBad);
    this.idOf = options.idOf ?? ((x) => String((x as { id?: unknown }).id ?? "?"));
  }

  async next(): Promise<IteratorResult<Pack<T>, undefined>> {
    this.started = true;
    const { maxLength, maxItems = Number.POSITIVE_INFINITY } = this.options;
    const items: T[] = [];
    let total = 0;
    if (this.pending) {
      items.push(this.pending.item);
      total = this.pending.length;
      this.pending = null;
    }
    for (;;) {
      const before = this.upstream.state();
      const r = await this.upstream.next();
      if (r.done) break;
      const len = this.options.length(r.value);
      if (!(len >= 0)) throw new RangeError(`pack: length of ${this.idOf(r.value)} is ${len}`);
      if (len > maxLength) {
        this.bad.record({
          id: this.idOf(r.value),
          reason: "too-long",
          detail: `length ${len} is over maxLength ${maxLength}`,
        });
        continue;
      }
      if (items.length > 0 && (total + len > maxLength || items.length >= maxItems)) {
        this.pending = { item: r.value, length: len, before };
        break;
      }
      items.push(r.value);
      total += len;
    }
    if (items.length === 0) return DONE;
    return { done: false, value: { id: items.map(this.idOf).join("+"), items, length: total } };
  }

  state(): StreamState {
    return {
      stage: "pack",
      bad: this.bad.toJSON(),
      upstream: this.pending ? this.pending.before : this.upstream.state(),
    };
  }

  protected restoreOwn(state: StreamState): void {
    this.bad.load(state.bad);
    this.pending = null;
    this.upstream.restore(state.upstream as StreamState);
  }

  override close(): Promise<void> {
    return this.upstream.close();
  }
}

export function packStream<T>(upstream: DataStream<T>, options: PackOptions<T>): PackStream<T> {
  return new PackStream(upstream, options);
}

/**
 * A length for packing without a tokenizer: each image costs `tokensPerImage`
 * (64 with Idefics2's perceiver resampler), text about `charsPerToken` characters a token.
 */
export function approxSampleLength(
  options: { tokensPerImage?: number; charsPerToken?: number } = {},
): (sample: Sample<unknown>) => number {
  const perImage = options.tokensPerImage ?? 64;
  const cpt = options.charsPerToken ?? 4;
  return (sample) => {
    let n = 0;
    if (sample.kind === "conversation") {
      n += sample.images.length * perImage;
      for (const t of sample.turns) n += Math.ceil((t.user.length + t.assistant.length) / cpt);
    } else {
      for (const s of sample.segments) n += s.type === "image" ? perImage : Math.ceil(s.text.length / cpt);
    }
    return n;
  };
}
