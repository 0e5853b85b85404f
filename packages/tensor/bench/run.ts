// `pnpm --filter @webvlm/tensor bench`: our kernels next to onnxruntime-node (CPU) and
// tfjs-backend-webgpu (same Dawn adapter), measured in the same run, plus the CPU's f32 FMA peak.
// Writes bench/results.json: [{op, shape, dtype, impl, median_ms, gflops_or_gbs}].

import { readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import * as T from "../src/index.js";
import { Rng } from "../src/testing.js";
import { onnxModel } from "./peers/onnx-model.js";
import { startTfjs, type Tf, tfAttention, tfRmsNorm, tfSync } from "./peers/tfjs.js";

interface Row {
  op: string;
  shape: string;
  dtype: string;
  impl: string;
  median_ms: number;
  gflops_or_gbs: number;
  unit: "GFLOP/s" | "GB/s";
}

const QUICK = process.argv.includes("--quick");
const ONLY = process.argv.find((a) => a.startsWith("--only="))?.slice(7);
const rows: Row[] = [];
const resultsPath = fileURLToPath(new URL("./results.json", import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Runs `fn` until `minMs` has passed (and at least `minReps` times) after one warm-up. */
async function time(
  fn: () => Promise<void>,
  minReps = QUICK ? 2 : 3,
  minMs = QUICK ? 300 : 1500,
): Promise<number> {
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minReps || (performance.now() - start < minMs && times.length < 50)) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

function add(row: Omit<Row, "gflops_or_gbs">, work: number): void {
  const r = { ...row, gflops_or_gbs: work / (row.median_ms * 1e6) };
  rows.push(r);
  console.log(
    `${r.op.padEnd(10)} ${r.shape.padEnd(22)} ${r.dtype.padEnd(9)} ${r.impl.padEnd(16)} ${r.median_ms.toFixed(2).padStart(10)} ms ${r.gflops_or_gbs.toFixed(1).padStart(8)} ${r.unit}`,
  );
  writeFileSync(resultsPath, `${JSON.stringify(rows, null, 2)}\n`);
}

/** Theoretical f32 FMA peak of this CPU: cores × clock × lanes × 2 flops × FMA ports (2 on x86 cores with AVX2). */
function cpuPeakGflops(): { peak: number; how: string } {
  const info = readFileSync("/proc/cpuinfo", "utf8");
  const flags = /flags\s*:\s*(.*)/.exec(info)?.[1] ?? "";
  const lanes = flags.includes("avx512f") ? 16 : flags.includes("avx2") ? 8 : 4;
  const fma = flags.includes("fma") || flags.includes("avx512f") ? 2 : 1;
  const mhz = Math.max(...cpus().map((c) => c.speed)) || 2000;
  const cores = cpus().length;
  const peak = (cores * mhz * 1e6 * lanes * 2 * fma) / 1e9;
  return { peak, how: `${cores} cores × ${mhz} MHz × ${lanes} f32 lanes × 2 (FMA) × ${fma} ports` };
}

// ---- peers -------------------------------------------------------------------------------------

const ortThreads = cpus().length;
async function ortSession(model: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, { intraOpNumThreads: ortThreads, graphOptimizationLevel: "all" });
}

let tf: Tf | null = null;
async function tfjs(device: T.Device): Promise<Tf | null> {
  if (tf) return tf;
  try {
    tf = await startTfjs(device);
    return tf;
  } catch (err) {
    console.log(`tfjs-webgpu unavailable: ${(err as Error).message}`);
    return null;
  }
}

// ---- cases -------------------------------------------------------------------------------------

type Ours = Record<string, unknown>;
const ours = T as unknown as Ours;
function have(name: string): boolean {
  return typeof ours[name] === "function";
}

async function benchMatmul(device: T.Device, M: number, K: number, N: number): Promise<void> {
  const shape = `${M}x${K}x${N}`;
  const flops = 2 * M * K * N;
  const rng = new Rng(1);
  const a = rng.uniform(M * K);
  const b = rng.uniform(K * N);
  const matmul = ours.matmul as ((x: T.Tensor, y: T.Tensor) => T.Tensor) | undefined;
  for (const dtype of ["f32", "f16"] as const) {
    if (dtype === "f16" && !device.hasF16) continue;
    if (!matmul) break;
    const ta = T.Tensor.from(a, [M, K], { dtype });
    const tb = T.Tensor.from(b, [K, N], { dtype });
    const ms = await time(async () => {
      const c = matmul(ta, tb);
      await device.sync();
      c.dispose();
    });
    add(
      {
        op: "matmul",
        shape,
        dtype: dtype === "f16" ? "f16/f32acc" : "f32",
        impl: "webvlm",
        median_ms: ms,
        unit: "GFLOP/s",
      },
      flops,
    );
    ta.dispose();
    tb.dispose();
  }
  const core = await tfjs(device);
  if (core) {
    const ta = core.tensor2d(a, [M, K]);
    const tb = core.tensor2d(b, [K, N]);
    const ms = await time(async () => {
      const c = core.matMul(ta, tb);
      await tfSync(core);
      c.dispose();
    });
    add({ op: "matmul", shape, dtype: "f32", impl: "tfjs-webgpu", median_ms: ms, unit: "GFLOP/s" }, flops);
    ta.dispose();
    tb.dispose();
  }
  const session = await ortSession(
    onnxModel(
      [{ op: "MatMul", inputs: ["a", "b"], outputs: ["c"] }],
      [
        { name: "a", elemType: 1, shape: [M, K] },
        { name: "b", elemType: 1, shape: [K, N] },
      ],
      [{ name: "c", elemType: 1, shape: [M, N] }],
    ),
  );
  const feeds = { a: new ort.Tensor("float32", a, [M, K]), b: new ort.Tensor("float32", b, [K, N]) };
  const ms = await time(async () => {
    await session.run(feeds);
  });
  add({ op: "matmul", shape, dtype: "f32", impl: "onnxruntime-cpu", median_ms: ms, unit: "GFLOP/s" }, flops);
  await session.release();
}

async function benchAttention(device: T.Device, B: number, H: number, Tn: number, D: number): Promise<void> {
  const shape = `B${B} H${H} T${Tn} D${D}`;
  const flops = 4 * B * H * Tn * Tn * D;
  const rng = new Rng(2);
  const n = B * H * Tn * D;
  const q = rng.normal(n);
  const k = rng.normal(n);
  const v = rng.normal(n);
  const attention = ours.attention as
    | ((q: T.Tensor, k: T.Tensor, v: T.Tensor, o?: unknown) => T.Tensor | { output: T.Tensor })
    | undefined;
  if (attention) {
    const tq = T.Tensor.from(q, [B, H, Tn, D]);
    const tk = T.Tensor.from(k, [B, H, Tn, D]);
    const tv = T.Tensor.from(v, [B, H, Tn, D]);
    const ms = await time(async () => {
      T.noGrad(() => T.tidy(() => void attention(tq, tk, tv, {})));
      await device.sync();
    });
    add({ op: "attention", shape, dtype: "f32", impl: "webvlm", median_ms: ms, unit: "GFLOP/s" }, flops);
    T.dispose([tq, tk, tv]);
  }
  const core = await tfjs(device);
  if (core) {
    const tq = core.tensor4d(q, [B, H, Tn, D]);
    const tk = core.tensor4d(k, [B, H, Tn, D]);
    const tv = core.tensor4d(v, [B, H, Tn, D]);
    const ms = await time(async () => {
      const o = tfAttention(core, tq, tk, tv);
      await tfSync(core);
      o.dispose();
    });
    add({ op: "attention", shape, dtype: "f32", impl: "tfjs-webgpu", median_ms: ms, unit: "GFLOP/s" }, flops);
    core.dispose([tq, tk, tv]);
  }
  const session = await ortSession(
    onnxModel(
      [
        { op: "MatMul", inputs: ["q", "kt"], outputs: ["s"] },
        { op: "Mul", inputs: ["s", "scale"], outputs: ["ss"] },
        { op: "Softmax", inputs: ["ss"], outputs: ["p"], attrs: [{ name: "axis", i: 3 }] },
        { op: "MatMul", inputs: ["p", "v"], outputs: ["o"] },
      ],
      [
        { name: "q", elemType: 1, shape: [B, H, Tn, D] },
        { name: "kt", elemType: 1, shape: [B, H, D, Tn] },
        { name: "scale", elemType: 1, shape: [1] },
        { name: "v", elemType: 1, shape: [B, H, Tn, D] },
      ],
      [{ name: "o", elemType: 1, shape: [B, H, Tn, D] }],
    ),
  );
  const kt = new Float32Array(n);
  for (let bh = 0; bh < B * H; bh++)
    for (let t = 0; t < Tn; t++)
      for (let d = 0; d < D; d++) kt[bh * Tn * D + d * Tn + t] = k[bh * Tn * D + t * D + d]!;
  const feeds = {
    q: new ort.Tensor("float32", q, [B, H, Tn, D]),
    kt: new ort.Tensor("float32", kt, [B, H, D, Tn]),
    scale: new ort.Tensor("float32", Float32Array.from([1 / Math.sqrt(D)]), [1]),
    v: new ort.Tensor("float32", v, [B, H, Tn, D]),
  };
  const ms = await time(async () => {
    await session.run(feeds);
  });
  add(
    { op: "attention", shape, dtype: "f32", impl: "onnxruntime-cpu", median_ms: ms, unit: "GFLOP/s" },
    flops,
  );
  await session.release();
}

async function benchRowOp(device: T.Device, op: "softmax" | "rmsnorm", R: number, C: number): Promise<void> {
  const shape = `${R}x${C}`;
  const bytes = 2 * R * C * 4;
  const x = new Rng(3).normal(R * C);
  const w = new Rng(4).normal(C);
  const oursFn =
    op === "softmax"
      ? (ours.softmax as ((x: T.Tensor, axis: number) => T.Tensor) | undefined)
      : (ours.rmsNorm as ((x: T.Tensor, w: T.Tensor, eps: number) => T.Tensor) | undefined);
  if (oursFn) {
    const tx = T.Tensor.from(x, [R, C]);
    const tw = T.Tensor.from(w, [C]);
    const ms = await time(async () => {
      const y = T.noGrad(() =>
        op === "softmax"
          ? (oursFn as (x: T.Tensor, a: number) => T.Tensor)(tx, -1)
          : (oursFn as (x: T.Tensor, w: T.Tensor, e: number) => T.Tensor)(tx, tw, 1e-5),
      );
      await device.sync();
      y.dispose();
    });
    add({ op, shape, dtype: "f32", impl: "webvlm", median_ms: ms, unit: "GB/s" }, bytes);
    T.dispose([tx, tw]);
  }
  const core = await tfjs(device);
  if (core) {
    const tx = core.tensor2d(x, [R, C]);
    const tw = core.tensor1d(w);
    const ms = await time(async () => {
      const y = op === "softmax" ? core.softmax(tx) : tfRmsNorm(core, tx, tw, 1e-5);
      await tfSync(core);
      y.dispose();
    });
    add({ op, shape, dtype: "f32", impl: "tfjs-webgpu", median_ms: ms, unit: "GB/s" }, bytes);
    core.dispose([tx, tw]);
  }
  const model =
    op === "softmax"
      ? onnxModel(
          [{ op: "Softmax", inputs: ["x"], outputs: ["y"], attrs: [{ name: "axis", i: 1 }] }],
          [{ name: "x", elemType: 1, shape: [R, C] }],
          [{ name: "y", elemType: 1, shape: [R, C] }],
        )
      : onnxModel(
          [
            {
              op: "SimplifiedLayerNormalization",
              inputs: ["x", "w"],
              outputs: ["y"],
              attrs: [
                { name: "epsilon", f: 1e-5 },
                { name: "axis", i: -1 },
              ],
            },
          ],
          [
            { name: "x", elemType: 1, shape: [R, C] },
            { name: "w", elemType: 1, shape: [C] },
          ],
          [{ name: "y", elemType: 1, shape: [R, C] }],
        );
  try {
    const session = await ortSession(model);
    const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor("float32", x, [R, C]) };
    if (op === "rmsnorm") feeds.w = new ort.Tensor("float32", w, [C]);
    const ms = await time(async () => {
      await session.run(feeds);
    });
    add({ op, shape, dtype: "f32", impl: "onnxruntime-cpu", median_ms: ms, unit: "GB/s" }, bytes);
    await session.release();
  } catch (err) {
    console.log(`onnxruntime ${op}: ${(err as Error).message.split("\n")[0]}`);
  }
}

async function main(): Promise<void> {
  const device = await T.getDevice();
  const { peak, how } = cpuPeakGflops();
  console.log(
    `adapter: ${device.info.vendor} ${device.info.architecture} ${device.info.description} (software: ${device.info.isSoftware})`,
  );
  console.log(`CPU f32 FMA peak ≈ ${peak.toFixed(0)} GFLOP/s (${how})`);
  rows.push({
    op: "peak",
    shape: "-",
    dtype: "f32",
    impl: "cpu-fma-theoretical",
    median_ms: 0,
    gflops_or_gbs: peak,
    unit: "GFLOP/s",
  });
  const want = (name: string) => !ONLY || ONLY.split(",").includes(name);
  if (!have("matmul")) console.log("webvlm matmul: not built yet");
  if (want("matmul")) {
    const shapes: [number, number, number][] = QUICK
      ? [
          [256, 256, 256],
          [1024, 1024, 1024],
        ]
      : [
          [256, 256, 256],
          [1024, 1024, 1024],
          [2048, 2048, 2048],
          [512, 768, 3072],
        ];
    for (const [M, K, N] of shapes) await benchMatmul(device, M, K, N);
  }
  if (want("attention")) await benchAttention(device, 1, 8, QUICK ? 256 : 1024, 64);
  if (want("softmax")) await benchRowOp(device, "softmax", QUICK ? 1024 : 4096, 4096);
  if (want("rmsnorm")) await benchRowOp(device, "rmsnorm", QUICK ? 1024 : 4096, 4096);
  console.log(`\nwrote ${resultsPath}`);
  process.exit(0);
}

await main();
