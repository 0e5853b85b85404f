import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const fixtures = fileURLToPath(new URL("../../fixtures/", import.meta.url));

describe("built packages", () => {
  it("resolve to dist, not source", () => {
    expect(import.meta.resolve("@webvlm/tensor")).toMatch(/\/dist\/index\.js$/);
  });

  it("tensor: views, fluent ops, matmul and autograd work from the bundle", async () => {
    const { Tensor, getDevice, matmul, tidy } = await import("@webvlm/tensor");
    await getDevice();
    const x = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(await x.transpose().reshape([6]).toArray()).toEqual([1, 4, 2, 5, 3, 6]);
    x.requiresGrad = true;
    const loss = tidy(() => matmul(x, x, { transposeB: true }).sum());
    loss.backward();
    expect(await loss.item()).toBe(14 + 32 + 32 + 77);
    expect(Array.from(await x.grad!.toFloat32())).toEqual([10, 14, 18, 10, 14, 18]);
  });

  it("tokenizer: encodes with the real Idefics2 tokenizer", async () => {
    const { Tokenizer } = await import("@webvlm/tokenizer");
    const tok = await Tokenizer.fromDirectory(`${fixtures}tokenizer`);
    const { ids } = tok.encode("Hello world", { addSpecialTokens: true });
    expect(ids[0]).toBe(1);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe("Hello world");
  });

  it("idefics2: loads the tiny model and produces finite logits", async () => {
    const { noGrad } = await import("@webvlm/tensor");
    const { paperConnectors } = await import("@webvlm/connectors");
    const { createIdefics2, loadInputProcessor, inputsFromBatch } = await import("@webvlm/idefics2");
    const dir = `${fixtures}idefics2-tiny`;
    const model = await createIdefics2({ connectors: paperConnectors }).load(dir, { dtype: "f32" });
    const { processor } = await loadInputProcessor(dir, model);
    const batch = await processor.process(["<image>Describe it."], {
      images: [[`${dir}/images/img_a1.png`]],
    });
    const logits = noGrad(() => model.forward(inputsFromBatch(batch)));
    const values = await logits.toFloat32();
    expect(logits.shape[2]).toBe(1000);
    expect(values.every(Number.isFinite)).toBe(true);
  });
});
