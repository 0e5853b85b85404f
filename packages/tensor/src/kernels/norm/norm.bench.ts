// `node --import tsx --import ../../tools/wgsl/register.mjs src/kernels/norm/norm.bench.ts`
// (from packages/tensor). Prints time and GB/s (bytes read + written / time) per row variant.
import { getDevice, noGrad, Tensor } from "../../index.js";
import { type RowVariant, withRowVariant } from "../reduce/row-kernel.js";
import { report, timeIt } from "../softmax/softmax.bench.js";
import { layerNorm, rmsNorm } from "./norm.js";

async function main(): Promise<void> {
  const device = await getDevice();
  console.log(`device: ${device.info.description}`);
  const [rows, cols] = (process.env.SHAPE ?? "4096x4096").split("x").map(Number) as [number, number];
  const x = Tensor.from(
    new Float32Array(rows * cols).map((_, i) => Math.sin(i)),
    [rows, cols],
  );
  const w = Tensor.from(new Float32Array(cols).fill(1.5), [cols]);
  const b = Tensor.from(new Float32Array(cols).fill(0.1), [cols]);
  const bytes = 2 * rows * cols * 4;
  const variants: (RowVariant | "auto")[] = ["auto", "rows", "subgroup", "tree"];
  for (const variant of variants) {
    const ops = [
      ["rmsNorm", () => noGrad(() => rmsNorm(x, w, 1e-6).dispose())],
      ["layerNorm", () => noGrad(() => layerNorm(x, w, b, 1e-6).dispose())],
    ] as const;
    for (const [name, run] of ops) {
      const ms = variant === "auto" ? await timeIt(run) : await withRowVariant(variant, () => timeIt(run));
      report(name, [rows, cols], variant, ms, bytes);
    }
  }
  const g = noGrad(() => rmsNorm(x, w, 1e-6));
  x.requiresGrad = true;
  const msx = await timeIt(() => {
    const out = rmsNorm(x, w, 1e-6);
    out.backward({ gradient: g });
    x.grad?.dispose();
    x.grad = null;
    out.dispose();
  });
  report("rmsNorm f+b dx", [rows, cols], "auto", msx, (2 + 3) * rows * cols * 4);
  w.requiresGrad = true;
  const ms = await timeIt(() => {
    const out = rmsNorm(x, w, 1e-6);
    out.backward({ gradient: g });
    for (const t of [x, w]) {
      t.grad?.dispose();
      t.grad = null;
    }
    out.dispose();
  });
  // forward (x → y) + backward (x, g → dx; x, g → dw partials)
  report("rmsNorm f+b", [rows, cols], "auto", ms, (2 + 3 + 2) * rows * cols * 4);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
