// Step 3 on the GPU machine: packages/idefics2/bench/run.ts's measurements (vision + connector
// time, time to first token, decode tokens/s against the memory-bandwidth floor) for the tiny
// fixture model and the medium random model, plus, with --8b, Idefics2-8B's real shapes
// (SigLIP-SO400M at 980 px, perceiver, Mistral-7B; ~8.4 B parameters, ~17 GB in f16) with random weights.
//
//   node .gpu-carry/app/bench-idefics2.mjs --json=$OUT/idefics2.json --deadline=EPOCH_MS
//        [--quick] [--medium] [--8b [--px=980] [--layers=N] [--vocab=N]] [--bandwidth=GB/s] [--tokens=N]
//
// Random weights are written as one seeded normal(0, 0.02) block repeated over every matrix (norm
// weights 1, biases 0): decode speed does not depend on the values, and 17 GB of Box-Muller in
// JavaScript would take minutes. The tiny model loads the real fixture weights.
import { fileURLToPath } from "node:url";
import { paperConnectors } from "../../packages/connectors/src/index.js";
import { Idefics2ImageProcessor, type RgbImage } from "../../packages/data/src/index.js";
import {
  createIdefics2,
  FixtureCharTokenizer,
  type Idefics2ForConditionalGeneration,
  Idefics2InputProcessor,
  inputsFromBatch,
  parseIdefics2Config,
} from "../../packages/idefics2/src/index.js";
import { IDEFICS2_8B_CONFIG } from "../../packages/idefics2/src/test-configs.js";
import { type DType, f32ArrayToF16, noGrad, Tensor } from "../../packages/tensor/src/index.js";
import { Rng } from "../../packages/tensor/src/testing.js";
import { benchDevice, describe, errorText, parseArgs, Results, runTorch, secondsLeft } from "./lib.js";

const args = parseArgs(process.argv.slice(2), "idefics2.json");
const quick = args.quick;
// Two levels below the repo root both as tools/gpu/*.ts and as .gpu-carry/app/*.mjs.
const FIXTURE = fileURLToPath(new URL("../../fixtures/idefics2-tiny/", import.meta.url));
const factory = createIdefics2({ connectors: paperConnectors });

const device = await benchDevice();
/** Peak memory bandwidth of the card, GB/s: H100 SXM 3350 (HBM3), H200 4800 (HBM3e), lavapipe here ~30. */
function defaultBandwidth(): number {
  const d = `${device.info.description} ${device.info.architecture}`;
  if (/H200/i.test(d)) return 4800;
  if (/H100.*PCIe/i.test(d)) return 2000;
  if (/H100/i.test(d)) return 3350;
  return device.info.isSoftware ? 30 : 1000;
}
const BANDWIDTH_GBS = Number(
  args.get("bandwidth", process.env.WEBVLM_BANDWIDTH_GBS ?? String(defaultBandwidth())),
);

/** The medium model of packages/idefics2/bench/run.ts: 12-layer SigLIP (768) + perceiver + 12-layer Mistral (768). */
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

/** Every parameter on the device in `dtype`, filled as the comment at the top says; syncs every ~1 GB to bound staging memory. */
async function fastInit(model: Idefics2ForConditionalGeneration, dtype: DType): Promise<void> {
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

interface Row {
  model: string;
  dtype: DType;
  params: { vision: number; connector: number; text: number };
  initS: number;
  image: string;
  promptTokens: number;
  imagePatches: number;
  visionConnectorS: number;
  timeToFirstTokenS: number;
  decodeTokens: number;
  decodeTokensPerS: number;
  msPerToken: number;
  bytesPerToken: number;
  achievedGBs: number;
  floorMsPerToken: number;
  fractionOfBandwidth: number;
  deviceLiveGiB: number;
}

function count(model: Idefics2ForConditionalGeneration, prefix: string): number {
  return model
    .namedParameters()
    .filter(([n]) => n.startsWith(prefix))
    .reduce((s, [, p]) => s + p.shape.reduce((a, d) => a * d, 1), 0);
}

/** Bytes one decode step must read: decoder + lm_head weights, one embedding row, the KV cache. */
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
  const kv = t.num_hidden_layers * 2 * t.num_key_value_heads * t.head_dim * ctx * bpe;
  return weights + t.hidden_size * bpe + kv;
}

