// Step 2 on the GPU machine: packages/tensor/bench/run.ts's comparison at GPU sizes. Our kernels and
// tfjs-backend-webgpu on the same Dawn adapter (packages/tensor/bench/peers/tfjs.ts); PyTorch on the
// same GPU (CUDA events, through tools/gpu/torch_bench.py) in place of onnxruntime-node, a native CPU
// addon that does not travel.
// Every result of ours is spot-checked against float64 sums on the CPU before it is timed.
//
//   node .gpu-carry/app/bench-tensor.mjs --json=$OUT/tensor.json --deadline=EPOCH_MS [--quick] [--no-torch] [--no-tfjs]

import {
  startTfjs,
  type Tf,
  tfAttention,
  tfRmsNorm,
  tfSync,
} from "../../packages/tensor/bench/peers/tfjs.js";
import * as T from "../../packages/tensor/src/index.js";
import { Rng } from "../../packages/tensor/src/testing.js";
import {
  benchDevice,
  describe,
  errorText,
  parseArgs,
  Results,
  runTorch,
  secondsLeft,
  type Timing,
  timeBatched,
} from "./lib.js";

const args = parseArgs(process.argv.slice(2), "tensor.json");
const Q = args.quick;

interface Case {
  op: "matmul" | "attention" | "softmax" | "rmsnorm" | "copy";
  shape: string;
  /** Our dtypes (f16 = f16 storage, f32 accumulation). */
  ours: ("f32" | "f16")[];
  tfjs: boolean;
  /** torch variants: f32-ieee, f32-tf32, f16, bf16. */
  torch: string[];
  M?: number;
  K?: number;
  N?: number;
  /** B given as a [N, K] weight (a Linear layer): transposeB. */
  nt?: boolean;
  B?: number;
  H?: number;
  T?: number;
  D?: number;
  causal?: boolean;
  R?: number;
  C?: number;
}

interface Row {
  op: string;
  shape: string;
  dtype: string;
  impl: string;
  median_ms?: number;
  min_ms?: number;
  reps?: number;
  gflops?: number;
  /** Bytes that must move (operands + result) per ms: the bandwidth view. */
  gbs?: number;
  maxRelErr?: number;
  correct?: boolean;
  error?: string;
}

const MM = ["f32-ieee", "f32-tf32", "f16", "bf16"];
function mm(M: number, K: number, N: number, nt = false): Case {
  return {
    op: "matmul",
    shape: `${M}x${K}x${N}${nt ? " nt" : ""}`,
    ours: ["f32", "f16"],
    tfjs: true,
    torch: MM,
    M,
    K,
    N,
    nt,
  };
}
function attn(B: number, H: number, Tn: number, D: number, causal = false): Case {
  const shape = `B${B} H${H} T${Tn} D${D}${causal ? " causal" : ""}`;
  return {
    op: "attention",
    shape,
    ours: ["f32", "f16"],
    tfjs: !causal,
    torch: ["f32-ieee", "f16"],
    B,
    H,
    T: Tn,
    D,
    causal,
  };
}
function row(op: "softmax" | "rmsnorm" | "copy", R: number, C: number): Case {
  // copy: the achievable-bandwidth reference (read + write); tfjs has no copy kernel to call.
  return {
    op,
    shape: `${R}x${C}`,
    ours: ["f32", "f16"],
    tfjs: op !== "copy",
    torch: ["f32-ieee", "f16"],
    R,
    C,
  };
}

// GPU sizes: square GEMMs, Mistral-7B's MLP at prefill (512 tokens) and decode (1 token, a GEMV),
// Mistral-7B's attention (32 heads × 128) and SigLIP-SO400M's at 980 px (4900 patches, 16 × 72).
const CASES: Case[] = Q
  ? [
      mm(128, 128, 128),
      mm(1, 256, 512, true),
      attn(1, 2, 64, 64),
      attn(1, 2, 64, 64, true),
      row("softmax", 64, 512),
      row("rmsnorm", 64, 512),
      row("copy", 256, 1024),
    ]
  : [
      mm(1024, 1024, 1024),
      mm(2048, 2048, 2048),
      mm(4096, 4096, 4096),
      mm(512, 4096, 14336, true),
      mm(1, 4096, 14336, true),
      attn(1, 32, 2048, 128),
      attn(1, 32, 2048, 128, true),
      attn(1, 16, 4900, 72),
      row("softmax", 8192, 4096),
      row("rmsnorm", 8192, 4096),
      row("copy", 8192, 8192),
    ];

