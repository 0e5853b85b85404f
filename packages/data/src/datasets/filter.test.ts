import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { badSampleReport } from "./bad-samples.js";
import { filterStream, imageSizeFilter } from "./filter.js";
import { imageSize } from "./image-size.js";
import { shardStream } from "./shard-stream.js";
import { memorySource } from "./sources/memory.js";
import { take } from "./stream.js";
import type { Sample } from "./types.js";

const encode = (
  w: number,
  h: number,
  format: "png" | "jpeg" | "webp" | "gif",
  options: Record<string, unknown> = {},
) =>
  sharp({ create: { width: w, height: h, channels: 3, background: { r: 200, g: 10, b: 10 } } })
    .toFormat(format, options)
    .toBuffer()
    .then((b) => new Uint8Array(b));

describe("imageSize", () => {
  it("reads width and height from PNG, JPEG (baseline and progressive), WebP (lossy, lossless) and GIF headers", async () => {
    const cases: [Uint8Array, string][] = [
      [await encode(37, 21, "png"), "png"],
      [await encode(37, 21, "jpeg"), "jpeg"],
      [await encode(37, 21, "jpeg", { progressive: true }), "jpeg"],
      [await encode(37, 21, "webp"), "webp"],
      [await encode(37, 21, "webp", { lossless: true }), "webp"],
      [await encode(37, 21, "gif"), "gif"],
    ];
    for (const [bytes, format] of cases) expect(imageSize(bytes)).toEqual({ width: 37, height: 21, format });
    expect(imageSize(new Uint8Array([1, 2, 3, 4]))).toBeNull();
    expect(imageSize((await encode(37, 21, "png")).subarray(0, 10))).toBeNull();
  });
});

describe("imageSizeFilter", () => {
  it("drops samples with too small, too large or unreadable images, naming record, image and size", async () => {
    const ok = await encode(64, 48, "png");
    const tiny = await encode(8, 40, "jpeg");
    const huge = await encode(300, 20, "webp");
    const samples: Sample[] = [
      { kind: "conversation", id: "a", images: [{ bytes: ok, path: null }], turns: [] },
      {
        kind: "conversation",
        id: "b",
        images: [
          { bytes: ok, path: null },
          { bytes: tiny, path: null },
        ],
        turns: [],
      },
      {
        kind: "interleaved",
        id: "c",
        segments: [
          { type: "text", text: "x" },
          { type: "image", image: { bytes: huge, path: null } },
        ],
      },
      {
        kind: "interleaved",
        id: "d",
        segments: [{ type: "image", image: { bytes: new Uint8Array([0, 1, 2]), path: null } }],
      },
      { kind: "interleaved", id: "e", segments: [{ type: "text", text: "no images at all" }] },
    ];
    const s = filterStream(
      shardStream(memorySource("m", [samples])),
      imageSizeFilter({ minSide: 16, maxSide: 256 }),
    );
    expect((await take(s)).map((x) => x.id)).toEqual(["a", "e"]);
    const report = badSampleReport(s.state());
    expect(report.byReason).toEqual({ "image-too-small": 1, "image-too-large": 1, "unreadable-image": 1 });
    expect(report.examples.map((e) => [e.id, e.stage, e.detail])).toEqual([
      ["b", "filter", "image 1 is 8x40, a side under minSide 16"],
      ["c", "filter", "image 0 is 300x20, a side over maxSide 256"],
      ["d", "filter", "image 0 (3 bytes, starting 00 01 02) is not a PNG, JPEG, GIF, WebP or BMP"],
    ]);
  });

  it("state passes through: a restored filter continues exactly", async () => {
    const items = Array.from({ length: 30 }, (_, i) => ({ id: `i${i}`, v: i }));
    const make = () =>
      filterStream(shardStream(memorySource("m", [items]), { seed: 1, shuffleBuffer: 7 }), (x) =>
        x.v % 4 === 0 ? { reason: "div4", detail: "" } : null,
      );
    const full = (await take(make())).map((x) => x.id);
    const s = make();
    const head = (await take(s, 9)).map((x) => x.id);
    const r = make();
    r.restore(JSON.parse(JSON.stringify(s.state())));
    expect([...head, ...(await take(r)).map((x) => x.id)]).toEqual(full);
    expect(badSampleReport(r.state()).byReason).toEqual({ div4: 8 });
  });
});
