import type { StreamState } from "./bad-samples.js";
import { deriveSeed, Rng } from "./rng.js";
import { type DataStream, DONE, Stage } from "./stream.js";
import { DatasetError } from "./types.js";

export interface MixInput<T> {
  stream: DataStream<T>;
  /** Relative share of the output (need not sum to 1). */
  weight: number;
  /** Shown in errors; defaults to the index. */
  name?: string;
}

export interface MixOptions {
  seed?: number;
  /**
   * When a stream ends: `stop` ends the mix (so ratios hold to the end; give
   * sources `epochs: Infinity` to mix forever), `drop` goes on with the rest,
   * renormalising their weights (default `stop`).
   */
  onExhausted?: "stop" | "drop";
}

interface MixState extends StreamState {
  stage: "mix";
  rng: number[];
  exhausted: boolean[];
  done: boolean;
  upstream: StreamState[];
}

/**
 * Weighted mixture, as the paper mixes OBELICS, image–text pairs and PDFs by
 * ratio: each output draws its stream with probability weight / total from a
 * seeded RNG, then takes that stream's next item. Deterministic by seed; the
 * state is the RNG plus every stream's state.
 */
export class MixStream<T> extends Stage<T> {
  private rng: Rng;
  private exhausted: boolean[];
  private done = false;
  private readonly onExhausted: "stop" | "drop";

  constructor(
    private readonly inputs: MixInput<T>[],
    options: MixOptions = {},
  ) {
    super("mix");
    if (inputs.length === 0) throw new DatasetError("mix: no streams given");
    inputs.forEach((input, i) => {
      if (!(input.weight >= 0) || !Number.isFinite(input.weight))
        throw new DatasetError(
          `mix: stream ${input.name ?? i} has weight ${input.weight}; weights must be finite and >= 0`,
        );
    });
    if (!inputs.some((x) => x.weight > 0)) throw new DatasetError("mix: every weight is 0");
    this.rng = new Rng(deriveSeed(options.seed ?? 0, "mix"));
    this.exhausted = inputs.map(() => false);
    this.onExhausted = options.onExhausted ?? "stop";
  }

  async next(): Promise<IteratorResult<T, undefined>> {
    this.started = true;
    while (!this.done) {
      const i = this.choose();
      if (i < 0) break;
      const r = await this.inputs[i].stream.next();
      if (!r.done) return r;
      this.exhausted[i] = true;
      if (this.onExhausted === "stop") this.done = true;
    }
    this.done = true;
    return DONE;
  }

  /** Index of a live stream drawn by weight, or -1 when none is left. */
  private choose(): number {
    let total = 0;
    this.inputs.forEach((x, i) => {
      if (!this.exhausted[i]) total += x.weight;
    });
    if (total <= 0) return -1;
    let u = this.rng.float() * total;
    let last = -1;
    for (let i = 0; i < this.inputs.length; i++) {
      if (this.exhausted[i] || this.inputs[i].weight <= 0) continue;
      last = i;
      u -= this.inputs[i].weight;
      if (u < 0) return i;
    }
    return last; // rounding left u a hair above 0
  }

  state(): MixState {
    return {
      stage: "mix",
      rng: this.rng.state(),
      exhausted: this.exhausted.slice(),
      done: this.done,
      upstream: this.inputs.map((x) => x.stream.state()),
    };
  }

  protected restoreOwn(raw: StreamState): void {
    const s = raw as MixState;
    if (!Array.isArray(s.upstream) || s.upstream.length !== this.inputs.length) {
      throw new DatasetError(
        `mix: state holds ${Array.isArray(s.upstream) ? s.upstream.length : 0} streams, this mix has ${this.inputs.length}`,
      );
    }
    this.rng = new Rng(s.rng);
    this.exhausted = s.exhausted.slice();
    this.done = s.done;
    this.inputs.forEach((x, i) => {
      x.stream.restore(s.upstream[i]);
    });
  }

  override async close(): Promise<void> {
    await Promise.all(this.inputs.map((x) => x.stream.close()));
  }
}

export function mixStreams<T>(inputs: MixInput<T>[], options: MixOptions = {}): MixStream<T> {
  return new MixStream(inputs, options);
}
