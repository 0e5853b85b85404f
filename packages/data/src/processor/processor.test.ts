import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { readSafetensors } from "../testing/read-safetensors.js";
import { CharTokenizer } from "./char-tokenizer.js";
import type { ChatMessage } from "./chat-template.js";
import { Idefics2ImageProcessor } from "./image-processor.js";
import { loadImageProcessorConfig } from "./image-processor-config.js";
import { Idefics2Processor, loadIdefics2Processor, ProcessorInputError } from "./processor.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../../../../fixtures/idefics2-tiny");
const manifest = JSON.parse(readFileSync(join(FIXTURES, "manifest.json"), "utf8"));
const IMAGE_SEQ_LEN = manifest.config.perceiver_config.resampler_n_latents as number;
const img = (name: string) => join(FIXTURES, manifest.images[name].file);

/** Index of the first differing element, or -1. */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function expectSame(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  const i = firstDiff(actual, expected);
  expect(
    i,
    `${name}: first difference at ${i}: got ${actual[i]}, expected ${expected[i]} (lengths ${actual.length}/${expected.length})`,
  ).toBe(-1);
}

async function processorFor(split: boolean): Promise<Idefics2Processor> {
  return loadIdefics2Processor(
    join(FIXTURES, split ? "preprocessor_config_split.json" : "preprocessor_config.json"),
    { tokenizer: new CharTokenizer(), imageSeqLen: IMAGE_SEQ_LEN },
  );
}

describe("Idefics2Processor on the idefics2-tiny fixtures", () => {
  for (const caseName of ["single", "batch", "split"] as const) {
    it(`reproduces case ${caseName} exactly`, async () => {
      const c = manifest.cases[caseName];
      const t = readSafetensors(join(FIXTURES, `case_${caseName}.safetensors`));
      const processor = await processorFor(c.do_image_splitting);
      const out = await processor.process(c.prompts, {
        images: (c.images as string[][]).map((names) => names.map(img)),
        labels: caseName === "batch" ? "hf" : "none",
        keepResized: true,
      });
      const get = (k: string) => t.get(`${caseName}.${k}`)!;

      expect(out.shape).toEqual(get("input_ids").shape);
      expectSame("input_ids", out.inputIds, get("input_ids").data);
      expectSame("attention_mask", out.attentionMask, get("attention_mask").data);
      expect(out.pixelShape).toEqual(get("pixel_values").shape);
      expectSame("pixel_values", out.pixelValues!, get("pixel_values").data);
      expect(get("pixel_attention_mask").shape).toEqual([
        ...out.pixelShape!.slice(0, 2),
        ...out.pixelShape!.slice(3),
      ]);
      expectSame("pixel_attention_mask", out.pixelAttentionMask!, get("pixel_attention_mask").data);
      if (caseName === "batch") expectSame("labels", out.labels!, get("labels").data);

      let checked = 0;
      for (const [s, images] of out.resized!.entries()) {
        for (const [i, r] of images.entries()) {
          const ref = get(`debug.resized.${s}.${i}`);
          expect([r.height, r.width, 3], `resized ${s}.${i}`).toEqual(ref.shape);
          expectSame(`debug.resized.${s}.${i}`, r.data, ref.data);
          checked++;
        }
      }
      expect(checked).toBe(c.n_real_images);
    });
  }
});

