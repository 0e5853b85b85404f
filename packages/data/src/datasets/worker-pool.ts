import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { BadLog, type BadSample, type StreamState } from "./bad-samples.js";
import { type DataStream, DONE, Stage } from "./stream.js";
import { DatasetError } from "./types.js";

/**
 * A transform module's default export (or its `transform` export):
 * `(input, options, context) => output | Promise<output>`. It runs in a worker
 * thread, so it gets a structured-clone copy of `input`, and typed arrays in its
 * output are moved back without copying. Throw `SampleRejected` to drop a sample.
 */
export type TransformFn<I, O> = (input: I, options: unknown, context: TransformContext) => O | Promise<O>;

/** What a transform gets besides its input and options. */
export interface TransformContext {
  /** The record's id, for error messages. */
  id: string;
  /**
   * An output the consumer gave back with `recycle()` (its arrays moved to this worker), or
   * undefined. Writing into its memory spares the page faults of fresh multi-megabyte buffers.
   */
  recycled(): unknown;
  /**
   * Also move these buffers (or the buffers under these views) to the consumer. Buffers that
   * output views cover whole move anyway; a view of part of a buffer (a recycled one, say) is
   * copied unless its buffer is named here.
   */
  transfer(...buffers: (ArrayBuffer | ArrayBufferView)[]): void;
}

export type TaskResult<O> =
  | { ok: true; value: O }
  | { ok: false; rejected: { reason: string; detail: string } }
  | { ok: false; error: { name: string; message: string; stack?: string } };

export interface WorkerPoolOptions {
  /** Path or file URL of the transform module. A `.ts` module is loaded through tsx (dev and tests). */
  module: string | URL;
  /** Passed to every call as the transform's second argument (structured-cloned once per worker). */
  options?: unknown;
  /** Worker threads (default: cores − 1, at least 1). */
  workers?: number;
  /** Recycled outputs a worker keeps for its transform (default 2); more are dropped. */
  maxRecycled?: number;
  /**
   * Tasks one worker holds at once (default: no limit, every prefetched item is sent at once).
   * An async transform overlaps its tasks (sharp decodes on libuv's threads while the worker's
   * own thread normalises), which helps until the threads outnumber the cores; the rest wait here.
   */
  concurrency?: number;
}

