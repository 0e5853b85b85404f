import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import type { RgbImage } from "../image/decode.js";
import {
  getResizeOutputImageSize,
  Idefics2ImageProcessor,
  newStageTimes,
  normalizationTable,
  preprocessImages,
  processImages,
  splitImageRegions,
} from "./image-processor.js";
import { IDEFICS2_IMAGE_PROCESSOR_DEFAULTS, parseImageProcessorConfig } from "./image-processor-config.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../../../../fixtures/idefics2-tiny");
const tinyConfig = parseImageProcessorConfig(
  JSON.parse(readFileSync(join(FIXTURES, "preprocessor_config.json"), "utf8")),
);

const solid = (width: number, height: number, v = 128): RgbImage => ({
  width,
  height,
  data: new Uint8Array(width * height * 3).fill(v),
});

describe("getResizeOutputImageSize", () => {
  const size = { shortest_edge: 28, longest_edge: 56 };
  it("reproduces the fixture sizes (height, width)", () => {
    expect(getResizeOutputImageSize(40, 70, size)).toEqual([32, 56]);
    expect(getResizeOutputImageSize(90, 30, size)).toEqual([56, 28]); // 18 clamped up to 28
    expect(getResizeOutputImageSize(47, 64, size)).toEqual([41, 56]);
    expect(getResizeOutputImageSize(56, 56, size)).toEqual([56, 56]);
    expect(getResizeOutputImageSize(48, 60, size)).toEqual([44, 56]); // split crop of img_a5
    expect(getResizeOutputImageSize(97, 120, size)).toEqual([45, 56]);
  });
  it("truncates like Python's int() and never enlarges beyond the clamp", () => {
    expect(getResizeOutputImageSize(735, 980, { shortest_edge: 378, longest_edge: 980 })).toEqual([735, 980]);
    expect(getResizeOutputImageSize(980, 1306, { shortest_edge: 378, longest_edge: 980 })).toEqual([
      735, 980,
    ]);
    expect(getResizeOutputImageSize(3, 1000, { shortest_edge: 378, longest_edge: 980 })).toEqual([378, 980]);
    expect(getResizeOutputImageSize(10, 12, size)).toEqual([28, 28]);
  });
});

describe("splitImageRegions", () => {
  it("gives the right and bottom crops the odd pixel, then the whole image", () => {
    expect(splitImageRegions(5, 3)).toEqual([
      { x: 0, y: 0, width: 2, height: 1 },
      { x: 2, y: 0, width: 3, height: 1 },
      { x: 0, y: 1, width: 2, height: 2 },
      { x: 2, y: 1, width: 3, height: 2 },
      { x: 0, y: 0, width: 5, height: 3 },
    ]);
  });
});

describe("normalizationTable", () => {
  it("rescales in float64, then normalises in float32", () => {
    const lut = normalizationTable(tinyConfig);
    expect(lut[0]).toBe(-1);
    expect(lut[255]).toBe(1);
    const x = Math.fround(77 / 255);
    expect(lut[256 + 77]).toBe(Math.fround(Math.fround(x - 0.5) / 0.5));
    const clip = normalizationTable(IDEFICS2_IMAGE_PROCESSOR_DEFAULTS);
    const m = Math.fround(0.4578275);
    const s = Math.fround(0.26130258);
    expect(clip[256 + 200]).toBe(Math.fround(Math.fround(Math.fround(200 / 255) - m) / s));
  });
});