describe("Idefics2ImageProcessor called directly (imageproc_direct)", () => {
  for (const mode of ["nosplit", "split"] as const) {
    it(`composites RGBA over white and matches ${mode}`, async () => {
      const t = readSafetensors(join(FIXTURES, "imageproc_direct.safetensors"));
      const prefix = `imageproc_direct.img_a3.${mode}`;
      const ip = new Idefics2ImageProcessor(
        await loadImageProcessorConfig(join(FIXTURES, "preprocessor_config.json")),
      );
      const out = await ip.process([[img("img_a3")]], {
        doImageSplitting: mode === "split",
        keepResized: true,
      });
      const pv = t.get(`${prefix}.pixel_values`)!;
      expect(out.shape).toEqual(pv.shape);
      expectSame("pixel_values", out.pixelValues, pv.data);
      expectSame(
        "pixel_attention_mask",
        out.pixelAttentionMask,
        t.get(`${prefix}.pixel_attention_mask`)!.data,
      );
      out.resized![0].forEach((r, j) => {
        const ref = t.get(`${prefix}.resized.${j}`)!;
        expect([r.height, r.width, 3]).toEqual(ref.shape);
        expectSame(`resized.${j}`, r.data, ref.data);
      });
    });
  }

  it("differs from the processor path only where alpha < 255", async () => {
    const ip = new Idefics2ImageProcessor(
      await loadImageProcessorConfig(join(FIXTURES, "preprocessor_config.json")),
    );
    const white = await ip.process([[img("img_a3")]]);
    const dropped = await ip.process([[img("img_a3")]], { alpha: "drop" });
    expect(firstDiff(white.pixelValues, dropped.pixelValues)).not.toBe(-1);
  });
});

describe("prompt layout", () => {
  const tok = new CharTokenizer();
  const p = new Idefics2Processor({ tokenizer: tok, imageSeqLen: 2 });

  it("expands <image> with fake tokens, collapsing adjacent pairs", () => {
    const F = "<fake_token_around_image>";
    const I = "<image>";
    expect(p.expandImageTokens("a<image><image>b", false)).toBe(`a${F}${I}${I}${F}${I}${I}${F}b`);
    expect(p.expandImageTokens("<image>", true)).toBe(`${F}${I}${I}`.repeat(5) + F);
  });

  it("pads right for training and builds pre-training labels without image or fake tokens", async () => {
    const out = await p.process(["<image>ab", "c"], { padding: "right", labels: "text" });
    // BOS F I I F a b   |   BOS c pad…
    expect([...out.inputIds]).toEqual([1, 997, 998, 998, 997, 68, 69, 1, 70, 0, 0, 0, 0, 0]);
    expect([...out.attentionMask]).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
    expect([...out.labels!]).toEqual([
      1, -100, -100, -100, -100, 68, 69, 1, 70, -100, -100, -100, -100, -100,
    ]);
    expect(out.pixelValues).toBeUndefined();
  });

  it("labels only assistant turns for supervised fine-tuning", async () => {
    const conv: ChatMessage[] = [
      { role: "user", content: [{ type: "image" }, { type: "text", text: "Hi?" }] },
      { role: "assistant", content: "Yo." },
      { role: "user", content: "More" },
      { role: "assistant", content: [{ type: "text", text: "No" }] },
    ];
    const out = await p.processChat([conv, conv.slice(0, 2)], {
      padding: "right",
      labels: "assistant",
      images: [[img("img_a4")], [img("img_a4")]],
    });
    expect(out.prompts[0]).toContain(
      "User:<fake_token_around_image><image><image><fake_token_around_image>Hi?<end_of_utterance>\nAssistant: Yo.",
    );
    const [b, len] = out.shape;
    expect(b).toBe(2);
    for (let s = 0; s < b; s++) {
      const ids = [...out.inputIds.subarray(s * len, (s + 1) * len)];
      const labels = [...out.labels!.subarray(s * len, (s + 1) * len)];
      const kept = tok.decode(ids.filter((_, i) => labels[i] !== -100));
      // The character tokenizer has no "\n": it becomes <unk>.
      expect(kept).toBe(
        s === 0 ? " Yo.<end_of_utterance><unk> No<end_of_utterance><unk>" : " Yo.<end_of_utterance><unk>",
      );
      labels.forEach((l, i) => {
        if (l !== -100) expect(l).toBe(ids[i]);
      });
    }
    // Default config: shortest_edge 378 enlarges the 56×56 image.
    expect(out.pixelShape).toEqual([2, 1, 3, 378, 378]);
  });

  it("adds the generation prompt for inference", async () => {
    const out = await p.processChat([{ role: "user", content: "Q" }], { addGenerationPrompt: true });
    expect(out.prompts[0]).toBe("User: Q<end_of_utterance>\nAssistant:");
    expect(tok.decode(out.inputIds)).toBe("<s>User: Q<end_of_utterance><unk>Assistant:");
  });

  it("refuses mismatched image counts and tokenizers that split <image>", async () => {
    await expect(p.process(["<image>x"], { images: [[]] })).rejects.toThrow(
      /images in the text \[1\] and images \[0\]/,
    );
    await expect(p.process(["x"], { labels: "assistant" })).rejects.toThrow(ProcessorInputError);
    const naive = { encode: (s: string) => [...s].map((c) => c.charCodeAt(0)) };
    const bad = new Idefics2Processor({
      tokenizer: naive,
      imageSeqLen: 2,
      imageTokenId: 998,
      fakeImageTokenId: 997,
      padTokenId: 0,
    });
    await expect(bad.process(["<image>"])).rejects.toThrow(/produced 0 image tokens.*expected 2/);
    expect(() => new Idefics2Processor({ tokenizer: naive, imageSeqLen: 2 })).toThrow(/pass imageTokenId/);
    expect(() => new Idefics2Processor({ tokenizer: tok, imageSeqLen: 0 })).toThrow(/imageSeqLen/);
  });
});

