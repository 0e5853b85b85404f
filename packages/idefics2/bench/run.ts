// `pnpm --filter @webvlm/idefics2 bench [--quick]`: time to first token (vision + connector +
// prefill) and decode speed for the tiny fixture model and a medium random-weight model, in f32 and
// f16, with the bytes each decoded token must read and the distance to the memory-bandwidth floor.
import { writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { initConnectorWeights, paperConnectors } from "@webvlm/connectors";
import { Idefics2ImageProcessor, type RgbImage } from "@webvlm/data";
import { cast, currentDevice, type DType, getDevice, noGrad } from "@webvlm/tensor";
import {
  createIdefics2,
  FixtureCharTokenizer,
  type Idefics2ForConditionalGeneration,
  Idefics2InputProcessor,
  inputsFromBatch,
  parseIdefics2Config,
} from "../src/index.js";

const FIXTURE = fileURLToPath(new URL("../../../fixtures/idefics2-tiny/", import.meta.url));
const RESULTS = fileURLToPath(new URL("./results.json", import.meta.url));
/** This machine's measured copy bandwidth (shared/TOOLCHAIN.md); pass WEBVLM_BANDWIDTH_GBS for another. */
const BANDWIDTH_GBS = Number(process.env.WEBVLM_BANDWIDTH_GBS ?? 30);
const quick = process.argv.includes("--quick");
const factory = createIdefics2({ connectors: paperConnectors });

/** A medium Idefics2: 12-layer SigLIP (hidden 768) + perceiver + 12-layer Mistral (hidden 768). */
const MEDIUM_CONFIG = {
  model_type: "idefics2",
  image_token_id: 32001,
  tie_word_embeddings: false,
  vision_config: {
    hidden_size: 768,
    intermediate_size: 3072,
    num_hidden_layers: 12,
    num_attention_heads: 12,
    image_size: 224,
    patch_size: 14,
  },
  perceiver_config: {
    resampler_n_latents: 64,
    resampler_depth: 3,
    resampler_n_heads: 12,
    resampler_head_dim: 64,
    num_key_value_heads: 4,
  },
  text_config: {
    model_type: "mistral",
    vocab_size: 32003,
    hidden_size: 768,
    intermediate_size: 3072,
    num_hidden_layers: 12,
    num_attention_heads: 12,
    num_key_value_heads: 4,
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    sliding_window: null,
    pad_token_id: 0,
  },
};

const TOKEN_IDS = (image: number, fake: number, eou: number) => ({
  pad_token_id: 0,
  bos_token_id: 1,
  eos_token_id: 2,
  fake_token_around_image: fake,
  image,
  end_of_utterance: eou,
  char_token_rule:
    "printable ASCII character c -> 3 + (ord(c) - 32); BOS prepended; left padding with pad_token_id",
});

function syntheticImage(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (x * 255) / width;
      data[i + 1] = (y * 255) / height;
      data[i + 2] = ((x ^ y) & 31) * 8;
    }
  }
  return { width, height, data };
}

async function mediumModel(dtype: DType): Promise<Idefics2ForConditionalGeneration> {
  const model = factory.create(parseIdefics2Config(MEDIUM_CONFIG, "medium config"));
  // Seeded random weights (norms 1, biases 0, the rest normal(0, 0.02)); timing does not need trained ones.
  initConnectorWeights(model, { seed: 1 });
  if (dtype === "f16") {
    for (const [, p] of model.namedParameters()) {
      const f32 = p.value;
      p.set(noGrad(() => cast(f32, "f16")));
    }
  }
  return model;
}

interface Row {
  model: string;
  dtype: DType;
  params: { vision: number; connector: number; text: number };
  promptTokens: number;
  imagePatches: number;
  /** Vision tower + connector + merge, seconds (device synced). */
  visionConnectorS: number;
  /** Prompt in (processor output) to first generated token, seconds: vision + connector + prefill + one readback. */
  timeToFirstTokenS: number;
  decodeTokens: number;
  decodeTokensPerS: number;
  /** Bytes one decode step must read: decoder + lm_head weights, one embedding row, the KV cache. */
  bytesPerToken: number;
  achievedGBs: number;
  /** The same step at the bandwidth limit. */
  floorMsPerToken: number;
  msPerToken: number;
  fractionOfBandwidth: number;
}

function count(model: Idefics2ForConditionalGeneration, prefix: string): number {
  return model
    .namedParameters()
    .filter(([n]) => n.startsWith(prefix))
    .reduce((s, [, p]) => s + p.shape.reduce((a, d) => a * d, 1), 0);
}

function decodeBytes(model: Idefics2ForConditionalGeneration, ctx: number): number {
  const t = model.config.text_config;
  const bpe = model.dtype === "f16" ? 2 : 4;
  let weights = 0;
  for (const [name, p] of model.namedParameters()) {
    if (name.startsWith("model.text_model.embed_tokens")) continue; // one row is read, not the table
    if (name.startsWith("model.text_model.") || name.startsWith("lm_head."))
      weights += p.shape.reduce((a, d) => a * d, 1) * bpe;
  }
  if (t.tie_word_embeddings) weights += t.vocab_size * t.hidden_size * bpe;
  const row = t.hidden_size * bpe;
  const kv = t.num_hidden_layers * 2 * t.num_key_value_heads * t.head_dim * ctx * bpe;
  return weights + row + kv;
}