const device = await benchDevice();
const out = new Results<Row>(args.json, {
  step: "tensor",
  quick: Q,
  adapter: describe(device),
  torchInfo: null,
});
console.log(
  `adapter: ${device.info.vendor} / ${device.info.architecture} / ${device.info.description} (software: ${device.info.isSoftware})`,
);

function fmt(r: Row): string {
  const rate =
    r.gflops !== undefined
      ? `${r.gflops.toFixed(1)} GFLOP/s`
      : r.gbs !== undefined
        ? `${r.gbs.toFixed(1)} GB/s`
        : "";
  const check =
    r.maxRelErr !== undefined ? ` (err ${r.maxRelErr.toExponential(1)}${r.correct ? "" : " WRONG"})` : "";
  return `${r.op.padEnd(9)} ${r.shape.padEnd(26)} ${r.dtype.padEnd(8)} ${r.impl.padEnd(11)} ${
    r.error ? `error: ${r.error}` : `${r.median_ms!.toFixed(3).padStart(9)} ms ${rate.padStart(16)}${check}`
  }`;
}
function push(r: Row): void {
  console.log(fmt(r));
  out.add(r);
}

function rates(c: Case, dtype: string, t: Timing): Pick<Row, "gflops" | "gbs"> {
  const bpe = dtype === "f32" || dtype === "f32-ieee" || dtype === "f32-tf32" ? 4 : 2;
  const ms = t.median_ms;
  if (c.op === "matmul") {
    const bytes = (c.M! * c.K! + c.K! * c.N! + c.M! * c.N!) * bpe;
    return { gflops: (2 * c.M! * c.K! * c.N!) / (ms * 1e6), gbs: bytes / (ms * 1e6) };
  }
  if (c.op === "attention") {
    const full = 4 * c.B! * c.H! * c.T! * c.T! * c.D!;
    // Causal: half the score matrix is computed (FLOPs counted as torch/FlashAttention count them).
    return {
      gflops: (c.causal ? full / 2 : full) / (ms * 1e6),
      gbs: (4 * c.B! * c.H! * c.T! * c.D! * bpe) / (ms * 1e6),
    };
  }
  return { gbs: (2 * c.R! * c.C! * bpe) / (ms * 1e6) };
}

// ---- PyTorch (CUDA) -----------------------------------------------------------------------------

function torchPeer(): void {
  if (args.has("no-torch")) {
    out.note("torch: skipped (--no-torch)");
    return;
  }
  const res = runTorch(
    CASES.filter((c) => c.torch.length > 0),
    Math.min(Q ? 60 : 100, secondsLeft(args) * 0.5),
  );
  if (res.info) {
    out.save({ torchInfo: res.info });
    console.log(`torch: ${JSON.stringify(res.info)}`);
  }
  for (const n of res.notes) out.note(n);
  for (const obj of res.rows) {
    const r = obj as unknown as Row;
    const c = CASES.find((x) => x.shape === r.shape && x.op === r.op)!;
    if (!r.error) Object.assign(r, rates(c, r.dtype, r as unknown as Timing));
    push(r);
  }
}

// ---- tfjs-backend-webgpu -------------------------------------------------------------------------

let tf: Tf | null | undefined;
const tfErrors: string[] = [];
async function tfjs(): Promise<Tf | null> {
  if (tf !== undefined) return tf;
  if (args.has("no-tfjs")) {
    tf = null;
    return tf;
  }
  try {
    tf = await startTfjs(device, (message) => tfErrors.push(message));
  } catch (err) {
    out.note(`tfjs-webgpu unavailable: ${errorText(err)}`);
    tf = null;
  }
  return tf;
}

// ---- our kernels -------------------------------------------------------------------------------

interface Inputs {
  host: Float32Array[];
  shapes: number[][];
}

