import type { StreamState } from "./bad-samples.js";
import { DatasetError } from "./types.js";

/**
 * A pull-based stream whose position can be saved (`state()`, plain JSON) and
 * restored into a freshly built pipeline of the same shape (`restore()` before
 * the first `next()`), after which it yields exactly what the original would have.
 *
 * `for await` works too; breaking out of it calls `close()` (which stops workers),
 * while `state()` stays valid afterwards.
 */
export interface DataStream<T> extends AsyncIterable<T> {
  next(): Promise<IteratorResult<T, undefined>>;
  /** Position after the last item returned by `next()`. */
  state(): StreamState;
  restore(state: StreamState): void;
  close(): Promise<void>;
}

export abstract class Stage<T> implements DataStream<T> {
  protected started = false;

  constructor(protected readonly stageName: string) {}

  abstract next(): Promise<IteratorResult<T, undefined>>;
  abstract state(): StreamState;
  protected abstract restoreOwn(state: StreamState): void;

  restore(state: StreamState): void {
    if (this.started)
      throw new DatasetError(`${this.stageName}: restore() must be called before the first next()`);
    if (!state || typeof state !== "object" || state.stage !== this.stageName) {
      throw new DatasetError(
        `${this.stageName}: cannot restore from a state saved by stage '${(state as StreamState | undefined)?.stage}'; was the pipeline built in the same order?`,
      );
    }
    this.restoreOwn(state);
  }

  async close(): Promise<void> {}

  [Symbol.asyncIterator](): AsyncIterator<T, undefined> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }
}

export const DONE: IteratorResult<never, undefined> = { done: true, value: undefined };

/** Pull up to `n` items (all if omitted). */
export async function take<T>(stream: DataStream<T>, n = Number.POSITIVE_INFINITY): Promise<T[]> {
  const out: T[] = [];
  while (out.length < n) {
    const r = await stream.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}
