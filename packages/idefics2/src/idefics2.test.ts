import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type ConnectorSpec,
  initConnectorWeights,
  mlpConnector,
  paperConnectors,
  perceiverConnector,
} from "@webvlm/connectors";
import { Idefics2ImageProcessor } from "@webvlm/data";
import { loadWeights } from "@webvlm/nn";
import {
  getDevice,
  noGrad,
  type ReadTensor,
  readSafetensorsFile,
  type Tensor,
  tidy,
  toFloat32,
  toInt32,
} from "@webvlm/tensor";
import { assertClose } from "@webvlm/tensor/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { Idefics2ConfigError, parseIdefics2Config } from "./config.js";
import { createIdefics2 } from "./create.js";
import { FixtureCharTokenizer, readFixtureManifest } from "./fixture.js";
import type { Idefics2ForConditionalGeneration } from "./model.js";
import { Idefics2InputProcessor, inputsFromBatch } from "./processing.js";

const FIXTURE = fileURLToPath(new URL("../../../fixtures/idefics2-tiny/", import.meta.url));
const factory = createIdefics2({ connectors: paperConnectors });
let model: Idefics2ForConditionalGeneration;
let rawConfig: Record<string, unknown>;
const cases = new Map<string, Map<string, ReadTensor>>();

function tensor(caseName: string, name: string): ReadTensor {
  const t = cases.get(caseName)?.get(`${caseName}.${name}`);
  if (!t) throw new Error(`fixture has no ${caseName}.${name}`);
  return t;
}

/** The fixture's own processor outputs as model inputs. */
function fixtureInputs(c: string) {
  const ids = tensor(c, "input_ids");
  const pv = tensor(c, "pixel_values");
  const pm = tensor(c, "pixel_attention_mask");
  return {
    inputIds: { data: toInt32(ids), shape: ids.shape },
    attentionMask: { data: toInt32(tensor(c, "attention_mask")), shape: ids.shape },
    pixelValues: { data: toFloat32(pv), shape: pv.shape },
    pixelAttentionMask: { data: toInt32(pm), shape: pm.shape },
  };
}

function arange(B: number, T: number) {
  return { data: Int32Array.from({ length: B * T }, (_, i) => i % T), shape: [B, T] };
}

/** Rows [B·T] of a [B, T, V] tensor kept where the attention mask is 1 (HF's padded rows differ). */
function realRows(values: Float32Array, mask: Int32Array, V: number): Float32Array {
  const out: number[] = [];
  mask.forEach((m, r) => {
    if (m) for (let v = 0; v < V; v++) out.push(values[r * V + v]!);
  });
  return Float32Array.from(out);
}

beforeAll(async () => {
  await getDevice();
  rawConfig = JSON.parse(await readFile(join(FIXTURE, "config.json"), "utf8"));
  model = await factory.load(FIXTURE, { dtype: "f32" });
  for (const c of ["single", "batch", "split"])
    cases.set(c, await readSafetensorsFile(join(FIXTURE, `case_${c}.safetensors`)));
});

