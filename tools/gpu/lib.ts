// Shared by the GPU-machine benches (tools/gpu/*.ts, bundled into .gpu-carry/app/ by build-app.mjs):
// arguments, a deadline every case checks, results rewritten after every row (a crash or the
// watchdog still leaves them in $OUT), batched timing, and the device with unsafe APIs allowed.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { type Device, requestDevice, setCurrentDevice } from "../../packages/tensor/src/index.js";

export interface Args {
  /** Results file (JSON), rewritten after every row. */
  json: string;
  /** Epoch ms after which no new case starts. */
  deadline: number;
  /** Tiny shapes and short timings: lavapipe rehearsals. */
  quick: boolean;
  has(flag: string): boolean;
  get(name: string, def: string): string;
}

/** `--json=PATH --deadline=EPOCH_MS --budget=SECONDS --quick --flag --name=value`. */
export function parseArgs(argv: readonly string[], defaultJson: string): Args {
  const kv = new Map<string, string>();
  const flags = new Set<string>();
  for (const a of argv) {
    if (!a.startsWith("--")) continue;
    const eq = a.indexOf("=");
    if (eq < 0) flags.add(a.slice(2));
    else kv.set(a.slice(2, eq), a.slice(eq + 1));
  }
  const budget = Number(kv.get("budget") ?? 600);
  const deadline = Number(kv.get("deadline") ?? Date.now() + budget * 1000);
  return {
    json: kv.get("json") ?? defaultJson,
    deadline,
    quick: flags.has("quick"),
    has: (f) => flags.has(f),
    get: (n, d) => kv.get(n) ?? d,
  };
}

export function secondsLeft(args: Args): number {
  return (args.deadline - Date.now()) / 1000;
}

/** A JSON document of rows that is rewritten (atomically) after every change. */
export class Results<Row> {
  readonly rows: Row[] = [];
  readonly notes: string[] = [];
  constructor(
    private readonly path: string,
    readonly meta: Record<string, unknown>,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.save();
  }

  add(row: Row): void {
    this.rows.push(row);
    this.save();
  }

  note(message: string): void {
    console.log(`note: ${message}`);
    this.notes.push(message);
    this.save();
  }

  save(extra: Record<string, unknown> = {}): void {
    Object.assign(this.meta, extra);
    const doc = { ...this.meta, updated: new Date().toISOString(), notes: this.notes, rows: this.rows };
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(doc, null, 1)}\n`);
    renameSync(tmp, this.path);
  }
}

export interface Timing {
  median_ms: number;
  min_ms: number;
  /** Calls per timed batch (one sync per batch) and batches timed. */
  reps: number;
  batches: number;
}

/**
 * Per-call time of `run` (which only records GPU work): one warm-up (pipelines compile), then
 * batches of `reps` calls with one `sync` each, `reps` chosen so a batch lasts ~targetMs. Batching
 * keeps the host round trip out of short kernels; the median batch average is reported.
 */
export async function timeBatched(
  run: () => void,
  sync: () => Promise<void>,
  opts: { targetMs?: number; batches?: number; maxReps?: number } = {},
): Promise<Timing> {
  const targetMs = opts.targetMs ?? 100;
  const batches = opts.batches ?? 5;
  run();
  await sync();
  let t0 = performance.now();
  run();
  await sync();
  const single = performance.now() - t0;
  const reps = Math.max(1, Math.min(opts.maxReps ?? 200, Math.ceil(targetMs / Math.max(single, 0.01))));
  const per: number[] = [];
  for (let b = 0; b < batches; b++) {
    t0 = performance.now();
    for (let r = 0; r < reps; r++) run();
    await sync();
    per.push((performance.now() - t0) / reps);
  }
  per.sort((a, b) => a - b);
  return { median_ms: per[Math.floor(per.length / 2)]!, min_ms: per[0]!, reps, batches };
}

/** Dawn on Vulkan with unsafe APIs allowed (else experimental features are not even listed), made current. */
export async function benchDevice(): Promise<Device> {
  const device = await requestDevice({
    backend: process.env.WEBVLM_BACKEND ?? "vulkan",
    dawnOptions: ["enable-dawn-features=allow_unsafe_apis"],
  });
  setCurrentDevice(device);
  return device;
}

export function describe(device: Device): Record<string, unknown> {
  const i = device.info;
  return {
    vendor: i.vendor,
    architecture: i.architecture,
    description: i.description,
    isSoftware: i.isSoftware,
    subgroupMinSize: i.subgroupMinSize,
    subgroupMaxSize: i.subgroupMaxSize,
    features: i.features,
  };
}

export function errorText(err: unknown): string {
  const e = err as Error;
  return (e?.message ?? String(err)).split("\n").slice(0, 3).join(" | ").slice(0, 400);
}

export interface TorchResult {
  info: Record<string, unknown> | null;
  rows: Record<string, unknown>[];
  notes: string[];
}

/**
 * Runs tools/gpu/torch_bench.py on `cases` in one python3 process, stopped after `budgetS`. Never
 * throws: a missing python3, torch, CUDA or transformers comes back as notes (and error rows).
 */
export function runTorch(cases: readonly object[], budgetS: number): TorchResult {
  const res: TorchResult = { info: null, rows: [], notes: [] };
  // Two levels below the repo root both as tools/gpu/*.ts and as .gpu-carry/app/*.mjs.
  const script = fileURLToPath(new URL("../../tools/gpu/torch_bench.py", import.meta.url));
  if (!existsSync(script)) {
    res.notes.push(`torch: ${script} not found`);
    return res;
  }
  const t0 = Date.now();
  const run = spawnSync(
    "python3",
    [script, JSON.stringify({ deadline: Date.now() / 1000 + budgetS - 10, cases })],
    {
      encoding: "utf8",
      timeout: Math.max(1000, Math.floor(budgetS * 1000)),
      maxBuffer: 16 << 20,
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    },
  );
  if (run.error && !run.stdout) {
    res.notes.push(`torch: python3 not run: ${errorText(run.error)}`);
    return res;
  }
  for (const line of (run.stdout ?? "").split("\n")) {
    if (!line.trim().startsWith("{")) continue;
    const obj = JSON.parse(line) as Record<string, unknown>;
    if (obj.info) res.info = obj.info as Record<string, unknown>;
    else if (obj.error && !obj.op) res.notes.push(`torch: ${obj.error as string}`);
    else res.rows.push(obj);
  }
  const took = ((Date.now() - t0) / 1000).toFixed(0);
  if (run.error) res.notes.push(`torch: stopped after ${took} s: ${errorText(run.error)}`);
  if (run.status)
    res.notes.push(
      `torch: exit ${run.status}: ${(run.stderr ?? "").trim().split("\n").slice(-3).join(" | ")}`,
    );
  console.log(`torch: ${res.rows.length} rows in ${took} s`);
  return res;
}
