import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadWeights } from "@webvlm/nn";
import {
  getDevice,
  noGrad,
  type ReadTensor,
  readSafetensorsFile,
  Tensor,
  tidy,
  toFloat32,
  toInt32,
} from "@webvlm/tensor";
import { assertClose, Rng } from "@webvlm/tensor/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { createConnector } from "../contract.js";
import { type PerceiverConnector, perceiverConnector } from "./perceiver.js";

const FIXTURES = fileURLToPath(new URL("../../../../fixtures/idefics2-tiny/", import.meta.url));
const config = JSON.parse(readFileSync(`${FIXTURES}config.json`, "utf8"));

let connector: PerceiverConnector;

beforeAll(async () => {
  await getDevice();
  connector = createConnector([perceiverConnector], config).connector as PerceiverConnector;
  await loadWeights(connector, `${FIXTURES}model.safetensors`, { prefix: "model.connector" });
});

describe("Idefics2 connector (modality projection + perceiver) vs the HF fixtures", () => {
  it("parses config.json: no connector_config means Idefics2's perceiver", () => {
    expect(connector.config).toMatchObject({
      vision_hidden_size: 32,
      text_hidden_size: 64,
      text_intermediate_size: 128,
      resampler_n_latents: 8,
      resampler_depth: 2,
      resampler_n_heads: 2,
      resampler_head_dim: 16,
      num_key_value_heads: 1,
      rms_norm_eps: 1e-5,
    });
    expect(connector.tokensPerImage(4900)).toBe(8);
  });

  for (const name of ["single", "batch", "split"]) {
    it(`case_${name}: modality_projection, each perceiver layer and image_hidden_states within 1e-4`, async () => {
      const c = await readSafetensorsFile(`${FIXTURES}case_${name}.safetensors`);
      const get = (k: string): ReadTensor => {
        const t = c.get(`${name}.${k}`);
        if (!t) throw new Error(`fixture case_${name} lacks ${name}.${k}`);
        return t;
      };
      // Fed the fixture's vision output and patch mask, so only the connector is under test.
      const vis = get("vision.last_hidden_state");
      const [N, P] = vis.shape as [number, number];
      const patches = Tensor.from(toFloat32(vis), vis.shape);
      const mask = Tensor.from(toInt32(get("patch_attention_mask")), [N, P], { dtype: "i32" });
      const taps = new Map<string, Tensor>();
      connector.tap = (tapName, t) => taps.set(tapName, t.retainHandle());
      const out = connector.forward(patches, mask);
      connector.tap = undefined;
      expect(out.shape).toEqual([N, 8, 64]);
      const check = async (t: Tensor | undefined, fixture: string) => {
        if (!t) throw new Error(`no tap for ${fixture}`);
        const r = assertClose(await t.toFloat32(), toFloat32(get(fixture)), {
          atol: 1e-4,
          what: `case_${name} ${fixture}`,
        });
        console.log(`connector case_${name} ${fixture}: max abs diff ${r.maxAbs.toExponential(2)}`);
      };
      await check(taps.get("connector.modality_projection"), "connector.modality_projection");
      for (let i = 0; i < 2; i++)
        await check(
          taps.get(`connector.perceiver.layer_${i}.output`),
          `connector.perceiver.layer_${i}.output`,
        );
      await check(out, "image_hidden_states");
      for (const t of [...taps.values(), out, patches, mask]) t.dispose();
    });
  }

  it("padded patches do not influence the output", async () => {
    const c = await readSafetensorsFile(`${FIXTURES}case_batch.safetensors`);
    const vis = c.get("batch.vision.last_hidden_state")!;
    const [N, P, D] = vis.shape as [number, number, number];
    const m = toInt32(c.get("batch.patch_attention_mask")!);
    expect(m.includes(0)).toBe(true);
    const x = toFloat32(vis);
    const noisy = x.slice();
    for (let k = 0; k < N * P; k++)
      if (!m[k]) for (let d = 0; d < D; d++) noisy[k * D + d] = 100 * Math.cos(k * D + d);
    const mask = Tensor.from(m, [N, P], { dtype: "i32" });
    const a = connector.forward(Tensor.from(x, [N, P, D]), mask);
    const b = connector.forward(Tensor.from(noisy, [N, P, D]), mask);
    assertClose(await b.toFloat32(), await a.toFloat32(), {
      atol: 1e-6,
      what: "perceiver output after perturbing padded patches",
    });
  });
});

describe("backward through the connector", () => {
  it("d(loss)/d(latents, gate_proj, context norm) agrees with a central difference along a random direction", async () => {
    const c = await readSafetensorsFile(`${FIXTURES}case_batch.safetensors`);
    const vis = c.get("batch.vision.last_hidden_state")!;
    const [N, P] = vis.shape as [number, number];
    const patches = Tensor.from(toFloat32(vis), vis.shape);
    const mask = Tensor.from(toInt32(c.get("batch.patch_attention_mask")!), [N, P], { dtype: "i32" });
    const rng = new Rng(5);
    const wt = Tensor.from(rng.uniform(N * 8 * 64), [N, 8, 64]);
    const params = [
      connector.perceiver_resampler.latents,
      connector.modality_projection.gate_proj.weight,
      connector.perceiver_resampler.layers[0]!.input_context_norm.weight,
    ];
    for (const param of params) {
      const theta = await param.value.toFloat32();
      const dir = rng.uniform(theta.length);
      const lossAt = async (eps: number) => {
        param.set(
          Tensor.from(
            theta.map((v, i) => v + eps * dir[i]!),
            param.shape,
          ),
        );
        return tidy(() => noGrad(() => connector.forward(patches, mask).mul(wt).sum())).item();
      };
      const eps = 1e-3;
      const numeric = ((await lossAt(eps)) - (await lossAt(-eps))) / (2 * eps);
      param.set(Tensor.from(theta, param.shape));
      tidy(() => connector.forward(patches, mask).mul(wt).sum().backward());
      const g = await param.value.grad!.toFloat32();
      const analytic = g.reduce((s, v, i) => s + v * dir[i]!, 0);
      expect(Math.abs(analytic - numeric)).toBeLessThan(2e-3 * Math.max(1, Math.abs(numeric)));
    }
  });
});