/** Transform failed on a record; names the record and the module, keeps the worker's error as `cause`. */
export class WorkerTransformError extends DatasetError {
  override name = "WorkerTransformError";
  constructor(
    message: string,
    readonly recordId: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// Runs inside each worker (CommonJS eval, so the same code serves src and dist).
const BOOTSTRAP = `
const { parentPort, workerData } = require("node:worker_threads");
const load = (async () => {
  const mod = workerData.tsx
    ? await (await import(workerData.tsx)).tsImport(workerData.module, workerData.module)
    : await import(workerData.module);
  const fn = typeof mod.default === "function" ? mod.default
    : typeof mod.transform === "function" ? mod.transform
    : mod.default && typeof mod.default.default === "function" ? mod.default.default : null;
  if (!fn) throw new Error("it exports no default function and no 'transform' (exports: " + Object.keys(mod).join(", ") + ")");
  return fn;
})();
load.catch(() => {});
const spares = [];
function transferables(value, out, seen) {
  if (value === null || typeof value !== "object" || seen.has(value)) return out;
  seen.add(value);
  if (ArrayBuffer.isView(value)) {
    const b = value.buffer;
    // Only buffers the view owns whole: moving a shared one would detach its other users.
    if (b instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === b.byteLength && !seen.has(b)) { seen.add(b); out.push(b); }
    return out;
  }
  if (value instanceof ArrayBuffer) return out;
  for (const k in value) transferables(value[k], out, seen);
  return out;
}
parentPort.on("message", async (message) => {
  if ("recycle" in message) {
    if (spares.length < workerData.maxRecycled) spares.push(message.recycle);
    return;
  }
  const { seq, id, input } = message;
  try {
    let fn;
    try { fn = await load; } catch (e) { throw new Error("cannot load transform module " + workerData.module + ": " + e.message); }
    const extra = [];
    const context = {
      id,
      recycled: () => spares.shift(),
      transfer: (...buffers) => { for (const b of buffers) extra.push(ArrayBuffer.isView(b) ? b.buffer : b); },
    };
    const value = await fn(input, workerData.options, context);
    const msg = { seq, ok: true, value };
    const list = transferables(value, [], new Set());
    for (const b of extra) if (b instanceof ArrayBuffer && !list.includes(b)) list.push(b); // shared memory is never moved
    try { parentPort.postMessage(msg, list); }
    catch { parentPort.postMessage(msg); } // some buffers (external, pooled) cannot move: copy instead
  } catch (e) {
    if (e && typeof e.rejectReason === "string") parentPort.postMessage({ seq, ok: false, rejected: { reason: e.rejectReason, detail: String(e.message) } });
    else parentPort.postMessage({ seq, ok: false, error: { name: (e && e.name) || "Error", message: String(e && e.message !== undefined ? e.message : e), stack: e && e.stack } });
  }
});
`;

interface Slot {
  worker: Worker;
  pending: Map<number, { id: string; resolve: (r: TaskResult<unknown>) => void }>;
}

/** Worker threads running one transform module; results come back as values, never as rejections. */
export class WorkerPool<I, O> {
  readonly module: string;
  private readonly slots: (Slot | null)[];
  private readonly workerData: { module: string; tsx: string | null; options: unknown; maxRecycled: number };
  private seq = 0;
  private recycleTurn = 0;
  private readonly perWorker: number;
  private readonly waiting: { input: I; id: string; resolve: (r: TaskResult<O>) => void }[] = [];
  private closed = false;

  constructor(options: WorkerPoolOptions) {
    const href = toHref(options.module);
    this.module = href;
    const count = Math.max(1, Math.floor(options.workers ?? Math.max(1, availableParallelism() - 1)));
    this.slots = new Array(count).fill(null);
    this.perWorker = Math.max(1, Math.floor(options.concurrency ?? Number.POSITIVE_INFINITY));
    this.workerData = {
      module: href,
      tsx: /\.[cm]?ts$/.test(href) ? resolveTsx(href) : null,
      options: options.options,
      maxRecycled: Math.max(0, Math.floor(options.maxRecycled ?? 2)),
    };
  }

  get size(): number {
    return this.slots.length;
  }

  run(input: I, id: string): Promise<TaskResult<O>> {
    if (this.closed)
      return Promise.resolve({ ok: false, error: { name: "Error", message: "the worker pool is closed" } });
    return new Promise((resolve) => {
      this.waiting.push({ input, id, resolve });
      this.dispatch();
    });
  }

  // Sends waiting tasks, in order, to the least-loaded worker (ties: lowest index) while one has room.
  private dispatch(): void {
    while (this.waiting.length > 0 && !this.closed) {
      let best = 0;
      for (let i = 1; i < this.slots.length; i++) {
        if ((this.slots[i]?.pending.size ?? 0) < (this.slots[best]?.pending.size ?? 0)) best = i;
      }
      if ((this.slots[best]?.pending.size ?? 0) >= this.perWorker) return;
      const slot = this.slots[best] ?? this.spawn(best);
      const { input, id, resolve } = this.waiting.shift()!;
      const seq = this.seq++;
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(seq, { id, resolve: resolve as (r: TaskResult<unknown>) => void });
      slot.worker.postMessage({ seq, id, input });
    }
  }

  /**
   * Gives a consumed output back to a worker, whose transform can write a later output into its
   * memory (`context.recycled()`). The ArrayBuffers under its typed arrays move there (detached
   * here); SharedArrayBuffers are shared, so the worker overwrites what this thread still sees.
   * Either way, call it only when done with every array in `value`. Returns whether it went.
   */
  recycle(value: unknown): boolean {
    if (this.closed || this.workerData.maxRecycled === 0) return false;
    const live = this.slots.filter((s): s is Slot => s !== null);
    if (live.length === 0) return false;
    const slot = live[this.recycleTurn++ % live.length];
    const buffers = new Set<ArrayBuffer>();
    collectBuffers(value, buffers, new Set());
    try {
      slot.worker.postMessage({ recycle: value }, [...buffers]);
      return true;
    } catch {
      return false; // a buffer that cannot move (shared, external): the memory is simply not reused
    }
  }

  private spawn(index: number): Slot {
    const worker = new Worker(BOOTSTRAP, { eval: true, workerData: this.workerData });
    const slot: Slot = { worker, pending: new Map() };
    const settle = (seq: number, r: TaskResult<unknown>) => {
      const p = slot.pending.get(seq);
      if (!p) return;
      slot.pending.delete(seq);
      if (slot.pending.size === 0) worker.unref();
      p.resolve(r);
      this.dispatch();
    };
    worker.on("message", (msg: { seq: number } & TaskResult<unknown>) => settle(msg.seq, msg));
    const fail = (message: string) => {
      if (this.slots[index] === slot) this.slots[index] = null; // respawn on next use
      for (const [seq, p] of [...slot.pending])
        settle(seq, {
          ok: false,
          error: { name: "Error", message: `${message} while transforming ${p.id}` },
        });
    };
    worker.on("error", (e) => fail(`worker ${index} crashed: ${e.message}`));
    worker.on("exit", (code) => fail(`worker ${index} exited with code ${code}`));
    worker.unref();
    this.slots[index] = slot;
    return slot;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.waiting.splice(0))
      t.resolve({ ok: false, error: { name: "Error", message: "the worker pool is closed" } });
    const slots = this.slots.filter((s): s is Slot => s !== null);
    this.slots.fill(null);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}

// Every ArrayBuffer under a typed array in `value`, whole or not: the caller hands all of it over.
function collectBuffers(value: unknown, out: Set<ArrayBuffer>, seen: Set<object>): void {
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer) out.add(value.buffer);
    return;
  }
  if (value instanceof ArrayBuffer) {
    out.add(value);
    return;
  }
  for (const v of Object.values(value)) collectBuffers(v, out, seen);
}

