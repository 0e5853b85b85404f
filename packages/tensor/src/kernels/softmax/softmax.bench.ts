// `node --import tsx --import ../../tools/wgsl/register.mjs src/kernels/softmax/softmax.bench.ts`
// (from packages/tensor). Prints time and GB/s (bytes read + written / time) per row variant.
import { getDevice, noGrad, Tensor } from "../../index.js";
import { type RowVariant, withRowVariant } from "../reduce/row-kernel.js";
import { logSoftmax, softmax } from "./softmax.js";

/** Best of `iterations` timed runs: the machine is shared, so the minimum is the least noisy. */
export async function timeIt(run: () => void, iterations = 7): Promise<number> {
  const device = await getDevice();
  run();
  await device.sync();
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    run();
    await device.sync();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

export function report(
  name: string,
  shape: readonly number[],
  variant: string,
  ms: number,
  bytes: number,
): void {
  console.log(
    `${name.padEnd(14)} [${shape.join(", ")}] f32  ${variant.padEnd(8)} ${ms.toFixed(2).padStart(8)} ms  ${(bytes / ms / 1e6).toFixed(2).padStart(6)} GB/s`,
  );
}

async function main(): Promise<void> {
  const device = await getDevice();
  console.log(`device: ${device.info.description}`);
  const [rows, cols] = (process.env.SHAPE ?? "4096x4096").split("x").map(Number) as [number, number];
  const x = Tensor.from(
    new Float32Array(rows * cols).map((_, i) => Math.sin(i)),
    [rows, cols],
  );
  const bytes = 2 * rows * cols * 4;
  const variants: (RowVariant | "auto")[] = ["auto", "rows", "subgroup", "tree"];
  for (const variant of variants) {
    for (const [name, op] of [
      ["softmax", softmax],
      ["logSoftmax", logSoftmax],
    ] as const) {
      const run = () => noGrad(() => op(x).dispose());
      const ms = variant === "auto" ? await timeIt(run) : await withRowVariant(variant, () => timeIt(run));
      report(name, [rows, cols], variant, ms, bytes);
    }
  }
  // Backward reads y and g, writes dx.
  const y = noGrad(() => softmax(x));
  x.requiresGrad = true;
  const ms = await timeIt(() => {
    const out = softmax(x);
    out.backward({ gradient: y });
    x.grad?.dispose();
    x.grad = null;
    out.dispose();
  });
  report("softmax f+b", [rows, cols], "auto", ms, (2 + 3) * rows * cols * 4);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