describe("preprocessImages", () => {
  it("pads bottom/right with zeros and fills missing images with zeros", () => {
    const out = preprocessImages([[solid(70, 40, 255), solid(30, 90, 0)], [solid(56, 56, 255)]], tinyConfig);
    expect(out.shape).toEqual([2, 2, 3, 56, 56]);
    expect(out.imagesPerSample).toEqual([2, 1]);
    const plane = 56 * 56;
    // sample 0 image 0 is 32×56: row 31 real, row 32 padding.
    expect(out.pixelValues[31 * 56]).toBe(1);
    expect(out.pixelValues[32 * 56]).toBe(0);
    expect(out.pixelAttentionMask[31 * 56]).toBe(1);
    expect(out.pixelAttentionMask[32 * 56]).toBe(0);
    // sample 0 image 1 is 56×28 and black: -1 inside, 0 in the padding columns.
    expect(out.pixelValues[3 * plane + 27]).toBe(-1);
    expect(out.pixelValues[3 * plane + 28]).toBe(0);
    // sample 1 image 1 is a padding image.
    const slot = 3 * 6 * plane;
    expect(out.pixelValues.subarray(slot, slot + 3 * plane).every((v) => v === 0)).toBe(true);
    expect(out.pixelAttentionMask.subarray(3 * plane).every((v) => v === 0)).toBe(true);
  });

  it("splits into 5 images per input", () => {
    const times = newStageTimes();
    const out = preprocessImages(
      [[solid(120, 97)]],
      { ...tinyConfig, do_image_splitting: true },
      { times, keepResized: true },
    );
    expect(out.shape).toEqual([1, 5, 3, 45, 56]);
    expect(out.resized![0].map((r) => [r.height, r.width])).toEqual([
      [44, 56],
      [44, 56],
      [45, 56],
      [45, 56],
      [45, 56],
    ]);
    expect(times.resize).toBeGreaterThan(0);
  });

  it("writes into reused buffers exactly what it writes into fresh ones", () => {
    const noisy = (w: number, h: number): RgbImage => ({
      width: w,
      height: h,
      data: new Uint8Array(w * h * 3).map((_, i) => (i * 2654435761) >>> 24),
    });
    const big = preprocessImages([[noisy(56, 56), noisy(56, 56)], [noisy(56, 56)]], tinyConfig);
    const batch = [[noisy(70, 40)], [noisy(30, 90), noisy(64, 47)]];
    const fresh = preprocessImages(batch, tinyConfig);
    const reused = preprocessImages(batch, tinyConfig, {
      buffers: { pixelValues: big.pixelValues, pixelAttentionMask: big.pixelAttentionMask },
    });
    expect(reused.pixelValues.buffer === big.pixelValues.buffer).toBe(true);
    expect(reused.shape).toEqual(fresh.shape);
    expect(reused.pixelValues).toEqual(fresh.pixelValues);
    expect(reused.pixelAttentionMask).toEqual(fresh.pixelAttentionMask);
    // Passing the earlier batch itself: only the cells it set and this batch does not are cleared.
    let prev = preprocessImages([[noisy(56, 56), noisy(56, 56)], [noisy(56, 56)]], tinyConfig);
    for (const next of [
      batch,
      [[noisy(64, 47)], [noisy(70, 40), noisy(30, 90)]],
      [[noisy(56, 56)], []],
      batch,
    ]) {
      const got = preprocessImages(next, tinyConfig, { buffers: prev });
      const want = preprocessImages(next, tinyConfig);
      // The last batch needs more room than the one before it left in its view: fresh memory.
      const fits = want.pixelValues.length <= prev.pixelValues.length;
      expect(got.pixelValues.buffer === prev.pixelValues.buffer).toBe(fits);
      expect(got.shape).toEqual(want.shape);
      expect(got.imageSizes).toEqual(want.imageSizes);
      expect(got.pixelValues).toEqual(want.pixelValues);
      expect(got.pixelAttentionMask).toEqual(want.pixelAttentionMask);
      prev = got;
    }
    // Too small: allocated afresh.
    const small = preprocessImages(batch, tinyConfig, { buffers: { pixelValues: new Float32Array(4) } });
    expect(small.pixelValues).toEqual(fresh.pixelValues);
  });

  it("normalises every pixel through the table whatever the alignment of the source bytes", () => {
    // The fused pass reads whole uint32 words once a row reaches an aligned pixel; images whose
    // data starts 0–3 bytes into its buffer, odd widths and split crops at odd offsets cover
    // the head, word and tail paths. Checked against the plain per-pixel definition.
    const lut = normalizationTable(IDEFICS2_IMAGE_PROCESSOR_DEFAULTS);
    const cfg = { ...IDEFICS2_IMAGE_PROCESSOR_DEFAULTS, size: { shortest_edge: 8, longest_edge: 64 } };
    for (const shift of [0, 1, 2, 3]) {
      for (const [w, h] of [
        [37, 23],
        [64, 40],
        [5, 9],
        [1, 3],
      ]) {
        const n = w * h * 3;
        const data = new Uint8Array(new ArrayBuffer(n + shift), shift, n).map(
          (_, i) => (i * 2654435761 + shift) >>> 24,
        );
        for (const split of [false, true]) {
          if (split && (w < 2 || h < 2)) continue;
          const out = preprocessImages([[{ width: w, height: h, data }]], cfg, {
            doImageSplitting: split,
            keepResized: true,
          });
          const [, , , H, W] = out.shape;
          out.resized![0].forEach((img, k) => {
            for (let c = 0; c < 3; c++) {
              for (let y = 0; y < H; y++) {
                for (let x = 0; x < W; x++) {
                  const got = out.pixelValues[((k * 3 + c) * H + y) * W + x];
                  const want =
                    y < img.height && x < img.width
                      ? lut[c * 256 + img.data[(y * img.width + x) * 3 + c]]
                      : 0;
                  if (got !== want) {
                    expect(got, `shift ${shift} ${w}×${h} split ${split} image ${k} c${c} (${x}, ${y})`).toBe(
                      want,
                    );
                  }
                }
              }
            }
          });
        }
      }
    }
  });

  it("requires one size when do_pad is false", () => {
    const cfg = { ...tinyConfig, do_pad: false };
    expect(preprocessImages([[solid(56, 56)], [solid(56, 56)]], cfg).shape).toEqual([2, 1, 3, 56, 56]);
    expect(() => preprocessImages([[solid(56, 56)], [solid(70, 40)]], cfg)).toThrow(/do_pad is false/);
  });

  it("skips resizing and normalising when the config says so", () => {
    const cfg = { ...tinyConfig, do_resize: false, do_rescale: false, do_normalize: false };
    const out = preprocessImages([[solid(3, 2, 9)]], cfg);
    expect(out.shape).toEqual([1, 1, 3, 2, 3]);
    expect([...out.pixelValues]).toEqual(new Array(18).fill(9));
  });

  it("rejects malformed images", () => {
    expect(() => preprocessImages([[{ width: 4, height: 4, data: new Uint8Array(3) }]], tinyConfig)).toThrow(
      /sample 0 image 0/,
    );
  });
});

