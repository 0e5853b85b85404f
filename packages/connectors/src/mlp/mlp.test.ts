import { getDevice, Tensor } from "@webvlm/tensor";
import { assertClose, checkGradients, Rng } from "@webvlm/tensor/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { ConnectorConfigError, createConnector } from "../contract.js";
import { initConnectorWeights } from "../init.js";
import { type MlpConnector, mlpConnector } from "./mlp.js";
import { type MlpRefShape, mlpConnectorRef } from "./mlp.ref.js";

const base = { vision_config: { hidden_size: 6 }, text_config: { hidden_size: 5 } };
const mk = (connector_config: Record<string, unknown>) =>
  createConnector([mlpConnector], { ...base, connector_config: { type: "mlp", ...connector_config } })
    .connector as MlpConnector;

beforeAll(async () => {
  await getDevice();
});

describe("MLP connector", () => {
  it("one token per patch, or per pooled group; weights named fc1/fc2", () => {
    const c = mk({ pool: 4 });
    expect(c.tokensPerImage(16)).toBe(4);
    expect(c.tokensPerImage(17)).toBe(5);
    expect(c.namedParameters().map(([n]) => n)).toEqual(["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
    expect(
      mk({ depth: 1 })
        .namedParameters()
        .map(([n]) => n),
    ).toEqual(["fc1.weight", "fc1.bias"]);
    expect(() => mk({ depth: 3 })).toThrow(ConnectorConfigError);
    expect(() => mk({ pooling: 2 })).toThrow(/connector_config: unknown field\(s\) pooling/);
  });

  for (const pool of [1, 3]) {
    it(`pool ${pool}: shapes, reference values, padded patches have no influence`, async () => {
      const c = mk({ pool, intermediate_size: 7, hidden_act: "gelu_pytorch_tanh" });
      initConnectorWeights(c, { seed: 1, std: 0.5 });
      const [I, P, dv] = [2, 7, 6];
      const rng = new Rng(pool);
      const x = rng.normal(I * P * dv);
      const m = Int32Array.from({ length: I * P }, (_, k) => (k % P < (k < P ? 7 : 4) ? 1 : 0)); // image 1: 3 padded patches
      const mask = Tensor.from(m, [I, P], { dtype: "i32" });
      const y = c.forward(Tensor.from(x, [I, P, dv]), mask);
      expect(y.shape).toEqual([I, c.tokensPerImage(P), 5]);
      const s: MlpRefShape = { images: I, patches: P, dv, dh: 7, dt: 5, pool };
      const w = await Promise.all(c.namedParameters().map(([, p]) => p.value.toFloat32()));
      const ref = mlpConnectorRef(
        s,
        Float64Array.from(x),
        Float64Array.from(m),
        ...(w.map((a) => Float64Array.from(a)) as [Float64Array, Float64Array, Float64Array, Float64Array]),
      );
      assertClose(await y.toFloat32(), ref, { atol: 1e-5, what: `mlp connector pool ${pool}` });
      // Padded patches: large values and NaN must not reach any output.
      const noisy = x.slice();
      m.forEach((v, k) => {
        if (!v) for (let d = 0; d < dv; d++) noisy[k * dv + d] = d === 0 ? Number.NaN : 1e4;
      });
      const y2 = c.forward(Tensor.from(noisy, [I, P, dv]), mask);
      assertClose(await y2.toFloat32(), await y.toFloat32(), {
        atol: 0,
        what: "after perturbing padded patches",
      });
    });
  }

  it("gradients of inputs and weights match finite differences (pool 2)", async () => {
    const c = mk({ pool: 2, intermediate_size: 4, hidden_act: "gelu_pytorch_tanh" });
    const s: MlpRefShape = { images: 2, patches: 5, dv: 6, dh: 4, dt: 5, pool: 2 };
    const rng = new Rng(11);
    const mask = Float32Array.from({ length: 10 }, (_, k) => (k === 4 || k === 8 || k === 9 ? 0 : 1));
    await checkGradients({
      inputs: [
        { shape: [2, 5, 6], data: rng.normal(60) },
        { shape: [2, 5], data: mask, requiresGrad: false },
        { shape: [4, 6], data: rng.normal(24, 0.5) },
        { shape: [4], data: rng.normal(4, 0.5) },
        { shape: [5, 4], data: rng.normal(20, 0.5) },
        { shape: [5], data: rng.normal(5, 0.5) },
      ],
      gpu: ([x, m, w1, b1, w2, b2]) => {
        c.fc1.weight.set(w1!);
        c.fc1.bias!.set(b1!);
        c.fc2!.weight.set(w2!);
        c.fc2!.bias!.set(b2!);
        return c.forward(x!, m!);
      },
      reference: ([x, m, w1, b1, w2, b2]) => mlpConnectorRef(s, x!, m!, w1!, b1!, w2!, b2!),
      what: "mlp connector",
    });
  });
});