describe("config", () => {
  it("parses the fixture config with HF field names", () => {
    const c = parseIdefics2Config(rawConfig);
    expect(c.image_token_id).toBe(998);
    expect(c.text_config.head_dim).toBe(16);
    expect(c.vision_config.image_size).toBe(56);
    expect(c.tie_word_embeddings).toBe(false);
  });

  it("fills transformers' defaults for fields old configs omit (idefics2-8b's text_config)", () => {
    const c = parseIdefics2Config({
      model_type: "idefics2",
      image_token_id: 32001,
      text_config: {
        model_type: "mistral",
        vocab_size: 32003,
        max_position_embeddings: 32768,
        rms_norm_eps: 1e-5,
        pad_token_id: 0,
        sliding_window: 4096,
      },
      vision_config: {
        hidden_size: 1152,
        image_size: 980,
        intermediate_size: 4304,
        num_attention_heads: 16,
        num_hidden_layers: 27,
        patch_size: 14,
      },
      perceiver_config: {
        resampler_depth: 3,
        resampler_head_dim: 96,
        resampler_n_heads: 16,
        resampler_n_latents: 64,
      },
    });
    expect(c.text_config.hidden_size).toBe(4096);
    expect(c.text_config.num_key_value_heads).toBe(8);
    expect(c.text_config.head_dim).toBe(128);
    const m = factory.create(c);
    expect(m.imageSeqLen(980, 980)).toBe(64);
    expect(m.namedParameters().some(([n]) => n === "model.connector.perceiver_resampler.latents")).toBe(true);
  });

  it("names the bad field", () => {
    const bad = (patch: (r: any) => void) => {
      const r = structuredClone(rawConfig) as any;
      patch(r);
      return () => parseIdefics2Config(r);
    };
    expect(bad((r) => (r.text_config.hidden_size = "64"))).toThrow(/text_config.*hidden_size/);
    expect(bad((r) => (r.vision_config.patch_size = 0))).toThrow(/vision_config\.patch_size/);
    expect(bad((r) => (r.image_token_id = 5000))).toThrow(/image_token_id 5000 .*vocab_size 1000/);
    expect(bad((r) => (r.model_type = "llava"))).toThrow(/model_type/);
    expect(bad((r) => (r.text_config.rope_scaling = { type: "linear" }))).toThrow(/rope_scaling/);
    expect(bad((r) => (r.tie_word_embeddings = "no"))).toThrow(Idefics2ConfigError);
  });

  it("an unknown connector type fails listing the known ones", () => {
    const c = parseIdefics2Config({ ...rawConfig, connector_config: { type: "qformer" } });
    expect(() => factory.create(c)).toThrow(
      /"qformer" is unknown; known types: "perceiver", "mlp", "cross_attention"/,
    );
    expect(() =>
      createIdefics2({ connectors: [mlpConnector] }).create(parseIdefics2Config(rawConfig)),
    ).toThrow(/known types: "mlp"/);
  });
});

describe("forward vs the HF fixture", () => {
  for (const c of ["single", "batch", "split"]) {
    it(`${c}: logits at every real token (positions 0..T-1, as HF's forward)`, async () => {
      const inputs = fixtureInputs(c);
      const [B, T] = inputs.inputIds.shape as [number, number];
      const logits = noGrad(() => model.forward({ ...inputs, positionIds: arange(B, T) }));
      const want = tensor(c, "logits");
      expect(logits.shape).toEqual(want.shape);
      const V = want.shape[2]!;
      assertClose(
        realRows(await logits.toFloat32(), inputs.attentionMask.data, V),
        realRows(toFloat32(want), inputs.attentionMask.data, V),
        {
          atol: 1e-4,
          what: `${c}.logits`,
        },
      );
      logits.dispose();
    });
  }

  it("batch: mask-derived positions (the default) reproduce logits_with_mask_position_ids", async () => {
    const inputs = fixtureInputs("batch");
    const logits = noGrad(() => model.forward(inputs));
    const want = tensor("batch", "logits_with_mask_position_ids");
    const V = want.shape[2]!;
    assertClose(
      realRows(await logits.toFloat32(), inputs.attentionMask.data, V),
      realRows(toFloat32(want), inputs.attentionMask.data, V),
      {
        atol: 1e-4,
        what: "batch.logits_with_mask_position_ids",
      },
    );
    logits.dispose();
  });

  it("taps give the fixture's intermediates by name", async () => {
    const got = new Map<string, Tensor>();
    model.tap = (name, t) => got.set(name, t.retainHandle());
    const inputs = fixtureInputs("single");
    const [B, T] = inputs.inputIds.shape as [number, number];
    noGrad(() => model.forward({ ...inputs, positionIds: arange(B, T) })).dispose();
    model.tap = undefined;
    for (const name of [
      "image_hidden_states",
      "text.inputs_embeds_merged",
      "connector.perceiver.layer_1.output",
      "text.final_norm_output",
    ]) {
      const t = got.get(name);
      expect(t, name).toBeDefined();
      assertClose(await t!.toFloat32(), toFloat32(tensor("single", name)), { atol: 1e-4, what: name });
    }
    expect(Array.from(await got.get("vision.position_ids")!.data())).toEqual(
      Array.from(toInt32(tensor("single", "vision.position_ids"))),
    );
    for (const t of got.values()) t.dispose();
  });
});