describe("processImages (encoded input)", () => {
  it("decodes JPEG bytes and names a broken record", async () => {
    const jpeg = await sharp({ create: { width: 100, height: 60, channels: 3, background: "#ff0000" } })
      .jpeg()
      .toBuffer();
    const times = newStageTimes();
    const out = await processImages([[jpeg]], tinyConfig, { times });
    expect(out.shape).toEqual([1, 1, 3, 33, 56]);
    expect(times.decode).toBeGreaterThan(0);
    await expect(
      processImages([[{ data: jpeg.subarray(0, 50), name: "shard-3/row-12" }]], tinyConfig),
    ).rejects.toThrow(/^shard-3\/row-12: /);
  });
});

describe("worker friendliness", () => {
  it("takes and returns only structured-clonable data", async () => {
    const png = await sharp({ create: { width: 30, height: 20, channels: 4, background: "#10203080" } })
      .png()
      .toBuffer();
    const config = structuredClone(tinyConfig);
    const out = await processImages(structuredClone([[new Uint8Array(png)]]), config, { keepResized: true });
    const copy = structuredClone(out);
    expect(copy.pixelValues).toEqual(out.pixelValues);
    expect(copy.resized![0][0].data).toEqual(out.resized![0][0].data);
    // Image-processor path: alpha 0x80 over white.
    expect(out.resized![0][0].data[0]).toBe(Math.round((0x10 * 0x80 + 255 * (255 - 0x80)) / 255));
  });
});

describe("parseImageProcessorConfig", () => {
  it("fills HF defaults and validates fields", () => {
    expect(parseImageProcessorConfig({})).toEqual(IDEFICS2_IMAGE_PROCESSOR_DEFAULTS);
    expect(parseImageProcessorConfig({ image_mean: 0.5 }).image_mean).toEqual([0.5, 0.5, 0.5]);
    expect(() => parseImageProcessorConfig({ resample: 0 }, "cfg.json")).toThrow(
      /cfg\.json: resample must be/,
    );
    expect(() => parseImageProcessorConfig({ do_pad: "yes" })).toThrow(/do_pad must be a boolean, got "yes"/);
    expect(() => parseImageProcessorConfig({ size: { shortest_edge: 10 } })).toThrow(/size must be/);
    expect(() => parseImageProcessorConfig({ image_std: [1, 0, 1] })).toThrow(/image_std must be non-zero/);
    expect(() => parseImageProcessorConfig([1])).toThrow(/expected a JSON object/);
  });

  it("loads preprocessor_config.json", async () => {
    const ip = await Idefics2ImageProcessor.fromFile(join(FIXTURES, "preprocessor_config_split.json"));
    expect(ip.config.do_image_splitting).toBe(true);
    expect(ip.config.size).toEqual({ shortest_edge: 28, longest_edge: 56 });
    await expect(Idefics2ImageProcessor.fromFile(join(FIXTURES, "missing.json"))).rejects.toThrow(
      /missing\.json: cannot read/,
    );
  });
});
