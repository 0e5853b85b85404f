import { fileURLToPath } from "node:url";
import { getDevice } from "@webvlm/tensor";
import { beforeAll, describe, expect, it } from "vitest";
import { loadWeights, WeightLoadError } from "./load.js";
import { Module, Parameter } from "./module.js";

const MODEL = fileURLToPath(new URL("../../../fixtures/idefics2-tiny/model.safetensors", import.meta.url));

class Norm extends Module {
  weight = new Parameter([64]);
}
class Head extends Module {
  lm_head = new Lin([1000, 64]);
}
class Lin extends Module {
  weight: Parameter;
  constructor(shape: number[]) {
    super();
    this.weight = new Parameter(shape);
  }
}
class TextLayer extends Module {
  input_layernorm = new Norm();
  post_attention_layernorm = new Norm();
}
class Text extends Module {
  layers = [new TextLayer(), new TextLayer()];
  norm = new Norm();
}

beforeAll(async () => {
  await getDevice();
});

describe("loadWeights", () => {
  it("walks field names as checkpoint paths, arrays as numbered children", async () => {
    const text = new Text();
    expect(text.namedParameters().map(([n]) => n)).toEqual([
      "layers.0.input_layernorm.weight",
      "layers.0.post_attention_layernorm.weight",
      "layers.1.input_layernorm.weight",
      "layers.1.post_attention_layernorm.weight",
      "norm.weight",
    ]);
    const report = await loadWeights(text, MODEL, {
      prefix: "model.text_model",
      ignoreUnexpected: [/\.(self_attn|mlp)\./, /embed_tokens/],
    });
    expect(report.loaded).toBe(5);
    const w = await text.norm.weight.value.toFloat32();
    expect(w.length).toBe(64);
    expect(w.some((v) => v !== 1)).toBe(true); // the fixture's norms differ from their default 1
  });

  it("reports every missing, unexpected and mis-shaped key at once, with full paths", async () => {
    class Bad extends Module {
      lm_head = new Lin([999, 64]);
      extra = new Norm();
    }
    const err = await loadWeights(new Bad(), MODEL, { ignoreUnexpected: [/^model\./] }).catch((e) => e);
    expect(err).toBeInstanceOf(WeightLoadError);
    expect(err.missing).toEqual(["extra.weight"]);
    expect(err.mismatched).toEqual([{ name: "lm_head.weight", expected: [999, 64], found: [1000, 64] }]);
    expect(err.message).toContain("lm_head.weight: expected [999, 64], found [1000, 64]");
    const err2 = await loadWeights(new Head(), MODEL, { prefix: "model.connector" }).catch((e) => e);
    expect(err2.unexpected.length).toBeGreaterThan(0);
    expect(err2.message).toMatch(/unexpected \(model\.connector\./);
  });

  it("converts to f16 on load", async () => {
    const head = new Head();
    await loadWeights(head, MODEL, { ignoreUnexpected: [/^model\./], dtype: "f16" });
    expect(head.lm_head.weight.value.dtype).toBe("f16");
  });
});
