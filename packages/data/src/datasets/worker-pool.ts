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
 * `(input, options, { id }) => output | Promise<output>`. It runs in a worker
 * thread, so it gets a structured-clone copy of `input`, and typed arrays in its
 * output are moved back without copying. Throw `SampleRejected` to drop a sample.
 */
export type TransformFn<I, O> = (input: I, options: unknown, context: { id: string }) => O | Promise<O>;

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
parentPort.on("message", async ({ seq, id, input }) => {
  try {
    let fn;
    try { fn = await load; } catch (e) { throw new Error("cannot load transform module " + workerData.module + ": " + e.message); }
    const value = await fn(input, workerData.options, { id });
    const msg = { seq, ok: true, value };
    try { parentPort.postMessage(msg, transferables(value, [], new Set())); }
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
  private readonly workerData: { module: string; tsx: string | null; options: unknown };
  private seq = 0;
  private closed = false;

  constructor(options: WorkerPoolOptions) {
    const href = toHref(options.module);
    this.module = href;
    const count = Math.max(1, Math.floor(options.workers ?? Math.max(1, availableParallelism() - 1)));
    this.slots = new Array(count).fill(null);
    this.workerData = {
      module: href,
      tsx: /\.[cm]?ts$/.test(href) ? resolveTsx(href) : null,
      options: options.options,
    };
  }

  get size(): number {
    return this.slots.length;
  }

  run(input: I, id: string): Promise<TaskResult<O>> {
    if (this.closed)
      return Promise.resolve({ ok: false, error: { name: "Error", message: "the worker pool is closed" } });
    // Least-loaded worker; ties go to the lowest index.
    let best = 0;
    for (let i = 1; i < this.slots.length; i++) {
      if ((this.slots[i]?.pending.size ?? 0) < (this.slots[best]?.pending.size ?? 0)) best = i;
    }
    const slot = this.slots[best] ?? this.spawn(best);
    const seq = this.seq++;
    return new Promise((resolvePromise) => {
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(seq, { id, resolve: resolvePromise as (r: TaskResult<unknown>) => void });
      slot.worker.postMessage({ seq, id, input });
    });
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
    const slots = this.slots.filter((s): s is Slot => s !== null);
    this.slots.fill(null);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
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
