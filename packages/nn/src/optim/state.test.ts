import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getDevice, numel, Tensor } from "@webvlm/tensor";
import { Rng } from "@webvlm/tensor/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdamW } from "./adamw/adamw.js";
import { FlatParams } from "./flat-params/flat-params.js";
import type { Optimizer } from "./optimizer.js";
import { SGD } from "./sgd/sgd.js";
import { loadOptimizerState, saveOptimizerState } from "./state-io.js";

const dir = mkdtempSync(join(tmpdir(), "webvlm-optim-"));
beforeAll(async () => {
  await getDevice();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FLAT_SHAPES = [[5, 3], [1], [130]];
const SEP_SHAPES = [[7], [2, 3]];

interface Model {
  flat: FlatParams;
  separate: Tensor[];
  params: Tensor[];
}

function model(values?: Float32Array[]): Model {
  const rng = new Rng(42);
  const all = [...FLAT_SHAPES, ...SEP_SHAPES];
  const init = values ?? all.map((s) => rng.normal(numel(s)));
  const flat = FlatParams.create(FLAT_SHAPES);
  FLAT_SHAPES.forEach((_, i) => {
    flat.set(i, init[i]!);
  });
  const separate = SEP_SHAPES.map((s, k) => Tensor.from(init[FLAT_SHAPES.length + k]!, s).keep());
  return { flat, separate, params: [...flat.params, ...separate] };
}

function dispose(m: Model): void {
  m.flat.dispose();
  for (const t of m.separate) t.dispose();
}

/** Gradient of step `k`: the same sequence in every run. */
function grads(k: number): Float32Array[] {
  const rng = new Rng(1000 + k);
  return [...FLAT_SHAPES, ...SEP_SHAPES].map((s) => rng.normal(numel(s)));
}

function train(m: Model, opt: Optimizer<{ lr: number }>, from: number, to: number): void {
  for (let k = from; k < to; k++) {
    const g = grads(k);
    m.params.forEach((p, i) => {
      p.grad = Tensor.from(g[i]!, p.shape).keep();
    });
    opt.setLrMultiplier(1 - k / 40);
    opt.step();
    opt.zeroGrad();
  }
}

async function bits(ts: Tensor[]): Promise<number[][]> {
  return Promise.all(ts.map(async (t) => Array.from(new Uint32Array((await t.toFloat32()).buffer))));
}

type Make = (params: Tensor[]) => Optimizer<{ lr: number }>;
const makers: [string, Make][] = [
  [
    "AdamW",
    (ps) =>
      new AdamW(
        [
          { params: [ps[0]!, ps[3]!], weightDecay: 0.1 },
          { params: [ps[1]!, ps[2]!, ps[4]!], weightDecay: 0 },
        ],
        { lr: 1e-2 },
      ),
  ],
  ["SGD", (ps) => new SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01 })],
];

describe("optimizer state", () => {
  for (const [name, make] of makers) {
    it(`${name}: save after 10 steps, load into a fresh optimizer, 10 more steps: bitwise equal to 20 uninterrupted`, async () => {
      const a = model();
      const optA = make(a.params);
      train(a, optA, 0, 20);
      const want = await bits(a.params);

      const b = model();
      const optB = make(b.params);
      train(b, optB, 0, 10);
      const path = join(dir, `${name}.safetensors`);
      await saveOptimizerState(optB, path);
      const saved = await Promise.all(b.params.map((p) => p.toFloat32()));

      // A new process would rebuild the model from its checkpoint and the optimizer from this file.
      const c = model(saved.map((x) => x.slice()));
      const optC = make(c.params);
      await loadOptimizerState(optC, path);
      expect(optC.steps).toEqual(optB.steps);
      expect(optC.paramGroups.map((g) => g.lr)).toEqual(optB.paramGroups.map((g) => g.lr));
      train(c, optC, 10, 20);
      expect(await bits(c.params)).toEqual(want);

      const state = await optC.state();
      expect(Object.keys(state.tensors)).toContain(
        name === "AdamW" ? "optimizer.exp_avg_sq.4" : "optimizer.momentum_buffer.4",
      );
      expect(state.metadata.optimizer).toBe(name);
      for (const o of [optA, optB, optC]) o.dispose();
      for (const m of [a, b, c]) dispose(m);
    });
  }

  it("reports every missing, unexpected and mis-shaped record at once", async () => {
    const m = model();
    const opt = new AdamW(m.params);
    const state = await opt.state();
    delete state.tensors["optimizer.exp_avg.1"];
    state.tensors["optimizer.exp_avg_sq.2"] = { dtype: "F32", shape: [3], data: new Float32Array(3) };
    state.tensors["optimizer.exp_avg.9"] = { dtype: "F32", shape: [1], data: new Float32Array(1) };
    expect(() => opt.loadState(state)).toThrow(
      /3 problems: missing optimizer.exp_avg.1; optimizer.exp_avg_sq.2 is \[3\], expected \[130\]; unexpected optimizer.exp_avg.9/,
    );
    const sgd = new SGD(m.params, { momentum: 0.5 });
    expect(() => sgd.loadState(state)).toThrow(/the state was saved by AdamW/);
    const fewer = new AdamW(m.params.slice(0, 2));
    expect(() => fewer.loadState(state)).toThrow(/holds 5 parameters, this optimizer has 2/);
    for (const o of [opt, sgd, fewer]) o.dispose();
    dispose(m);
  });
});