describe("generate vs the HF fixture", () => {
  for (const c of ["single", "batch", "split"]) {
    it(`${c}: greedy sequences exactly, scores within 1e-4`, async () => {
      const want = tensor(c, "generate.sequences");
      const inputs = fixtureInputs(c);
      const T = inputs.inputIds.shape[1]!;
      const res = await model.generate(inputs, {
        maxNewTokens: want.shape[1]! - T,
        stopTokens: [],
        outputScores: true,
      });
      expect(res.sequences.flat()).toEqual(Array.from(toInt32(want)));
      const scores = new Float32Array(res.scores!.length * res.scores![0]!.length);
      for (const [i, s] of res.scores!.entries()) scores.set(s, i * s.length);
      assertClose(scores, toFloat32(tensor(c, "generate.scores")), {
        atol: 1e-4,
        what: `${c}.generate.scores`,
      });
    });
  }

  it("streams tokens and stops on a stop token", async () => {
    const inputs = fixtureInputs("single");
    const want = Array.from(toInt32(tensor("single", "generate.sequences"))).slice(inputs.inputIds.shape[1]!);
    const seen: number[] = [];
    const res = await model.generate(inputs, {
      maxNewTokens: 12,
      stopTokens: [want[3]!],
      onToken: (e) => void seen.push(e.tokens[0]!),
    });
    expect(seen).toEqual(want.slice(0, 4));
    expect(res.finishReasons).toEqual(["stop-token"]);
  });
});

describe("loss and gradients vs the HF fixture", () => {
  it("batch: loss within 1e-5, gradients within 1e-5", async () => {
    const inputs = fixtureInputs("batch");
    const [B, T] = inputs.inputIds.shape as [number, number];
    const labels = tensor("batch", "labels");
    const { logits, loss } = model.forwardWithLoss({
      ...inputs,
      labels: { data: toInt32(labels), shape: labels.shape },
      positionIds: arange(B, T),
    });
    logits.dispose();
    expect(Math.abs((await loss.item()) - toFloat32(tensor("batch", "loss"))[0]!)).toBeLessThanOrEqual(1e-5);
    loss.backward();
    const params = new Map(model.namedParameters());
    const names = [...cases.get("batch")!.keys()].filter((k) => k.startsWith("batch.grad."));
    expect(names.length).toBeGreaterThan(0);
    for (const k of names) {
      const name = k.slice("batch.grad.".length);
      const g = params.get(name)!.value.grad;
      expect(g, `gradient of ${name}`).toBeTruthy();
      assertClose(await g!.toFloat32(), toFloat32(cases.get("batch")!.get(k)!), { atol: 1e-5, what: k });
    }
    for (const [, p] of params) {
      p.value.grad?.dispose();
      p.value.grad = null;
    }
    loss.dispose();
  });
});

describe("training step in a tidy scope", () => {
  it("const loss = tidy(() => forwardWithLoss(...).loss); loss.backward() gives the fixture gradients", async () => {
    const inputs = fixtureInputs("batch");
    const [B, T] = inputs.inputIds.shape as [number, number];
    const labels = tensor("batch", "labels");
    const device = await getDevice();
    const params = new Map(model.namedParameters());
    const names = [...cases.get("batch")!.keys()].filter((k) => k.startsWith("batch.grad."));
    expect(names.length).toBeGreaterThan(0);
    // Step 0 as a training loop writes it; steps 1 and 2 also run backward in a tidy scope, which
    // frees the backward's own temporaries, so the whole step must leave device memory as it was.
    let baseline = 0;
    for (let step = 0; step < 3; step++) {
      if (step === 1) baseline = device.memory().liveBytes;
      // Every forward intermediate (logits included) is disposed when tidy ends; the tape keeps
      // its own handles on what backward reads.
      const loss = tidy(
        () =>
          model.forwardWithLoss({
            ...inputs,
            labels: { data: toInt32(labels), shape: labels.shape },
            positionIds: arange(B, T),
          }).loss,
      );
      expect(Math.abs((await loss.item()) - toFloat32(tensor("batch", "loss"))[0]!)).toBeLessThanOrEqual(
        1e-5,
      );
      if (step === 0) loss.backward();
      else tidy(() => loss.backward());
      loss.dispose();
      for (const k of names) {
        const g = params.get(k.slice("batch.grad.".length))!.value.grad;
        expect(g, k).toBeTruthy();
        assertClose(await g!.toFloat32(), toFloat32(cases.get("batch")!.get(k)!), {
          atol: 1e-5,
          what: `step ${step} ${k}`,
        });
      }
      for (const [, p] of params) {
        p.value.grad?.dispose();
        p.value.grad = null;
      }
      if (step > 0) expect(device.memory().liveBytes, `live bytes after step ${step}`).toBe(baseline);
    }
  });
});