describe("tokenizers shaped like @webvlm/tokenizer", () => {
  // encode returns an encoding object; the chat template is the tokenizer's own.
  const char = new CharTokenizer();
  const encodingTokenizer = {
    encode: (text: string) => ({ ids: char.encode(text), tokens: [] as string[] }),
    tokenToId: (t: string) => char.tokenToId(t),
    get padTokenId() {
      return undefined;
    },
    applyChatTemplate: (messages: ChatMessage[], o: { addGenerationPrompt?: boolean }) =>
      messages.map((m) => `[${m.role}]${typeof m.content === "string" ? m.content : "<image>"}`).join("") +
      (o.addGenerationPrompt ? "[assistant]" : ""),
  };

  it("uses the encoding's ids and the tokenizer's chat template", async () => {
    const p = new Idefics2Processor({ tokenizer: encodingTokenizer, imageSeqLen: 1 });
    expect(p.padTokenId).toBe(0); // from tokenToId("<pad>")
    const out = await p.processChat(
      [
        { role: "user", content: [{ type: "image" }] },
        { role: "assistant", content: "ok" },
      ],
      { labels: "assistant" },
    );
    expect(out.prompts[0]).toBe(
      "[user]<fake_token_around_image><image><fake_token_around_image>[assistant]ok",
    );
    const kept = [...out.inputIds].filter((_, i) => out.labels![i] !== -100);
    expect(char.decode(kept)).toBe("ok");
  });
});

describe("CharTokenizer", () => {
  const tok = new CharTokenizer();
  it("follows the fixture README's rule", () => {
    expect(tok.encode("Hi <image>~")).toEqual([1, 3 + 72 - 32, 3 + 105 - 32, 3, 998, 3 + 126 - 32]);
    expect(tok.encode("a", { addBos: false })).toEqual([68]);
    expect(tok.encode("é\n")).toEqual([1, 0, 0]);
    expect(tok.decode(tok.encode("Look:<image></s>"))).toBe("<s>Look:<image></s>");
    expect(tok.decode(tok.encode("x<end_of_utterance>"), { skipSpecialTokens: true })).toBe("x");
    expect(tok.tokenToId("<fake_token_around_image>")).toBe(997);
    expect(tok.tokenToId("<pad>")).toBe(0);
    expect(() => tok.decode([1000])).toThrow(/1000/);
  });
});