async function measure(
  name: string,
  model: Idefics2ForConditionalGeneration,
  processor: Idefics2InputProcessor,
  image: RgbImage,
  newTokens: number,
  initS: number,
): Promise<Row> {
  const batch = await processor.process(
    ["User:<image>Describe this image in detail.<end_of_utterance>\nAssistant:"],
    {
      images: [[image]],
    },
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
  const perToken = (times[times.length - 1]! - times[0]!) / 1000 / (times.length - 1);
  const bytes = decodeBytes(model, T + Math.floor(newTokens / 2));
  const [, , , H, W] = batch.pixelShape!;
  const patch = model.config.vision_config.patch_size;
  return {
    model: name,
    dtype: model.dtype,
    params: {
      vision: count(model, "model.vision_model."),
      connector: count(model, "model.connector."),
      text: count(model, "model.text_model.") + count(model, "lm_head."),
    },
    initS,
    image: `${image.width}x${image.height}`,
    promptTokens: T,
    imagePatches: Math.floor(H / patch) * Math.floor(W / patch),
    visionConnectorS,
    timeToFirstTokenS: (times[0]! - t0) / 1000,
    decodeTokens: times.length,
    decodeTokensPerS: 1 / perToken,
    msPerToken: perToken * 1000,
    bytesPerToken: bytes,
    achievedGBs: bytes / perToken / 1e9,
    floorMsPerToken: (bytes / (BANDWIDTH_GBS * 1e9)) * 1000,
    fractionOfBandwidth: bytes / perToken / 1e9 / BANDWIDTH_GBS,
    deviceLiveGiB: device.memory().liveBytes / 2 ** 30,
  };
}

function print(r: Row): void {
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  console.log(
    `${r.model.padEnd(7)} ${r.dtype}  init ${r.initS.toFixed(1)} s | ${r.image} image, prompt ${r.promptTokens} tok, ${r.imagePatches} patches | ` +
      `vision+connector ${(r.visionConnectorS * 1000).toFixed(0)} ms, TTFT ${(r.timeToFirstTokenS * 1000).toFixed(0)} ms | ` +
      `decode ${r.decodeTokensPerS.toFixed(1)} tok/s (${r.msPerToken.toFixed(2)} ms/tok) | ${mb(r.bytesPerToken)}/tok → ` +
      `${r.achievedGBs.toFixed(1)} GB/s = ${(r.fractionOfBandwidth * 100).toFixed(1)}% of ${BANDWIDTH_GBS} GB/s (floor ${r.floorMsPerToken.toFixed(2)} ms/tok)`,
  );
}

const out = new Results<Row | PeerRow | { model: string; dtype: DType; error: string }>(args.json, {
  step: "idefics2",
  quick,
  adapter: describe(device),
  bandwidthGBs: BANDWIDTH_GBS,
  notes_static:
    "TTFT = processor output -> first token (vision + connector + prefill + logits readback), after one warm-up run. " +
    "bytesPerToken = decoder and lm_head weights + one embedding row + the KV cache at mid-decode, in the weights' dtype. " +
    "medium and 8b: random weights (one repeated seeded block); tiny: the fixture's weights.",
});
console.log(
  `device: ${device.info.description || device.info.vendor} (software: ${device.info.isSoftware}, f16: ${device.hasF16}); bandwidth ${BANDWIDTH_GBS} GB/s`,
);

/** The same decode in PyTorch: Hugging Face transformers' Mistral (eager), random f16 weights. */
interface PeerRow {
  model: string;
  dtype: DType;
  impl: string;
  params: number;
  initS: number;
  promptTokens: number;
  decodeTokens: number;
  decodeTokensPerS: number;
  msPerToken: number;
  bytesPerToken: number;
  achievedGBs: number;
  fractionOfBandwidth: number;
  transformers?: string;
}

interface Plan {
  name: string;
  dtype: DType;
  /** Seconds this model needs at least; skipped when fewer are left. */
  needS: number;
  /** null: skipped, with a note saying why. */
  run: () => Promise<Row | PeerRow | null>;
}

/**
 * A random-weight model measured on the first image that works: the 8B run falls back to a smaller
 * image when the 980 px one fails (a binding over the adapter's limit, say) rather than lose the
 * decode number with it; the failure is kept as a note.
 */
async function runRandom(
  name: string,
  raw: unknown,
  dtype: DType,
  images: Idefics2ImageProcessor,
  candidates: RgbImage[],
  tokens: number,
  eou: [number, number, number],
): Promise<Row> {
  const t0 = performance.now();
  const model = factory.create(parseIdefics2Config(raw, `${name} config`));
  try {
    await fastInit(model, dtype);
    const initS = (performance.now() - t0) / 1000;
    const processor = new Idefics2InputProcessor(model, {
      tokenizer: new FixtureCharTokenizer(TOKEN_IDS(...eou)),
      imageProcessor: images,
    });
    const failures: string[] = [];
    for (const image of candidates) {
      try {
        return await measure(name, model, processor, image, tokens, initS);
      } catch (err) {
        failures.push(`${image.width}x${image.height}: ${errorText(err)}`);
        if (candidates.length > 1)
          out.note(`${name} ${dtype} at ${image.width}x${image.height}: ${errorText(err)}`);
        device.trimPool();
      }
    }
    throw new Error(failures.join(" / "));
  } finally {
    model.dispose();
    device.trimPool();
  }
}

const dtypes: DType[] = device.hasF16 ? ["f16", "f32"] : ["f32"];
const tokens = Number(args.get("tokens", quick ? "6" : "32"));
const plans: Plan[] = [];
const tinyImages = await Idefics2ImageProcessor.fromFile(`${FIXTURE}preprocessor_config.json`);
for (const dtype of dtypes) {
  plans.push({
    name: "tiny",
    dtype,
    needS: 10,
    run: async () => {
      const t0 = performance.now();
      const tiny = await factory.load(FIXTURE, { dtype });
      const initS = (performance.now() - t0) / 1000;
      try {
        const processor = new Idefics2InputProcessor(tiny, {
          tokenizer: new FixtureCharTokenizer(TOKEN_IDS(998, 997, 999)),
          imageProcessor: tinyImages,
        });
        return await measure("tiny", tiny, processor, syntheticImage(70, 40), tokens, initS);
      } finally {
        tiny.dispose();
      }
    },
  });
}
if (args.has("8b")) {
  // One 980×980 crop (no splitting): 70 × 70 = 4900 patches into SigLIP-SO400M, 64 latents out of the perceiver.
  const px = Number(args.get("px", "980"));
  const images = new Idefics2ImageProcessor({
    size: { shortest_edge: 378, longest_edge: 980 },
    do_image_splitting: false,
  });
  const dtype: DType = device.hasF16 ? "f16" : "f32";
  // --layers=N keeps the 8B widths with N layers per tower (rehearsals on lavapipe: the code path without 17 GB).
  const layers = args.get("layers", "");
  const raw = structuredClone(IDEFICS2_8B_CONFIG) as unknown as Record<string, Record<string, unknown>>;
  if (layers) {
    raw.text_config!.num_hidden_layers = Number(layers);
    raw.vision_config!.num_hidden_layers = Number(layers);
  }
  // --vocab=N: lavapipe binds at most 128 MiB, below the 8B's [32003, 4096] embedding table.
  const vocab = args.get("vocab", "");
  if (vocab) raw.text_config!.vocab_size = Number(vocab);
  // The three added tokens are the vocabulary's last: image V-2, fake-around-image V-3, end-of-utterance V-1.
  const V = Number(raw.text_config!.vocab_size);
  (raw as Record<string, unknown>).image_token_id = V - 2;
  const name = layers || vocab ? `8b${layers ? `-${layers}L` : ""}${vocab ? `-v${vocab}` : ""}` : "8b";
  plans.push({
    name,
    dtype,
    needS: layers ? 30 : 90,
    run: () =>
      runRandom(
        name,
        raw,
        dtype,
        images,
        [px, px / 2].map((p) => syntheticImage(p, p)),
        tokens,
        [V - 2, V - 3, V - 1],
      ),
  });
}

if (!args.has("no-torch")) {
  // Mistral-7B as Idefics2-8B's decoder (--quick: a 2-layer toy, only to exercise the path).
  const m = quick
    ? { vocab: 1000, hidden: 256, intermediate: 512, layers: 2, heads: 4, kv_heads: 2, prompt: 16 }
    : { vocab: 32003, hidden: 4096, intermediate: 14336, layers: 32, heads: 32, kv_heads: 8, prompt: 140 };
  plans.push({
    name: quick ? "torch-toy" : "torch-mistral-7b",
    dtype: "f16",
    needS: quick ? 20 : 60,
    run: () => torchDecode(m),
  });
}

async function torchDecode(m: Record<string, number>): Promise<PeerRow | null> {
  // The prompt our 8B run used, when it ran: the same KV length.
  const ours = out.rows.find((r) => "promptTokens" in r && r.model.startsWith("8b")) as Row | undefined;
  const prompt = ours?.promptTokens ?? m.prompt!;
  const name = quick ? "torch-toy" : "torch-mistral-7b";
  const res = runTorch(
    [{ op: "decode", shape: name, torch: ["f16"], ...m, prompt, tokens }],
    Math.min(quick ? 60 : 120, secondsLeft(args) - 5),
  );
  for (const n of res.notes) out.note(n);
  const r = res.rows[0] as Record<string, number | string> | undefined;
  if (!r) return null; // no torch / no CUDA here: the notes say so
  if (r.error) throw new Error(`torch decode: ${r.error}`);
  const params = r.params as number;
  const kv = m.layers! * 2 * m.kv_heads! * (m.hidden! / m.heads!) * (prompt + Math.floor(tokens / 2)) * 2;
  // Weights read per token: all but the embedding table (one row of it), in f16.
  const bytes = (params - m.vocab! * m.hidden!) * 2 + m.hidden! * 2 + kv;
  const ms = r.median_ms as number;
  return {
    model: name,
    dtype: "f16",
    impl: `torch ${res.info?.torch ?? "?"} transformers ${r.transformers ?? "?"} (eager)`,
    params,
    initS: r.init_s as number,
    promptTokens: prompt,
    decodeTokens: tokens,
    decodeTokensPerS: 1000 / ms,
    msPerToken: ms,
    bytesPerToken: bytes,
    achievedGBs: bytes / (ms / 1000) / 1e9,
    fractionOfBandwidth: bytes / (ms / 1000) / 1e9 / BANDWIDTH_GBS,
    transformers: r.transformers as string | undefined,
  };
}

function printPeer(r: PeerRow): void {
  console.log(
    `${r.model} ${r.dtype} [${r.impl}] init ${r.initS.toFixed(1)} s | prompt ${r.promptTokens} | decode ${r.decodeTokensPerS.toFixed(1)} tok/s ` +
      `(${r.msPerToken.toFixed(2)} ms/tok) | ${(r.bytesPerToken / 1e6).toFixed(1)} MB/tok → ${r.achievedGBs.toFixed(1)} GB/s = ` +
      `${(r.fractionOfBandwidth * 100).toFixed(1)}% of ${BANDWIDTH_GBS} GB/s`,
  );
}

if (!quick || args.has("medium")) {
  // 224×224 in one crop: 16 × 16 = 256 patches into the 12-layer vision tower.
  const images = new Idefics2ImageProcessor({
    size: { shortest_edge: 224, longest_edge: 224 },
    do_image_splitting: false,
  });
  for (const dtype of dtypes) {
    plans.push({
      name: "medium",
      dtype,
      needS: 25,
      run: () =>
        runRandom(
          "medium",
          MEDIUM_CONFIG,
          dtype,
          images,
          [syntheticImage(224, 224)],
          Math.min(tokens, 16),
          [32001, 32000, 32002],
        ),
    });
  }
}
for (const plan of plans) {
  const left = secondsLeft(args);
  if (left < plan.needS) {
    out.note(
      `deadline: skipped ${plan.name} ${plan.dtype} (${left.toFixed(0)} s left, needs ~${plan.needS})`,
    );
    continue;
  }
  console.log(`-- ${plan.name} ${plan.dtype} (${left.toFixed(0)} s left)`);
  try {
    const r = await plan.run();
    if (!r) continue;
    if ("impl" in r) printPeer(r);
    else print(r);
    out.add(r);
  } catch (err) {
    console.log((err as Error).stack);
    console.log(`${plan.name} ${plan.dtype}: ${errorText(err)}`);
    out.add({ model: plan.name, dtype: plan.dtype, error: errorText(err) });
    device.trimPool();
  }
}
out.save({ done: true });
console.log(`wrote ${args.json}`);
process.exit(0);
