// Step 3 on the GPU machine: packages/idefics2/bench/measure.ts, the measurements of
// packages/idefics2/bench/run.ts (vision + connector time, time to first token, decode tokens/s
// against the memory-bandwidth floor), under a deadline with JSON rewritten per row, for the tiny
// fixture model and the medium random model, plus, with --8b, Idefics2-8B's real shapes
// (SigLIP-SO400M at 980 px, perceiver, Mistral-7B; ~8.4 B parameters, ~17 GB in f16) with random weights.
//
//   node .gpu-carry/app/bench-idefics2.mjs --json=$OUT/idefics2.json --deadline=EPOCH_MS
//        [--quick] [--medium] [--8b [--px=980] [--layers=N] [--vocab=N]] [--bandwidth=GB/s] [--tokens=N]
//
// Random weights: measure.ts's fillRandomWeights (one seeded normal(0, 0.02) block repeated over
// every matrix, norm weights 1, biases 0). The tiny model loads the real fixture weights.
import { fileURLToPath } from "node:url";
import { Idefics2ImageProcessor, type RgbImage } from "../../packages/data/src/index.js";
import {
  charProcessor,
  defaultBandwidthGBs,
  formatMeasurement,
  idefics2,
  MEDIUM_CONFIG,
  MEDIUM_IDS,
  type Measurement,
  measure,
  randomModel,
  type SpecialIds,
  singleCropImages,
  syntheticImage,
  TINY_IDS,
} from "../../packages/idefics2/bench/measure.js";
import { IDEFICS2_8B_CONFIG } from "../../packages/idefics2/src/test-configs.js";
import type { DType } from "../../packages/tensor/src/index.js";
import { benchDevice, describe, errorText, parseArgs, Results, runTorch, secondsLeft } from "./lib.js";

const args = parseArgs(process.argv.slice(2), "idefics2.json");
const quick = args.quick;
// Two levels below the repo root both as tools/gpu/*.ts and as .gpu-carry/app/*.mjs.
const FIXTURE = fileURLToPath(new URL("../../fixtures/idefics2-tiny/", import.meta.url));

const device = await benchDevice();
const BANDWIDTH_GBS = Number(
  args.get("bandwidth", process.env.WEBVLM_BANDWIDTH_GBS ?? String(defaultBandwidthGBs(device.info))),
);

/** measure()'s row plus what a GPU run also wants: the model's init time, the image, device memory. */
interface Row extends Measurement {
  initS: number;
  image: string;
  deviceLiveGiB: number;
}

/** measure() with the GPU run's extra columns. */
async function measureRow(
  name: string,
  model: Parameters<typeof measure>[1],
  processor: Parameters<typeof measure>[2],
  image: RgbImage,
  newTokens: number,
  initS: number,
): Promise<Row> {
  const m = await measure(name, model, processor, image, newTokens, BANDWIDTH_GBS);
  return {
    ...m,
    initS,
    image: `${image.width}x${image.height}`,
    deviceLiveGiB: device.memory().liveBytes / 2 ** 30,
  };
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
  ids: SpecialIds,
): Promise<Row> {
  const t0 = performance.now();
  let model: Awaited<ReturnType<typeof randomModel>> | undefined;
  try {
    model = await randomModel(raw, dtype, name);
    const initS = (performance.now() - t0) / 1000;
    const processor = charProcessor(model, images, ids);
    const failures: string[] = [];
    for (const image of candidates) {
      try {
        return await measureRow(name, model, processor, image, tokens, initS);
      } catch (err) {
        failures.push(`${image.width}x${image.height}: ${errorText(err)}`);
        if (candidates.length > 1)
          out.note(`${name} ${dtype} at ${image.width}x${image.height}: ${errorText(err)}`);
        device.trimPool();
      }
    }
    throw new Error(failures.join(" / "));
  } finally {
    model?.dispose();
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
      const tiny = await idefics2.load(FIXTURE, { dtype });
      const initS = (performance.now() - t0) / 1000;
      try {
        const processor = charProcessor(tiny, tinyImages, TINY_IDS);
        return await measureRow("tiny", tiny, processor, syntheticImage(70, 40), tokens, initS);
      } finally {
        tiny.dispose();
      }
    },
  });
}
if (args.has("8b")) {
  // One 980×980 crop (no splitting): 70 × 70 = 4900 patches into SigLIP-SO400M, 64 latents out of the perceiver.
  const px = Number(args.get("px", "980"));
  const images = singleCropImages(980, 378);
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
  const images = singleCropImages(224);
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
          MEDIUM_IDS,
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
    else console.log(formatMeasurement(r, BANDWIDTH_GBS));
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