async function measure(
  name: string,
  model: Idefics2ForConditionalGeneration,
  processor: Idefics2InputProcessor,
  image: RgbImage,
  newTokens: number,
): Promise<Row> {
  const device = currentDevice();
  const batch = await processor.process(
    ["User:<image>Describe this image in detail.<end_of_utterance>\nAssistant:"],
    { images: [[image]] },
  );
  const inputs = inputsFromBatch(batch);
  const T = batch.shape[1];
  // Warm-up: compiles every pipeline once, so the timed run measures steady state.
  await model.generate(inputs, { maxNewTokens: 2, stopTokens: [] });
  await device.sync();

  const v0 = performance.now();
  const { embeds } = noGrad(() => model.embed(inputs));
  await device.sync();
  const visionConnectorS = (performance.now() - v0) / 1000;
  embeds.dispose();

  const times: number[] = [];
  const t0 = performance.now();
  await model.generate(inputs, {
    maxNewTokens: newTokens,
    stopTokens: [],
    onToken: () => void times.push(performance.now()),
  });
  const ttft = (times[0]! - t0) / 1000;
  const decodeS = (times[times.length - 1]! - times[0]!) / 1000;
  const perToken = decodeS / (times.length - 1);
  const bytes = decodeBytes(model, T + Math.floor(newTokens / 2));
  const grid = model.config.vision_config;
  const [, , , H, W] = batch.pixelShape!;
  return {
    model: name,
    dtype: model.dtype,
    params: {
      vision: count(model, "model.vision_model."),
      connector: count(model, "model.connector."),
      text: count(model, "model.text_model.") + count(model, "lm_head."),
    },
    promptTokens: T,
    imagePatches: Math.floor(H / grid.patch_size) * Math.floor(W / grid.patch_size),
    visionConnectorS,
    timeToFirstTokenS: ttft,
    decodeTokens: times.length,
    decodeTokensPerS: 1 / perToken,
    bytesPerToken: bytes,
    achievedGBs: bytes / perToken / 1e9,
    floorMsPerToken: (bytes / (BANDWIDTH_GBS * 1e9)) * 1000,
    msPerToken: perToken * 1000,
    fractionOfBandwidth: bytes / perToken / 1e9 / BANDWIDTH_GBS,
  };
}

function print(r: Row): void {
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  console.log(
    `${r.model.padEnd(7)} ${r.dtype}  prompt ${String(r.promptTokens).padStart(3)} tok, ${String(r.imagePatches).padStart(3)} patches | ` +
      `vision+connector ${(r.visionConnectorS * 1000).toFixed(0).padStart(5)} ms, TTFT ${(r.timeToFirstTokenS * 1000).toFixed(0).padStart(5)} ms | ` +
      `decode ${r.decodeTokensPerS.toFixed(1).padStart(6)} tok/s (${r.msPerToken.toFixed(1)} ms/tok) | ` +
      `${mb(r.bytesPerToken)}/tok → ${r.achievedGBs.toFixed(2)} GB/s = ${(r.fractionOfBandwidth * 100).toFixed(1)}% of ${BANDWIDTH_GBS} GB/s ` +
      `(floor ${r.floorMsPerToken.toFixed(2)} ms/tok)`,
  );
}

async function main(): Promise<void> {
  const device = await getDevice();
  console.log(
    `device: ${device.info.description || device.info.vendor} (software: ${device.info.isSoftware}, f16: ${device.hasF16})`,
  );
  const dtypes: DType[] = device.hasF16 ? ["f32", "f16"] : ["f32"];
  const rows: Row[] = [];
  const tinyImages = await Idefics2ImageProcessor.fromFile(`${FIXTURE}preprocessor_config.json`);
  for (const dtype of dtypes) {
    const tiny = await factory.load(FIXTURE, { dtype });
    const processor = new Idefics2InputProcessor(tiny, {
      tokenizer: new FixtureCharTokenizer(TOKEN_IDS(998, 997, 999)),
      imageProcessor: tinyImages,
    });
    const r = await measure("tiny", tiny, processor, syntheticImage(70, 40), quick ? 8 : 32);
    print(r);
    rows.push(r);
    tiny.dispose();
  }
  if (!quick) {
    // 224×224 in one crop: 16 × 16 = 256 patches into the 12-layer vision tower.
    const mediumImages = new Idefics2ImageProcessor({
      size: { shortest_edge: 224, longest_edge: 224 },
      do_image_splitting: false,
    });
    for (const dtype of dtypes) {
      const medium = await mediumModel(dtype);
      const processor = new Idefics2InputProcessor(medium, {
        tokenizer: new FixtureCharTokenizer(TOKEN_IDS(32001, 32000, 32002)),
        imageProcessor: mediumImages,
      });
      const r = await measure("medium", medium, processor, syntheticImage(224, 224), 16);
      print(r);
      rows.push(r);
      medium.dispose();
    }
  }
  const out = {
    date: new Date().toISOString(),
    device: {
      description: device.info.description,
      vendor: device.info.vendor,
      isSoftware: device.info.isSoftware,
      hasF16: device.hasF16,
    },
    bandwidthGBs: BANDWIDTH_GBS,
    // Other processes on a shared machine slow lavapipe down: record how busy it was.
    host: { cpus: cpus().length, loadAverage1m: loadavg()[0] },
    quick,
    notes:
      "TTFT = processor output → first token (vision + connector + prefill + logits readback), after one warm-up run. " +
      "bytesPerToken = decoder and lm_head weights + one embedding row + the KV cache at mid-decode, in the weights' dtype.",
    rows,
  };
  if (!quick) await writeFile(RESULTS, `${JSON.stringify(out, null, 2)}\n`);
  console.log(quick ? "(--quick: results.json not written)" : `wrote ${RESULTS}`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
