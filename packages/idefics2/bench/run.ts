// `pnpm --filter @webvlm/idefics2 bench [--quick]`: time to first token (vision + connector +
// prefill) and decode speed for the tiny fixture model and a medium random-weight model, in f32 and
// f16, with the bytes each decoded token must read and the distance to the memory-bandwidth floor.
import { writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { Idefics2ImageProcessor } from "@webvlm/data";
import { type DType, getDevice } from "@webvlm/tensor";
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
  singleCropImages,
  syntheticImage,
  TINY_IDS,
} from "./measure.js";

const FIXTURE = fileURLToPath(new URL("../../../fixtures/idefics2-tiny/", import.meta.url));
const RESULTS = fileURLToPath(new URL("./results.json", import.meta.url));
const quick = process.argv.includes("--quick");

async function main(): Promise<void> {
  const device = await getDevice();
  // This machine's lavapipe: its measured copy bandwidth, 30 GB/s (shared/TOOLCHAIN.md); a GPU: its card's peak.
  const bandwidthGBs = Number(process.env.WEBVLM_BANDWIDTH_GBS ?? defaultBandwidthGBs(device.info));
  console.log(
    `device: ${device.info.description || device.info.vendor} (software: ${device.info.isSoftware}, f16: ${device.hasF16})`,
  );
  const dtypes: DType[] = device.hasF16 ? ["f32", "f16"] : ["f32"];
  const rows: Measurement[] = [];
  const tinyImages = await Idefics2ImageProcessor.fromFile(`${FIXTURE}preprocessor_config.json`);
  for (const dtype of dtypes) {
    const tiny = await idefics2.load(FIXTURE, { dtype });
    const processor = charProcessor(tiny, tinyImages, TINY_IDS);
    const r = await measure("tiny", tiny, processor, syntheticImage(70, 40), quick ? 8 : 32, bandwidthGBs);
    console.log(formatMeasurement(r, bandwidthGBs));
    rows.push(r);
    tiny.dispose();
  }
  if (!quick) {
    // 224×224 in one crop: 16 × 16 = 256 patches into the 12-layer vision tower.
    const mediumImages = singleCropImages(224);
    for (const dtype of dtypes) {
      // Seeded random weights: timing does not need trained ones.
      const medium = await randomModel(MEDIUM_CONFIG, dtype, "medium");
      const processor = charProcessor(medium, mediumImages, MEDIUM_IDS);
      const r = await measure("medium", medium, processor, syntheticImage(224, 224), 16, bandwidthGBs);
      console.log(formatMeasurement(r, bandwidthGBs));
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
    bandwidthGBs,
    // Other processes on a shared machine slow lavapipe down: record how busy it was.
    host: { cpus: cpus().length, loadAverage1m: loadavg()[0] },
    quick,
    notes:
      "TTFT = processor output → first token (vision + connector + prefill + logits readback), after one warm-up run. " +
      "bytesPerToken = decoder and lm_head weights + one embedding row + the KV cache at mid-decode, in the weights' dtype. " +
      "medium: random weights (one repeated seeded block); tiny: the fixture's weights.",
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