function toHref(module: string | URL): string {
  if (module instanceof URL) return module.href;
  if (/^file:\/\//.test(module)) return module;
  return pathToFileURL(isAbsolute(module) ? module : resolve(module)).href;
}

/** tsx's ESM API entry (`tsImport`), found through its package.json: `require.resolve` would give the CommonJS build. */
function resolveTsx(moduleHref: string): string {
  try {
    const pkgPath = createRequire(import.meta.url).resolve("tsx/package.json");
    const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as {
      exports: Record<string, { import?: string | { default: string } }>;
    };
    const entry = pkg.exports["./esm/api"]?.import;
    const rel = typeof entry === "string" ? entry : entry?.default;
    if (!rel) throw new Error("tsx's package.json has no import entry for ./esm/api");
    return pathToFileURL(join(dirname(pkgPath), rel)).href;
  } catch (e) {
    throw new DatasetError(
      `worker pool: ${moduleHref} is TypeScript, which needs tsx to load in a worker; install tsx or pass the compiled .js module`,
      { cause: e },
    );
  }
}

export interface MapInWorkersOptions extends WorkerPoolOptions {
  /** Items transformed ahead of the consumer (default 2 × workers). */
  prefetch?: number;
  /** `throw` (default): a failed transform throws `WorkerTransformError` naming the record; `skip`: count it as bad and go on. */
  onError?: "throw" | "skip";
  onBad?: (bad: BadSample) => void;
  idOf?: (item: unknown) => string;
}

type QueueEntry<O> =
  | { id: string; after: StreamState; result: Promise<TaskResult<O>>; settled: boolean }
  | { error: unknown };

/**
 * Runs a transform (decode, resize, the Idefics2 processor) on worker threads,
 * keeping `prefetch` items in flight so the consumer finds them ready, and
 * delivering them in upstream order. Each item carries the upstream state taken
 * right after it was read, so `state()` is the consumer's position, not the
 * read-ahead's.
 */
export class WorkerMapStream<I, O> extends Stage<O> {
  readonly pool: WorkerPool<I, O>;
  private readonly prefetch: number;
  private readonly onError: "throw" | "skip";
  private readonly bad: BadLog;
  private readonly idOf: (item: unknown) => string;
  private readonly queue: QueueEntry<O>[] = [];
  private current: StreamState | null = null;
  private upstreamDone = false;
  private filling: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private closed = false;

  constructor(
    private readonly upstream: DataStream<I>,
    options: MapInWorkersOptions,
  ) {
    super("workers");
    this.pool = new WorkerPool<I, O>(options);
    this.prefetch = Math.max(1, Math.floor(options.prefetch ?? 2 * this.pool.size));
    this.onError = options.onError ?? "throw";
    this.bad = new BadLog("workers", options.onBad);
    this.idOf = options.idOf ?? ((x) => String((x as { id?: unknown }).id ?? "?"));
  }

  /** Items read ahead (in flight or done). */
  get buffered(): number {
    return this.queue.length;
  }

  /** Items transformed and waiting for the consumer. */
  get ready(): number {
    return this.queue.filter((e) => "settled" in e && e.settled).length;
  }

  /** Starts reading ahead without waiting for the first `next()`. */
  start(): void {
    this.started = true;
    this.fill();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private fill(): void {
    if (this.filling || this.upstreamDone || this.closed) return;
    this.filling = (async () => {
      this.current ??= this.upstream.state();
      while (!this.upstreamDone && !this.closed && this.queue.length < this.prefetch) {
        let r: IteratorResult<I, undefined>;
        try {
          r = await this.upstream.next();
        } catch (error) {
          this.queue.push({ error });
          this.upstreamDone = true;
          break;
        }
        if (r.done) {
          this.upstreamDone = true;
          break;
        }
        const id = this.idOf(r.value);
        const entry = {
          id,
          after: this.upstream.state(),
          result: this.pool.run(r.value, id),
          settled: false,
        };
        entry.result.then(() => {
          entry.settled = true;
          this.notify();
        });
        this.queue.push(entry);
        this.notify();
      }
    })().finally(() => {
      this.filling = null;
      this.notify();
    });
  }

  async next(): Promise<IteratorResult<O, undefined>> {
    this.started = true;
    for (;;) {
      if (this.closed) return DONE;
      const head = this.queue.shift();
      if (!head) {
        if (this.upstreamDone && !this.filling) return DONE;
        const changed = new Promise<void>((r) => {
          this.wake = r;
        });
        this.fill();
        await changed;
        continue;
      }
      this.fill();
      if ("error" in head) throw head.error;
      const res = await head.result;
      this.current = head.after;
      if (res.ok) return { done: false, value: res.value };
      if ("rejected" in res) {
        this.bad.record({ id: head.id, ...res.rejected });
        continue;
      }
      const message = `transform ${this.pool.module} failed on record ${head.id}: ${res.error.message}`;
      if (this.onError === "skip") {
        this.bad.record({ id: head.id, reason: "transform-error", detail: res.error.message });
        continue;
      }
      const cause = Object.assign(new Error(res.error.message), {
        name: res.error.name,
        stack: res.error.stack,
      });
      throw new WorkerTransformError(message, head.id, { cause });
    }
  }

  /**
   * Hands a value this stream returned back to the workers for reuse of its memory (see
   * {@link WorkerPool.recycle}); its arrays are detached here. Optional: without it, every
   * output is fresh memory.
   */
  recycle(value: O): boolean {
    return this.pool.recycle(value);
  }

  state(): StreamState {
    return { stage: "workers", bad: this.bad.toJSON(), upstream: this.current ?? this.upstream.state() };
  }

  protected restoreOwn(state: StreamState): void {
    this.bad.load(state.bad);
    this.current = state.upstream as StreamState;
    this.upstream.restore(this.current);
  }

  override async close(): Promise<void> {
    this.closed = true;
    this.notify();
    await this.filling;
    await this.pool.close();
    await this.upstream.close();
  }
}

export function mapInWorkers<I, O>(
  upstream: DataStream<I>,
  options: MapInWorkersOptions,
): WorkerMapStream<I, O> {
  return new WorkerMapStream<I, O>(upstream, options);
}
