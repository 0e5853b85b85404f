import { getDevice, numel, Tensor } from "@webvlm/tensor";
import { Rng } from "@webvlm/tensor/testing";
import { expect, it } from "vitest";
import { AdamW } from "./adamw/adamw.js";
import { clipGradNorm } from "./clip-grad-norm/clip-grad-norm.js";
import { FlatParams } from "./flat-params/flat-params.js";
import { warmupCosine } from "./schedule/schedule.js";

const STEPS = Number(process.env.MEM_STEPS ?? 1000);

it(`${STEPS} steps of clipGradNorm + AdamW + zeroGrad keep device live bytes flat`, async () => {
  const device = await getDevice();
  const rng = new Rng(3);
  const flat = FlatParams.create([[16, 8], [8], [33]]);
  const extra = [Tensor.from(rng.normal(12), [3, 4]).keep(), Tensor.from(rng.normal(5), [5]).keep()];
  const params = [...flat.params, ...extra];
  const hostGrads = params.map((p) => rng.normal(numel(p.shape)));
  const opt = new AdamW([
    { params: [flat.params[0]!, extra[0]!] },
    { params: [flat.params[1]!, flat.params[2]!, extra[1]!], weightDecay: 0 },
  ]);
  const schedule = warmupCosine({ warmupSteps: 10, totalSteps: STEPS });
  const step = (k: number) => {
    params.forEach((p, i) => {
      p.grad = Tensor.from(hostGrads[i]!, p.shape).keep();
    });
    clipGradNorm(params, 1).dispose();
    opt.setLrMultiplier(schedule(k));
    opt.step();
    opt.zeroGrad();
  };
  for (let k = 0; k < 10; k++) step(k);
  await device.sync();
  const before = device.memory();
  for (let k = 0; k < STEPS; k++) {
    step(k);
    if (k % 100 === 99) await device.sync();
  }
  await device.sync();
  const after = device.memory();
  expect(after.liveBytes).toBe(before.liveBytes);
  expect(after.liveBuffers).toBe(before.liveBuffers);
  expect(after.pooledBytes).toBeLessThanOrEqual(before.pooledBytes + 64 * 1024);
  expect(opt.steps).toEqual(params.map(() => STEPS + 10));
  for (const p of params) expect(Number.isFinite((await p.toFloat32())[0]!)).toBe(true);
  opt.dispose();
  flat.dispose();
  for (const t of extra) t.dispose();
});
