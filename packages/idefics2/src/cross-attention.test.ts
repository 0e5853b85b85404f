import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type CrossAttentionConnector,
  initConnectorWeights,
  isLayerConnector,
  paperConnectors,
} from "@webvlm/connectors";
import { Idefics2ImageProcessor } from "@webvlm/data";
import { loadWeights } from "@webvlm/nn";
import { getDevice, noGrad, Tensor } from "@webvlm/tensor";
import { assertClose } from "@webvlm/tensor/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseIdefics2Config } from "./config.js";
import { createIdefics2 } from "./create.js";
import { FixtureCharTokenizer, readFixtureManifest } from "./fixture.js";
import type { Idefics2ForConditionalGeneration } from "./model.js";
import { Idefics2InputProcessor, inputsFromBatch } from "./processing.js";

const FIXTURE = fileURLToPath(new URL("../../../fixtures/idefics2-tiny/", import.meta.url));
const IMAGE = join(FIXTURE, "images/img_a1.png");
const FAKE = 997;
const IMAGE_ID = 998;

let model: Idefics2ForConditionalGeneration;
let connector: CrossAttentionConnector;
let processor: Idefics2InputProcessor;

beforeAll(async () => {
  await getDevice();
  const raw = JSON.parse(await readFile(join(FIXTURE, "config.json"), "utf8"));
  // Flamingo-style: a gated cross-attention block after each of the 2 decoder layers.
  const config = parseIdefics2Config({
    ...raw,
    connector_config: { type: "cross_attention", every: 1, num_key_value_heads: 2, head_dim: 16 },
  });
  model = createIdefics2({ connectors: paperConnectors }).create(config);
  // Vision tower and decoder from the fixture; the connector is new, from the init helper.
  await loadWeights(model, join(FIXTURE, "model.safetensors"), {
    ignoreUnexpected: [/^model\.connector\./],
    allowMissing: [/^model\.connector\./],
  });
  connector = model.connector as CrossAttentionConnector;
  initConnectorWeights(connector, { seed: 3, std: 0.2 });
  const manifest = await readFixtureManifest(FIXTURE);
  processor = new Idefics2InputProcessor(model, {
    tokenizer: new FixtureCharTokenizer(manifest.token_ids),
    imageProcessor: await Idefics2ImageProcessor.fromFile(join(FIXTURE, "preprocessor_config.json")),
  });
});

afterAll(() => model.dispose());

function setGates(value: number): void {
  for (const block of connector.layers) {
    block.attn_gate.set(Tensor.from([value], [1]));
    block.ff_gate.set(Tensor.from([value], [1]));
  }
}

describe("Idefics2 with the cross-attention connector", () => {
  it("puts no image tokens in the text stream: tokensPerImage 0, one <image> marker per image", () => {
    expect(isLayerConnector(connector)).toBe(true);
    expect(connector.layers.length).toBe(2);
    expect(connector.tokensPerImage(16)).toBe(0);
    expect(connector.mediaTokensPerImage(16)).toBe(16);
    expect(model.imageSeqLen(56, 56)).toBe(1);
  });

  it("the processor expands <image> to <fake><image><fake> (×5, fakes shared, when splitting)", async () => {
    const plain = await processor.process(["<image>What?"], { images: [[IMAGE]] });
    const ids = Array.from(plain.inputIds);
    expect(ids.slice(0, 4)).toEqual([1, FAKE, IMAGE_ID, FAKE]);
    expect(ids.filter((id) => id === IMAGE_ID).length).toBe(1);
    const split = await processor.process(["<image>What?"], { images: [[IMAGE]], doImageSplitting: true });
    const s = Array.from(split.inputIds);
    expect(s.slice(0, 12)).toEqual([
      1,
      FAKE,
      IMAGE_ID,
      FAKE,
      IMAGE_ID,
      FAKE,
      IMAGE_ID,
      FAKE,
      IMAGE_ID,
      FAKE,
      IMAGE_ID,
      FAKE,
    ]);
    expect(split.pixelShape?.[1]).toBe(5);
  });

  it("runs forward on the fixture shapes: identity with fresh (zero) gates, images matter once they open", async () => {
    const batch = await processor.process(["<image>What is it?"], { images: [[IMAGE]] });
    const inputs = inputsFromBatch(batch);
    const T = batch.shape[1];
    const textOnly = { inputIds: inputs.inputIds, attentionMask: inputs.attentionMask };
    const logitsOf = async (x: Parameters<typeof model.forward>[0]) => {
      const l = noGrad(() => model.forward(x));
      expect(l.shape).toEqual([1, T, 1000]);
      const v = await l.toFloat32();
      l.dispose();
      expect(v.every(Number.isFinite)).toBe(true);
      return v;
    };
    // tanh(0) = 0: a fresh block leaves the decoder unchanged, so the image has no effect yet.
    const base = await logitsOf(textOnly);
    assertClose(await logitsOf(inputs), base, { atol: 1e-6, what: "zero-gate logits vs text only" });
    setGates(0.7);
    const withImage = await logitsOf(inputs);
    let maxDiff = 0;
    for (let i = 0; i < base.length; i++) maxDiff = Math.max(maxDiff, Math.abs(withImage[i]! - base[i]!));
    expect(maxDiff).toBeGreaterThan(1e-3);
    // The same image in another layout (split into 5) reads other media: other logits, still finite.
    const split = await processor.process(["<image>What is it?"], {
      images: [[IMAGE]],
      doImageSplitting: true,
    });
    const l = noGrad(() => model.forward(inputsFromBatch(split)));
    expect((await l.toFloat32()).every(Number.isFinite)).toBe(true);
    l.dispose();
    setGates(0);
  });

  it("generates with the hook through the KV cache", async () => {
    setGates(0.5);
    const batch = await processor.process(["<image>Hi"], { images: [[IMAGE]] });
    const res = await model.generate(inputsFromBatch(batch), { maxNewTokens: 3, stopTokens: [] });
    expect(res.newTokens[0]!.length).toBe(3);
    setGates(0);
  });

  it("a marker count that does not match the images fails naming both", async () => {
    const batch = await processor.process(["<image>Hi"], { images: [[IMAGE]] });
    const inputs = inputsFromBatch(batch);
    const ids = Int32Array.from(batch.inputIds);
    ids[ids.length - 1] = IMAGE_ID; // a second marker
    expect(() =>
      noGrad(() => model.forward({ ...inputs, inputIds: { data: ids, shape: batch.shape } })),
    ).toThrow(/2 <image> markers \(id 998\) for 1 real images; .*one marker per image/);
  });
});
