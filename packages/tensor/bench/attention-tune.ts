// Attention forward and backward timings, per kernel variant.
//   node --import tsx --import ../../tools/wgsl/register.mjs bench/attention-tune.ts [--T 1024] [--D 64] [--H 8] [--causal]
// GFLOP/s counts the two matmuls: forward 4·B·H·T²·D, backward 10·B·H·T²·D (FlashAttention-2's
// count: QK^T recomputed, dV, dP, dQ, dK); halved when causal. Never gates CI.
import { getDevice } from "../src/device.js";
import {
  type AttentionVariant,
  attentionBackward,
  attentionForward,
} from "../src/kernels/attention/attention.js";
import { Tensor } from "../src/tensor.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const B = arg("B", 1);
  const H = arg("H", 8);
  const T = arg("T", 1024);
  const D = arg("D", 64);
  const reps = arg("reps", 3);
  const causal = process.argv.includes("--causal");
  const variants = (
    process.argv.includes("--variant")
      ? [process.argv[process.argv.indexOf("--variant") + 1]]
      : ["subgroup", "rows", "tiled"]
  ) as AttentionVariant[];
  const skipBackward = process.argv.includes("--no-backward");

  const device = await getDevice();
  console.log(`adapter: ${device.info.vendor} / ${device.info.architecture} / ${device.info.description}`);
  console.log(`shape: B=${B} H=${H} T=${T} D=${D}${causal ? " causal" : ""}, f32, median of ${reps}`);
  let seed = 1;
  const rand = (n: number) =>
    Float32Array.from({ length: n }, () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 1073741824 - 1;
    });
  const n = B * H * T * D;
  const q = Tensor.from(rand(n), [B, H, T, D], { device });
  const k = Tensor.from(rand(n), [B, H, T, D], { device });
  const v = Tensor.from(rand(n), [B, H, T, D], { device });
  const dout = Tensor.from(rand(n), [B, H, T, D], { device });
  const flopScale = causal ? 0.5 : 1;

  // Wall time, and this process's CPU time: on lavapipe the kernels run on this process's
  // threads, so CPU time stays meaningful when other jobs share the cores.
  const time = async (fn: () => Tensor[]): Promise<{ wall: number; cpu: number }> => {
    for (const t of fn()) t.dispose(); // compile and warm up
    await device.sync();
    const runs: { wall: number; cpu: number }[] = [];
    for (let r = 0; r < reps; r++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const outs = fn();
      await device.sync();
      const c = process.cpuUsage(c0);
      runs.push({ wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 });
      for (const t of outs) t.dispose();
    }
    runs.sort((a, b) => a.wall - b.wall);
    return runs[Math.floor(runs.length / 2)]!;
  };
  const line = (what: string, variant: string, t: { wall: number; cpu: number }, flop: number) =>
    console.log(
      `${what.padEnd(8)} ${variant.padEnd(5)} ${t.wall.toFixed(1).padStart(9)} ms ${(flop / (t.wall * 1e6)).toFixed(2).padStart(7)} GFLOP/s` +
        `   cpu ${t.cpu.toFixed(0).padStart(7)} ms ${(flop / (t.cpu * 1e6)).toFixed(2).padStart(6)} GFLOP per cpu-s`,
    );

  for (const variant of variants) {
    const opts = { causal, variant };
    const fwd = await time(() => {
      const r = attentionForward(q, k, v, opts);
      return [r.o, r.lse];
    });
    line("forward", variant, fwd, 4 * B * H * T * T * D * flopScale);
    if (skipBackward) continue;
    const { o, lse } = attentionForward(q, k, v, opts);
    const bwd = await time(() => {
      const g = attentionBackward(q, k, v, o, lse, dout, opts);
      return [g.dq, g.dk, g.dv];
    });
    line("backward", variant, bwd, 10 * B * H * T * T * D * flopScale);
    o.dispose();
    lse.dispose();
  }
}

await main();
