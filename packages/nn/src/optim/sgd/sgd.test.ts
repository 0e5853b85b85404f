import { type Device, getDevice, numel, Tensor } from "@webvlm/tensor";
import { assertClose, Rng } from "@webvlm/tensor/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { FlatParams } from "../flat-params/flat-params.js";
import { SGD, type SGDOptions } from "./sgd.js";
import { type SGDRefState, sgdRefStep } from "./sgd.ref.js";

let device: Device;
beforeAll(async () => {
  device = await getDevice();
});

const TOL = { atol: 2e-6, rtol: 2e-5 };
const SHAPES = [[7], [3, 5], [1], [4099], []];

/** Runs `steps` SGD steps on random grads, on GPU (flat or separate) and on the f64 reference, and compares. */
async function trajectory(
  opts: Partial<SGDOptions>,
  flatStorage: boolean,
  seed: number,
  steps = 20,
): Promise<void> {
  const rng = new Rng(seed);
  const init = SHAPES.map((s) => rng.normal(numel(s)));
  let flat: FlatParams | null = null;
  let params: Tensor[];
  if (flatStorage) {
    flat = FlatParams.create(SHAPES);
    init.forEach((x, i) => {
      flat!.set(i, x);
    });
    params = [...flat.params];
  } else {
    params = SHAPES.map((s, i) => Tensor.from(init[i]!, s).keep());
  }
  const opt = new SGD(flat ?? params, opts);
  const h = { lr: 1e-3, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, ...opts };
  const ref: SGDRefState[] = init.map((x) => ({ param: Float64Array.from(x), buf: null }));
  for (let step = 0; step < steps; step++) {
    const grads = SHAPES.map((s) => rng.normal(numel(s)));
    params.forEach((p, i) => {
      p.grad = Tensor.from(grads[i]!, SHAPES[i]!).keep();
    });
    opt.step();
    expect(opt.lastStepDispatches).toBe(flatStorage ? 1 : SHAPES.length);
    opt.zeroGrad();
    ref.forEach((r, i) => {
      sgdRefStep(r, grads[i]!, h);
    });
  }
  const what = `${flatStorage ? "flat" : "separate"} ${JSON.stringify(opts)}`;
  for (let i = 0; i < SHAPES.length; i++)
    assertClose(await params[i]!.toFloat32(), ref[i]!.param, { ...TOL, what: `${what} param ${i}` });
  if (h.momentum !== 0) {
    const state = await opt.state();
    for (let i = 0; i < SHAPES.length; i++) {
      assertClose(state.tensors[`optimizer.momentum_buffer.${i}`]!.data as Float32Array, ref[i]!.buf!, {
        ...TOL,
        what: `${what} buf ${i}`,
      });
    }
  }
  opt.dispose();
  if (flat) flat.dispose();
  else for (const p of params) p.dispose();
}

describe("SGD", () => {
  const cases: Partial<SGDOptions>[] = [
    { lr: 0.05 },
    { lr: 0.05, weightDecay: 0.1 },
    { lr: 0.02, momentum: 0.9 },
    { lr: 0.02, momentum: 0.9, dampening: 0.3, weightDecay: 0.01 },
    { lr: 0.02, momentum: 0.8, nesterov: true, weightDecay: 0.05 },
  ];
  cases.forEach((opts, k) => {
    it(`follows torch's trajectory over 20 steps: ${JSON.stringify(opts)}`, async () => {
      await trajectory(opts, true, 10 + k);
      await trajectory(opts, false, 20 + k, 6);
    });
  });

  it("mixes groups with and without momentum in one dispatch", async () => {
    const rng = new Rng(5);
    const flat = FlatParams.create([[33], [2, 9]]);
    const init = [rng.normal(33), rng.normal(18)];
    init.forEach((x, i) => {
      flat.set(i, x);
    });
    const opt = new SGD(
      [
        { params: [flat.params[0]!], momentum: 0.9, nesterov: true },
        { params: [flat.params[1]!], weightDecay: 0.1 },
      ],
      { lr: 0.1 },
    );
    const hs = [
      { lr: 0.1, momentum: 0.9, dampening: 0, nesterov: true, weightDecay: 0 },
      { lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0.1 },
    ];
    const ref: SGDRefState[] = init.map((x) => ({ param: Float64Array.from(x), buf: null }));
    for (let step = 0; step < 10; step++) {
      const grads = [rng.normal(33), rng.normal(18)];
      flat.params.forEach((p, i) => {
        p.grad = Tensor.from(grads[i]!, p.shape).keep();
      });
      opt.step();
      expect(opt.lastStepDispatches).toBe(1);
      opt.zeroGrad();
      ref.forEach((r, i) => {
        sgdRefStep(r, grads[i]!, hs[i]!);
      });
    }
    for (let i = 0; i < 2; i++)
      assertClose(await flat.params[i]!.toFloat32(), ref[i]!.param, { ...TOL, what: `param ${i}` });
    opt.dispose();
    flat.dispose();
  });

  it("rejects nesterov without momentum or with dampening", () => {
    const p = Tensor.from([1], [1]).keep();
    expect(() => new SGD([p], { nesterov: true })).toThrow(
      /group 0: nesterov momentum requires a momentum and zero dampening/,
    );
    expect(() => new SGD([p], { nesterov: true, momentum: 0.9, dampening: 0.1 })).toThrow(/nesterov/);
    expect(() => new SGD([p], { momentum: -1 })).toThrow(/momentum must be >= 0/);
    p.dispose();
    expect(device).toBeDefined();
  });
});