function inputs(c: Case): Inputs {
  const rng = new Rng(7);
  if (c.op === "matmul") {
    const bShape = c.nt ? [c.N!, c.K!] : [c.K!, c.N!];
    return { host: [rng.uniform(c.M! * c.K!), rng.uniform(c.K! * c.N!)], shapes: [[c.M!, c.K!], bShape] };
  }
  if (c.op === "attention") {
    const s = [c.B!, c.H!, c.T!, c.D!];
    const n = c.B! * c.H! * c.T! * c.D!;
    return { host: [rng.normal(n), rng.normal(n), rng.normal(n)], shapes: [s, s, s] };
  }
  // copy: uniform draws are 4x cheaper than normal ones and the values do not matter.
  const x = c.op === "copy" ? rng.uniform(c.R! * c.C!) : rng.normal(c.R! * c.C!);
  return { host: [x, rng.normal(c.C!)], shapes: [[c.R!, c.C!], [c.C!]] };
}

function oursOp(c: Case, t: T.Tensor[]): () => T.Tensor {
  if (c.op === "matmul") return () => T.matmul(t[0]!, t[1]!, { transposeB: !!c.nt });
  if (c.op === "attention")
    return () => T.noGrad(() => T.attention(t[0]!, t[1]!, t[2]!, { causal: !!c.causal }));
  if (c.op === "softmax") return () => T.noGrad(() => T.softmax(t[0]!, -1));
  if (c.op === "copy")
    return () => {
      const y = T.Tensor.empty(t[0]!.shape, { dtype: t[0]!.dtype });
      T.assign(y, t[0]!);
      return y;
    };
  return () => T.noGrad(() => T.rmsNorm(t[0]!, t[1]!, 1e-5));
}

/** Largest |got - ref| / scale over a few sampled outputs, references in float64 from the f32 host inputs. */
function check(c: Case, inp: Inputs, got: Float32Array): number {
  const [x, y, z] = inp.host;
  let worst = 0;
  const samples = 12;
  if (c.op === "matmul") {
    const { M, K, N } = c as Required<Case>;
    for (let s = 0; s < samples; s++) {
      const i = (s * 7919) % M;
      const j = (s * 104729 + 5) % N;
      let ref = 0;
      let mag = 0;
      for (let k = 0; k < K; k++) {
        const p = x![i * K + k]! * (c.nt ? y![j * K + k]! : y![k * N + j]!);
        ref += p;
        mag += Math.abs(p);
      }
      worst = Math.max(worst, Math.abs(got[i * N + j]! - ref) / Math.max(mag, 1e-6));
    }
  } else if (c.op === "attention") {
    const { B, H, T: Tn, D, causal } = c as Required<Case>;
    for (let s = 0; s < 4; s++) {
      const bh = (s * 31) % (B * H);
      const t = (s * 977 + Tn - 1) % Tn;
      const base = bh * Tn * D;
      const scores = new Float64Array(Tn);
      let m = -Infinity;
      const last = causal ? t : Tn - 1;
      for (let u = 0; u <= last; u++) {
        let d = 0;
        for (let e = 0; e < D; e++) d += x![base + t * D + e]! * y![base + u * D + e]!;
        scores[u] = d / Math.sqrt(D);
        m = Math.max(m, scores[u]!);
      }
      let sum = 0;
      for (let u = 0; u <= last; u++) sum += scores[u] = Math.exp(scores[u]! - m);
      for (let e = 0; e < D; e++) {
        let o = 0;
        for (let u = 0; u <= last; u++) o += (scores[u]! / sum) * z![base + u * D + e]!;
        worst = Math.max(worst, Math.abs(got[base + t * D + e]! - o) / 1);
      }
    }
  } else {
    const { R, C } = c as Required<Case>;
    for (let s = 0; s < 3; s++) {
      const r = (s * 613) % R;
      const xs = x!.subarray(r * C, (r + 1) * C);
      if (c.op === "copy") {
        for (let j = 0; j < C; j++)
          worst = Math.max(worst, Math.abs(got[r * C + j]! - xs[j]!) / Math.max(1, Math.abs(xs[j]!)));
      } else if (c.op === "softmax") {
        let m = -Infinity;
        for (const v of xs) m = Math.max(m, v);
        let sum = 0;
        for (const v of xs) sum += Math.exp(v - m);
        for (let j = 0; j < C; j++)
          worst = Math.max(worst, Math.abs(got[r * C + j]! - Math.exp(xs[j]! - m) / sum) * C);
      } else {
        let ss = 0;
        for (const v of xs) ss += v * v;
        const inv = 1 / Math.sqrt(ss / C + 1e-5);
        for (let j = 0; j < C; j++) {
          const ref = xs[j]! * inv * y![j]!;
          worst = Math.max(worst, Math.abs(got[r * C + j]! - ref) / Math.max(1, Math.abs(ref)));
        }
      }
    }
  }
  return worst;
}

