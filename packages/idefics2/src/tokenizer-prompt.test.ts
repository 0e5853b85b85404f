import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { paperConnectors } from "@webvlm/connectors";
import { type ChatMessage, Idefics2ImageProcessor } from "@webvlm/data";
import { beforeAll, describe, expect, it } from "vitest";
import { parseIdefics2Config } from "./config.js";
import { createIdefics2 } from "./create.js";
import type { Idefics2ForConditionalGeneration } from "./model.js";
import { type LoadedTokenizer, loadModelTokenizer } from "./model-dir.js";
import { Idefics2InputProcessor, TokenizerMismatchError } from "./processing.js";
import { idefics2_8b } from "./test-configs.js";

// The real Idefics2 tokenizer (Mistral BPE + <fake_token_around_image>, <image>, <end_of_utterance>)
// with its chat template, and golden chat renderings from the reference `tokenizers` library.
const TOKENIZER = fileURLToPath(new URL("../../../fixtures/tokenizer/", import.meta.url));
const TINY = fileURLToPath(new URL("../../../fixtures/idefics2-tiny/", import.meta.url));
const IMAGES = ["img_a1.png", "img_a2.png", "img_a4.png"].map((f) => join(TINY, "images", f));

interface ChatCase {
  messages: ChatMessage[];
  add_generation_prompt: boolean;
  rendered: string;
  ids: number[];
}

const factory = createIdefics2({ connectors: paperConnectors });
let tokenizer: LoadedTokenizer;
let cases: ChatCase[];
let imageProcessor: Idefics2ImageProcessor;
// The 8B module tree (no weights): its perceiver gives tokensPerImage, its config the image id.
let model8b: Idefics2ForConditionalGeneration;

beforeAll(async () => {
  tokenizer = await loadModelTokenizer(TOKENIZER);
  const lines = (await readFile(join(TOKENIZER, "chat_template_cases.jsonl"), "utf8")).trim().split("\n");
  cases = lines.map((l) => JSON.parse(l) as ChatCase);
  imageProcessor = await Idefics2ImageProcessor.fromFile(join(TINY, "preprocessor_config.json"));
  model8b = factory.create(parseIdefics2Config(idefics2_8b()));
});

/**
 * HF's prompt expansion applied to golden ids: each `<image>` becomes `<fake>` + `<image>`×n +
 * `<fake>` (×5 when splitting), then `<fake><fake>` pairs collapse left to right. The tokens are
 * special, so expanding the ids equals tokenising the expanded text.
 */
function expandIds(ids: readonly number[], image: number, fake: number, n: number, split: boolean): number[] {
  const one = [fake, ...new Array<number>(n).fill(image), fake];
  const block = split ? [one, one, one, one, one].flat() : one;
  const spread = ids.flatMap((id) => (id === image ? block : [id]));
  const out: number[] = [];
  for (let i = 0; i < spread.length; i++) {
    out.push(spread[i]!);
    if (spread[i] === fake && spread[i + 1] === fake) i++;
  }
  return out;
}

describe("prompt path with the real Idefics2 tokenizer", () => {
  it("loads tokenizer.json with its chat template and the added tokens' own ids", () => {
    expect(tokenizer.kind).toBe("hf");
    const tok = tokenizer.tokenizer;
    expect(tok.vocabSize).toBe(32003);
    expect(tok.tokenToId?.("<fake_token_around_image>")).toBe(32000);
    expect(tok.tokenToId?.("<image>")).toBe(32001);
    expect(tok.tokenToId?.("<end_of_utterance>")).toBe(32002);
    const c = cases[2]!;
    expect(tokenizer.chatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt })).toBe(
      c.rendered,
    );
  });

  for (const split of [false, true]) {
    it(`messages with text and image parts → chat template → ids, <image> expanded by tokensPerImage${split ? ", split ×5" : ""}`, async () => {
      const tok = tokenizer.tokenizer;
      const image = tok.tokenToId!("<image>") as number;
      const fake = tok.tokenToId!("<fake_token_around_image>") as number;
      const processor = new Idefics2InputProcessor(model8b, {
        tokenizer: tok,
        imageProcessor,
        chatTemplate: tokenizer.chatTemplate,
      });
      // The perceiver answers its latent count whatever the image size.
      const n = model8b.connector.tokensPerImage(model8b.patchesFor(56, 56));
      expect(n).toBe(64);
      for (const c of cases) {
        const nImages = c.messages.reduce(
          (k, m) =>
            k + (typeof m.content === "string" ? 0 : m.content.filter((p) => p.type === "image").length),
          0,
        );
        const batch = await processor.processChat(c.messages, {
          images: [IMAGES.slice(0, nImages)],
          addGenerationPrompt: c.add_generation_prompt,
          doImageSplitting: split,
        });
        const want = expandIds(c.ids, image, fake, n, split);
        expect(Array.from(batch.inputIds), c.rendered).toEqual(want);
        expect(batch.inputIds.filter((id) => id === image).length).toBe(nImages * n * (split ? 5 : 1));
        // Images in a row share one fake token; the prompt text shows the same layout.
        const text = `<fake_token_around_image>${"<image>".repeat(n)}<fake_token_around_image>`;
        const one = split ? text.repeat(5) : text;
        const prompt = c.rendered
          .split("<image>")
          .join(one)
          .split("<fake_token_around_image><fake_token_around_image>")
          .join("<fake_token_around_image>");
        expect(batch.prompts[0]).toBe(prompt);
        expect(batch.pixelShape?.[1]).toBe(nImages * (split ? 5 : 1));
      }
    });
  }

  it("a generation prompt ends with `<end_of_utterance>\\nAssistant:`", async () => {
    const processor = new Idefics2InputProcessor(model8b, {
      tokenizer: tokenizer.tokenizer,
      imageProcessor,
      chatTemplate: tokenizer.chatTemplate,
    });
    const batch = await processor.processChat(
      [{ role: "user", content: [{ type: "image" }, { type: "text", text: "What is this?" }] }],
      { images: [[IMAGES[0]!]], addGenerationPrompt: true },
    );
    const ids = Array.from(batch.inputIds);
    // BOS, "User", ":", <fake>, <image>×64, <fake>, "▁What ▁is ▁this ?", then the golden tail.
    expect(ids.slice(0, 4)).toEqual([1, 1247, 28747, 32000]);
    expect(ids.slice(68, 74)).toEqual([32000, 1824, 349, 456, 28804, 32002]);
    expect(ids.slice(-5)).toEqual([28705, 13, 7226, 11143, 28747]);
  });

  it("refuses a tokenizer that does not fit the model, naming both numbers", async () => {
    const tiny = factory.create(
      parseIdefics2Config(JSON.parse(await readFile(join(TINY, "config.json"), "utf8"))),
    );
    const make = () => new Idefics2InputProcessor(tiny, { tokenizer: tokenizer.tokenizer, imageProcessor });
    expect(make).toThrow(TokenizerMismatchError);
    expect(make).toThrow(/vocabulary of 32003 tokens .*exceeds the model's text_config\.vocab_size 1000/);
    // Same vocabulary size, another <image> id.
    const other = idefics2_8b();
    other.image_token_id = 32000;
    const wrongImage = factory.create(parseIdefics2Config(other));
    expect(
      () => new Idefics2InputProcessor(wrongImage, { tokenizer: tokenizer.tokenizer, imageProcessor }),
    ).toThrow(/encodes <image> as id 32001, but the model's image_token_id is 32000/);
  });
});