describe("processor with the connector's token count", () => {
  it("reproduces the fixture's input_ids, masks and labels", async () => {
    const manifest = await readFixtureManifest(FIXTURE);
    const spec = manifest.cases.batch!;
    const processor = new Idefics2InputProcessor(model, {
      tokenizer: new FixtureCharTokenizer(manifest.token_ids),
      imageProcessor: await Idefics2ImageProcessor.fromFile(join(FIXTURE, "preprocessor_config.json")),
    });
    const images = spec.images.map((l) => l.map((n) => join(FIXTURE, manifest.images[n]!.file)));
    const batch = await processor.process(spec.prompts, { images, labels: "hf" });
    expect(Array.from(batch.inputIds)).toEqual(Array.from(toInt32(tensor("batch", "input_ids"))));
    expect(Array.from(batch.labels!)).toEqual(Array.from(toInt32(tensor("batch", "labels"))));
    expect(Array.from(batch.pixelValues!)).toEqual(Array.from(toFloat32(tensor("batch", "pixel_values"))));
    const inputs = inputsFromBatch(batch);
    expect(inputs.pixelAttentionMask!.shape).toEqual(tensor("batch", "pixel_attention_mask").shape);
  });

  it("expands <image> by tokensPerImage of any connector (an MLP connector pooling 3 patches)", async () => {
    const cfg = parseIdefics2Config({ ...rawConfig, connector_config: { type: "mlp", depth: 2, pool: 3 } });
    const specs: ConnectorSpec<any>[] = [perceiverConnector, mlpConnector];
    const m = createIdefics2({ connectors: specs }).create(cfg);
    // Vision and text from the fixture; the new connector starts from a seeded initialisation.
    await loadWeights(m, join(FIXTURE, "model.safetensors"), {
      ignoreUnexpected: [/^model\.connector\./],
      allowMissing: [/^model\.connector\./],
    });
    initConnectorWeights(m.connector, { seed: 1 });
    const manifest = await readFixtureManifest(FIXTURE);
    const processor = new Idefics2InputProcessor(m, {
      tokenizer: new FixtureCharTokenizer(manifest.token_ids),
      imageProcessor: await Idefics2ImageProcessor.fromFile(join(FIXTURE, "preprocessor_config.json")),
    });
    const batch = await processor.process(["<image>What?"], {
      images: [[join(FIXTURE, "images/img_a1.png")]],
    });
    // img_a1 becomes 32×56 → 2×4 = 8 patches → ceil(8 / 3) = 3 tokens.
    expect(batch.inputIds.filter((id) => id === 998).length).toBe(3);
    const logits = noGrad(() => m.forward(inputsFromBatch(batch)));
    expect(logits.shape).toEqual([1, batch.shape[1], 1000]);
    expect((await logits.toFloat32()).every(Number.isFinite)).toBe(true);
    logits.dispose();
    m.dispose();
  });

  it("rejects a prompt whose <image> count does not match the images", async () => {
    const manifest = await readFixtureManifest(FIXTURE);
    const processor = new Idefics2InputProcessor(model, {
      tokenizer: new FixtureCharTokenizer(manifest.token_ids),
      imageProcessor: await Idefics2ImageProcessor.fromFile(join(FIXTURE, "preprocessor_config.json")),
    });
    await expect(
      processor.process(["<image><image>x"], { images: [[join(FIXTURE, "images/img_a1.png")]] }),
    ).rejects.toThrow(/\[2\] and images \[1\]/);
    expect(() => model.forward({ inputIds: [[1, 998, 5]] })).toThrow(
      /1 <image> tokens \(id 998\) but no pixel_values/,
    );
  });
});

describe("loading", () => {
  it("names what is missing from a model directory", async () => {
    await expect(factory.load(join(FIXTURE, "images"))).rejects.toThrow(/has no config.json/);
    await expect(factory.load(join(FIXTURE, "nope"))).rejects.toThrow(/does not exist/);
  });
});