async function benchOurs(c: Case, inp: Inputs): Promise<void> {
  for (const dtype of c.ours) {
    const r: Row = { op: c.op, shape: c.shape, dtype: dtype === "f16" ? "f16" : "f32", impl: "webvlm" };
    if (dtype === "f16" && !device.hasF16) continue;
    const ts = inp.host.map((h, i) => T.Tensor.from(h, inp.shapes[i]!, { dtype }));
    try {
      const op = oursOp(c, ts);
      const y = op();
      const got = await y.toFloat32();
      y.dispose();
      r.maxRelErr = check(c, inp, got);
      // f16 storage: inputs and output rounded to 11 bits; attention/softmax errors are absolute-ish.
      r.correct = r.maxRelErr < (dtype === "f16" ? 2e-2 : 2e-3);
      const t = await timeBatched(
        () => op().dispose(),
        () => device.sync(),
        { targetMs: Q ? 20 : 100, batches: Q ? 3 : 5 },
      );
      Object.assign(r, { median_ms: t.median_ms, min_ms: t.min_ms, reps: t.reps }, rates(c, dtype, t));
    } catch (err) {
      console.log((err as Error).stack); // run.log keeps it; the row keeps the message
      r.error = errorText(err);
    } finally {
      T.dispose(ts);
    }
    push(r);
  }
}

async function benchTfjs(c: Case, inp: Inputs): Promise<void> {
  if (!c.tfjs) return;
  const core = await tfjs();
  if (!core) return;
  const r: Row = { op: c.op, shape: c.shape, dtype: "f32", impl: "tfjs-webgpu" };
  tfErrors.length = 0;
  const ts = inp.host.map((h, i) => core.tensor(h, inp.shapes[i]));
  try {
    const [x, y, z] = ts;
    const fn =
      c.op === "matmul"
        ? () => core.matMul(x as never, y as never, false, !!c.nt)
        : c.op === "attention"
          ? () => tfAttention(core, x!, y!, z!)
          : c.op === "softmax"
            ? () => core.softmax(x!)
            : () => tfRmsNorm(core, x!, y!, 1e-5);
    const t = await timeBatched(
      () => fn().dispose(),
      () => tfSync(core),
      { targetMs: Q ? 20 : 100, batches: Q ? 3 : 5 },
    );
    if (tfErrors.length) throw new Error(`WebGPU error in tfjs: ${tfErrors[0]}`);
    Object.assign(r, { median_ms: t.median_ms, min_ms: t.min_ms, reps: t.reps }, rates(c, "f32", t));
  } catch (err) {
    console.log((err as Error).stack); // run.log keeps it; the row keeps the message
    r.error = errorText(err);
  } finally {
    core.dispose(ts);
  }
  push(r);
}

try {
  torchPeer();
} catch (err) {
  out.note(`torch: ${errorText(err)}`);
}
for (const c of CASES) {
  if (secondsLeft(args) < (Q ? 5 : 15)) {
    out.note(`deadline: skipped ${c.op} ${c.shape} and the cases after it`);
    break;
  }
  const t0 = Date.now();
  const inp = inputs(c);
  await benchOurs(c, inp);
  await benchTfjs(c, inp);
  device.trimPool(); // the next case's sizes differ: free this one's buffers
  console.log(`  (${c.op} ${c.shape}: ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}
out.note(
  "onnxruntime-node: not run here (a native CPU addon that does not travel); torch on the GPU is the peer",
);
out.save({ done: true });
console.log(`wrote ${args.json}`);
process.exit(0);
