// What an Idefics2 speed measurement needs, shared by `bench/run.ts` (this machine) and
// tools/gpu/bench-idefics2.ts (the lent GPU machine, bundled by tools/gpu/build-app.mjs): the medium
// config, synthetic images, seeded random weights, the vision / TTFT / decode timing, the bytes one
// decoded token must read and the memory bandwidth it is held against.
//
// Paths stay with the callers: bundled, `import.meta.url` is the bundle's, not this file's.
import { paperConnectors } from "@webvlm/connectors";
import { Idefics2ImageProcessor, type RgbImage } from "@webvlm/data";
import { currentDevice, type DeviceInfo, type DType, f32ArrayToF16, noGrad, Tensor } from "@webvlm/tensor";
import { Rng } from "@webvlm/tensor/testing";
import {
  createIdefics2,
  FixtureCharTokenizer,
  type Idefics2ForConditionalGeneration,
  Idefics2InputProcessor,
  inputsFromBatch,
  parseIdefics2Config,
} from "../src/index.js";

/** A medium Idefics2: 12-layer SigLIP (hidden 768) + perceiver + 12-layer Mistral (hidden 768). */
export const MEDIUM_CONFIG = {
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

/** Added-token ids: [image, fake_token_around_image, end_of_utterance]. */
export type SpecialIds = [image: number, fake: number, endOfUtterance: number];
/** The tiny fixture's added tokens (fixtures/idefics2-tiny). */
export const TINY_IDS: SpecialIds = [998, 997, 999];
/** MEDIUM_CONFIG's: the three ids after Mistral's 32000. */
export const MEDIUM_IDS: SpecialIds = [32001, 32000, 32002];
/** The factory both benches build with: the paper's connectors. */
export const idefics2 = createIdefics2({ connectors: paperConnectors });

/** A model from a config.json-shaped object, with {@link fillRandomWeights} in `dtype`. */
export async function randomModel(
  raw: unknown,
  dtype: DType,
  label: string,
): Promise<Idefics2ForConditionalGeneration> {
  const model = idefics2.create(parseIdefics2Config(raw, `${label} config`));
  try {
    await fillRandomWeights(model, dtype);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/** A processor with the fixture's character tokenizer: random-weight models need no real vocabulary. */
export function charProcessor(
  model: Idefics2ForConditionalGeneration,
  imageProcessor: Idefics2ImageProcessor,
  [image, fake, eou]: SpecialIds,
): Idefics2InputProcessor {
  const tokenizer = new FixtureCharTokenizer({
    pad_token_id: 0,
    bos_token_id: 1,
    eos_token_id: 2,
    fake_token_around_image: fake,
    image,
    end_of_utterance: eou,
    char_token_rule:
      "printable ASCII character c -> 3 + (ord(c) - 32); BOS prepended; left padding with pad_token_id",
  });
  return new Idefics2InputProcessor(model, { tokenizer, imageProcessor });
}

/** One crop of `px`×`px` at most, no splitting (medium: 224 px = 16 × 16 = 256 patches). */
export function singleCropImages(px: number, shortest = px): Idefics2ImageProcessor {
  return new Idefics2ImageProcessor({
    size: { shortest_edge: shortest, longest_edge: px },
    do_image_splitting: false,
  });
}

/** A deterministic RGB test image: two gradients and a checker pattern, so no crop is flat. */
export function syntheticImage(width: number, height: number): RgbImage {
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

const BLOCK = 1 << 22; // elements in the repeated random block (8 MiB in f16)
const blocks = new Map<DType, Uint16Array | Float32Array>();
function randomBlock(dtype: DType): Uint16Array | Float32Array {
  let b = blocks.get(dtype);
  if (!b) {
    const f32 = new Rng(1).normal(BLOCK, 0.02);
    b = dtype === "f16" ? f32ArrayToF16(f32) : f32;
    blocks.set(dtype, b);
  }
  return b;
}

/**
 * Every parameter on the current device in `dtype`, frozen: norm weights 1, biases and gates 0, the
 * rest one seeded normal(0, 0.02) block repeated over the matrix. Decode speed does not depend on the
 * values, and 17 GB (Idefics2-8B) of Box-Muller in JavaScript would take minutes. Syncs every ~1 GB
 * to bound staging memory.
 */
export async function fillRandomWeights(
  model: Idefics2ForConditionalGeneration,
  dtype: DType,
): Promise<void> {
  const device = currentDevice();
  const bpe = dtype === "f16" ? 2 : 4;
  const block = randomBlock(dtype);
  const one = dtype === "f16" ? 0x3c00 : 1;
  let since = 0;
  for (const [name, p] of model.namedParameters()) {
    const n = p.shape.reduce((a, d) => a * d, 1);
    const t = Tensor.empty(p.shape, { dtype });
    const leaf = name.split(".").slice(-2).join(".");
    const constant = /norm\.weight$/.test(leaf)
      ? one
      : /(^|\.)bias$/.test(leaf) || /_gate$/.test(leaf)
        ? 0
        : null;
    const src =
      constant === null
        ? block
        : (dtype === "f16" ? new Uint16Array(Math.min(n, BLOCK)) : new Float32Array(Math.min(n, BLOCK))).fill(
            constant,
          );
    for (let off = 0; off < n; off += src.length) {
      const len = Math.min(src.length, n - off);
      device.write(t.storage.buffer, off * bpe, src.subarray(0, len));
    }
    p.trainable = false;
    p.set(t);
    since += n * bpe;
    if (since > 1 << 30) {
      await device.sync();
      since = 0;
    }
  }
  await device.sync();
}

/**
 * Peak memory bandwidth of the adapter's card, GB/s: H100 SXM 3350 (HBM3), H100 PCIe 2000, H200
 * 4800 (HBM3e); 30 for a software adapter (lavapipe's measured copy bandwidth on the dev machine,
 * shared/TOOLCHAIN.md); 1000 for any other GPU, a placeholder to override.
 */
export function defaultBandwidthGBs(
  info: Pick<DeviceInfo, "description" | "architecture" | "isSoftware">,
): number {
  const d = `${info.description} ${info.architecture}`;
  if (/H200/i.test(d)) return 4800;
  if (/H100.*PCIe/i.test(d)) return 2000;
  if (/H100/i.test(d)) return 3350;
  return info.isSoftware ? 30 : 1000;
}

export interface Measurement {
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

/** Parameters whose name starts with `prefix`. */
export function countParams(model: Idefics2ForConditionalGeneration, prefix: string): number {
  return model
    .namedParameters()
    .filter(([n]) => n.startsWith(prefix))
    .reduce((s, [, p]) => s + p.shape.reduce((a, d) => a * d, 1), 0);
}

/** Bytes one decode step must read at context length `ctx`: decoder + lm_head weights, one embedding row, the KV cache. */
export function decodeBytes(model: Idefics2ForConditionalGeneration, ctx: number): number {
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

export const PROMPT = "User:<image>Describe this image in detail.<end_of_utterance>\nAssistant:";

/**
 * Times one model on one image after a warm-up generate (every pipeline compiled): vision +
 * connector alone, then a `newTokens` generate for TTFT and the decode rate, held against
 * `bandwidthGBs` with the bytes of a step at mid-decode.
 */
export async function measure(
  name: string,
  model: Idefics2ForConditionalGeneration,
  processor: Idefics2InputProcessor,
  image: RgbImage,
  newTokens: number,
  bandwidthGBs: number,
): Promise<Measurement> {
  const device = currentDevice();
  const batch = await processor.process([PROMPT], { images: [[image]] });
  const inputs = inputsFromBatch(batch);
  const T = batch.shape[1];
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
  const perToken = (times[times.length - 1]! - times[0]!) / 1000 / (times.length - 1);
  const bytes = decodeBytes(model, T + Math.floor(newTokens / 2));
  const [, , , H, W] = batch.pixelShape!;
  const patch = model.config.vision_config.patch_size;
  return {
    model: name,
    dtype: model.dtype,
    params: {
      vision: countParams(model, "model.vision_model."),
      connector: countParams(model, "model.connector."),
      text: countParams(model, "model.text_model.") + countParams(model, "lm_head."),
    },
    promptTokens: T,
    imagePatches: Math.floor(H / patch) * Math.floor(W / patch),
    visionConnectorS,
    timeToFirstTokenS: (times[0]! - t0) / 1000,
    decodeTokens: times.length,
    decodeTokensPerS: 1 / perToken,
    bytesPerToken: bytes,
    achievedGBs: bytes / perToken / 1e9,
    floorMsPerToken: (bytes / (bandwidthGBs * 1e9)) * 1000,
    msPerToken: perToken * 1000,
    fractionOfBandwidth: bytes / perToken / 1e9 / bandwidthGBs,
  };
}

/** One line per measurement; `initS` and `image` when the caller recorded them. */
export function formatMeasurement(
  r: Measurement & { initS?: number; image?: string },
  bandwidthGBs: number,
): string {
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  const init = r.initS === undefined ? "" : ` init ${r.initS.toFixed(1)} s |`;
  const image = r.image === undefined ? "" : ` ${r.image} image,`;
  return (
    `${r.model.padEnd(7)} ${r.dtype} ${init}${image} prompt ${String(r.promptTokens).padStart(3)} tok, ${String(r.imagePatches).padStart(3)} patches | ` +
    `vision+connector ${(r.visionConnectorS * 1000).toFixed(0).padStart(5)} ms, TTFT ${(r.timeToFirstTokenS * 1000).toFixed(0).padStart(5)} ms | ` +
    `decode ${r.decodeTokensPerS.toFixed(1).padStart(6)} tok/s (${r.msPerToken.toFixed(2)} ms/tok) | ` +
    `${mb(r.bytesPerToken)}/tok → ${r.achievedGBs.toFixed(2)} GB/s = ${(r.fractionOfBandwidth * 100).toFixed(1)}% of ${bandwidthGBs} GB/s ` +
    `(floor ${r.floorMsPerToken.toFixed(2)} ms/tok)`
  );
}
