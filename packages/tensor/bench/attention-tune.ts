// Attention forward and backward timings, per kernel variant.
//   node --import tsx --import ../../tools/wgsl/register.mjs bench/attention-tune.ts [--T 1024] [--D 64] [--H 8] [--causal]
// GFLOP/s counts the two matmuls: forward 4·B·H·T²·D, backward 10·B·H·T²·D (FlashAttention-2's
// count: QK^T recomputed, dV, dP, dQ, dK); halved when causal. Never gates CI.
import { getDevice } from "../src/device.js";
import { type AttentionVariant, attentionBackward, attentionForward } from "../src/kernels/attention/attention.js";
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
  const variants = (process.argv.includes("--variant") ? [process.argv[process.argv.indexOf("--variant") + 1]] : ["rows", "tiled"]) as AttentionVariant[];
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

  const time = async (fn: () => Tensor[]): Promise<number> => {
    for (const t of fn()) t.dispose(); // compile and warm up
    await device.sync();
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      const outs = fn();
      await device.sync();
      times.push(performance.now() - t0);
      for (const t of outs) t.dispose();
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)]!;
  };

  for (const variant of variants) {
    const opts = { causal, variant };
    const fwd = await time(() => {
      const r = attentionForward(q, k, v, opts);
      return [r.o, r.lse];
    });
    const gf = (4 * B * H * T * T * D * flopScale) / (fwd * 1e6);
    console.log(`forward  ${variant.padEnd(5)} ${fwd.toFixed(1).padStart(9)} ms ${gf.toFixed(2).padStart(7)} GFLOP/s`);
    if (skipBackward) continue;
    const { o, lse } = attentionForward(q, k, v, opts);
    const bwd = await time(() => {
      const g = attentionBackward(q, k, v, o, lse, dout, opts);
      return [g.dq, g.dk, g.dv];
    });
    const gb = (10 * B * H * T * T * D * flopScale) / (bwd * 1e6);
    console.log(`backward ${variant.padEnd(5)} ${bwd.toFixed(1).padStart(9)} ms ${gb.toFixed(2).padStart(7)} GFLOP/s`);
    o.dispose();
    lse.dispose();
  }
}

await main();
