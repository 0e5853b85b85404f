// AdamW step time: one fused dispatch over a FlatParams, vs the same kernel once per tensor, vs a
// composition of elementwise tensor ops (what the step costs without a fused kernel). Never gates CI.
//   cd packages/nn && node --conditions=source --import tsx --import ../../tools/wgsl/register.mjs src/optim/adamw/adamw.bench.ts [--params 200] [--elements 4000000] [--steps 20]
import { assign, getDevice, noGrad, Tensor, tidy } from "@webvlm/tensor";
import { FlatParams } from "../flat-params/flat-params.js";
import { AdamW } from "./adamw.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const count = arg("params", 200);
  const total = arg("elements", 4_000_000);
  const steps = arg("steps", 20);
  const device = await getDevice();
  // A transformer-like mix: a few big matrices, many small norms and biases.
  const shapes: number[][] = [];
  for (let i = 0; i < count; i++)
    shapes.push(i % 4 === 0 ? [Math.floor((4 * total) / count) - 7] : [61 + (i % 5)]);
  const elements = shapes.reduce((s, x) => s + x[0]!, 0);
  console.log(
    `adapter: ${device.info.description || device.info.vendor}; ${count} params, ${elements} elements, f32, mean of ${steps} steps`,
  );
  const grads = shapes.map((s) =>
    Tensor.from(
      Float32Array.from({ length: s[0]! }, (_, i) => Math.sin(i)),
      s,
    ).keep(),
  );

  async function time(
    label: string,
    setup: () => { step: () => void; dispose: () => void; params: Tensor[] },
    gradsInPlace = false,
  ): Promise<void> {
    const { step, dispose, params } = setup();
    // Fresh gradient tensors each step, as backward makes them; or, once gathered, left in the flat grad storage.
    const give = () =>
      params.forEach((p, i) => {
        if (gradsInPlace && p.grad) return;
        p.grad = grads[i]!.retainHandle();
      });
    give();
    step();
    await device.sync();
    const t0 = performance.now();
    // Wait for every step: a long unawaited queue lets Node's event loop run dry before Dawn reports back.
    for (let k = 0; k < steps; k++) {
      give();
      step();
      await device.sync();
    }
    const ms = (performance.now() - t0) / steps;
    // Bytes the update must move: read p, g, m, v; write p, m, v.
    const gbs = (elements * 28) / (ms * 1e6);
    console.log(
      `${label.padEnd(36)} ${ms.toFixed(2).padStart(8)} ms/step  ${gbs.toFixed(1).padStart(6)} GB/s effective`,
    );
    dispose();
  }

  const fused = () => {
    const flat = FlatParams.create(shapes);
    const opt = new AdamW(flat, { lr: 1e-3 });
    return {
      params: [...flat.params],
      step: () => opt.step(),
      dispose: () => {
        opt.dispose();
        flat.dispose();
      },
    };
  };
  await time("fused, FlatParams, grads in place", fused, true);
  await time("fused, FlatParams, + gather copies", fused);
  await time(`same kernel per tensor (${count} dispatches)`, () => {
    const ps = shapes.map((s) => Tensor.empty(s).keep());
    const opt = new AdamW(ps, { lr: 1e-3 });
    return {
      params: ps,
      step: () => opt.step(),
      dispose: () => {
        opt.dispose();
        for (const p of ps) p.dispose();
      },
    };
  });
  await time("composition of elementwise ops", () => {
    const ps = shapes.map((s) => Tensor.empty(s).keep());
    const ms = shapes.map((s) => Tensor.empty(s).keep());
    const vs = shapes.map((s) => Tensor.empty(s).keep());
    let t = 0;
    const [lr, b1, b2, eps, wd] = [1e-3, 0.9, 0.999, 1e-8, 1e-2];
    const step = () => {
      t++;
      const bc1 = 1 - b1 ** t;
      const bc2 = Math.sqrt(1 - b2 ** t);
      noGrad(() =>
        tidy(() => {
          ps.forEach((p, i) => {
            const g = p.grad!;
            const m = ms[i]!.add(g.sub(ms[i]!).mul(1 - b1));
            const v = vs[i]!.mul(b2).add(g.mul(g).mul(1 - b2));
            const denom = v.sqrt().div(bc2).add(eps);
            const next = p.mul(1 - lr * wd).sub(m.div(denom).mul(lr / bc1));
            assign(ms[i]!, m);
            assign(vs[i]!, v);
            assign(p, next);
            g.dispose();
            p.grad = null;
          });
        }),
      );
    };
    return {
      params: ps,
      step,
      dispose: () =>
        [...ps, ...ms, ...vs].forEach((x) => {
          x.dispose();
        }),
    };
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
