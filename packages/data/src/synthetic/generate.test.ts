import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, describe, expect, it } from "vitest";
import { shardStream } from "../datasets/shard-stream.js";
import { parquetSource } from "../datasets/sources/parquet.js";
import { take } from "../datasets/stream.js";
import type { ConversationSample } from "../datasets/types.js";
import { ADVANCE_X, FONT, GLYPH_HEIGHT, GLYPH_WIDTH } from "./font.js";
import {
  COLOURS,
  encodePng,
  generateSynthetic,
  POSITIONS,
  type SyntheticExample,
  syntheticExample,
  writeSyntheticCauldron,
} from "./generate.js";
import { Canvas, textSize } from "./raster.js";

const dir = mkdtempSync(join(tmpdir(), "webvlm-synthetic-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("font and raster", () => {
  it("every glyph fits 5x7 and distinct characters look different", () => {
    const seen = new Set<string>();
    for (const [ch, rows] of FONT) {
      expect(rows).toHaveLength(GLYPH_HEIGHT);
      for (const r of rows) expect(r).toBeLessThan(1 << GLYPH_WIDTH);
      const key = rows.join(",");
      expect(seen.has(key), `glyph '${ch}' duplicates another`).toBe(false);
      seen.add(key);
    }
    expect(FONT.size).toBe(44);
  });

  it("draws text pixel-exactly from the bitmaps at any scale", () => {
    const c = new Canvas(40, 20);
    c.drawText("A1", 2, 3, 2, [0, 0, 0]);
    const a = FONT.get("A") as readonly number[];
    const one = FONT.get("1") as readonly number[];
    for (let y = 0; y < 20; y++) {
      for (let x = 0; x < 40; x++) {
        const gx = Math.floor((x - 2) / 2);
        const gy = Math.floor((y - 3) / 2);
        let on = false;
        if (gy >= 0 && gy < 7 && gx >= 0 && gx < 5) on = ((a[gy] >> (4 - gx)) & 1) === 1;
        if (gy >= 0 && gy < 7 && gx >= ADVANCE_X && gx < ADVANCE_X + 5)
          on = ((one[gy] >> (4 - (gx - ADVANCE_X))) & 1) === 1;
        expect(c.pixel(x, y), `(${x}, ${y})`).toEqual(on ? [0, 0, 0] : [255, 255, 255]);
      }
    }
    expect(textSize("A1", 2)).toEqual({ width: 22, height: 14 });
    expect(() => c.drawText("é", 0, 0, 1, [0, 0, 0])).toThrow(/no glyph for 'É'/);
  });

  it("a circle is symmetric and has the expected area", () => {
    const c = new Canvas(40, 40);
    c.fillCircle(20, 20, 10, [255, 0, 0]);
    let area = 0;
    for (let y = 0; y < 40; y++) {
      for (let x = 0; x < 40; x++) {
        const on = c.pixel(x, y)[1] === 0;
        if (on) area++;
        expect(on).toBe(c.pixel(39 - x, y)[1] === 0);
        expect(on).toBe(c.pixel(y, x)[1] === 0);
      }
    }
    expect(Math.abs(area - Math.PI * 100)).toBeLessThan(12);
  });
});

describe("synthetic examples", () => {
  it("are a pure function of (seed, index)", () => {
    // Hash the pixels: deep-comparing typed arrays element by element is slow.
    const digest = (e: SyntheticExample) => ({
      ...e,
      pixels: createHash("sha256").update(e.pixels).digest("hex"),
    });
    const a = generateSynthetic({ seed: 5, count: 30 }).map(digest);
    const b = generateSynthetic({ seed: 5, count: 10, start: 20 }).map(digest);
    expect(b).toEqual(a.slice(20));
    expect(digest(syntheticExample({ seed: 6 }, 3))).not.toEqual(a[3]);
    expect(new Set(a.map((e) => e.task))).toEqual(new Set(["shape", "colour", "count", "position", "text"]));
  });

  it("answers match the drawn pixels", () => {
    for (const ex of generateSynthetic({ seed: 9, count: 80 })) {
      const at = (x: number, y: number) =>
        Array.from(ex.pixels.subarray((y * ex.width + x) * 3, (y * ex.width + x) * 3 + 3));
      const { user, assistant } = ex.turns[0];
      for (const o of ex.objects) expect(at(o.cx, o.cy)).toEqual([...COLOURS[o.colour]]);
      if (ex.task === "shape") expect(assistant).toBe(ex.objects[0].shape);
      if (ex.task === "colour") expect(assistant).toBe(ex.objects[0].colour);
      if (ex.task === "position") {
        const cell = Math.floor(ex.width / 3);
        const o = ex.objects[0];
        expect(assistant).toBe(POSITIONS[Math.floor(o.cy / cell) * 3 + Math.floor(o.cx / cell)]);
      }
      if (ex.task === "count") {
        const m = /How many (\w+?)s are/.exec(user);
        const n =
          m?.[1] === "shape" ? ex.objects.length : ex.objects.filter((o) => o.shape === m?.[1]).length;
        expect(assistant).toBe(String(n));
        // Shapes sit in distinct grid cells, so none overlaps another.
        const cells = ex.objects.map((o) => Math.floor(o.cy / 32) * 3 + Math.floor(o.cx / 32));
        expect(new Set(cells).size).toBe(cells.length);
      }
      if (ex.task === "text") {
        expect(assistant).toBe(ex.text?.text);
        expect(ex.text?.lines.join(" ")).toBe(assistant);
        // Redrawing the lines on a blank canvas gives the image: the text is the only ink.
        const t = ex.text as NonNullable<SyntheticExample["text"]>;
        const c = new Canvas(ex.width, ex.height);
        c.drawText(t.lines.join("\n"), t.x, t.y, t.scale, COLOURS[t.colour]);
        expect(Buffer.from(c.data).equals(Buffer.from(ex.pixels))).toBe(true);
        const block = textSize(t.lines.join("\n"), t.scale);
        expect(t.x + block.width).toBeLessThanOrEqual(ex.width);
        expect(t.y + block.height).toBeLessThanOrEqual(ex.height);
      }
    }
  });

  it("reading examples come at several font scales and lengths", () => {
    const texts = generateSynthetic({ seed: 2, count: 120, tasks: ["text"] });
    expect(new Set(texts.map((t) => t.text?.scale))).toEqual(new Set([1, 2, 3]));
    const lengths = texts.map((t) => t.turns[0].assistant.split(" ").length);
    expect(Math.min(...lengths)).toBe(1);
    expect(Math.max(...lengths)).toBeGreaterThanOrEqual(5);
  });

  it("PNG encoding is lossless and repeatable", async () => {
    const ex = syntheticExample({ seed: 1 }, 0);
    const png = await encodePng(ex.pixels, ex.width, ex.height);
    expect(Buffer.from(await encodePng(ex.pixels, ex.width, ex.height))).toEqual(Buffer.from(png));
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([ex.width, ex.height, 3]);
    expect(Buffer.from(data).equals(Buffer.from(ex.pixels))).toBe(true);
  });
});

describe("synthetic Cauldron parquet", () => {
  it("round-trips through the parquet reader: same images, same turns", async () => {
    const opts = { seed: 3, perShard: 13, shards: 2, rowGroupSize: 5 };
    const files = await writeSyntheticCauldron({ dir: join(dir, "a"), ...opts });
    expect(files.map((f) => f.slice(-22))).toEqual(
      ["synthetic-00000.parquet", "synthetic-00001.parquet"].map((f) => f.slice(-22)),
    );
    const samples = (await take(
      shardStream(parquetSource(files, { name: "syn" }), { shuffleShards: false }),
    )) as ConversationSample[];
    const expected = generateSynthetic({ seed: 3, count: 26 });
    expect(samples).toHaveLength(26);
    for (let i = 0; i < 26; i++) {
      const s = samples[i];
      expect(s.kind).toBe("conversation");
      expect(s.id).toBe(`syn/synthetic-0000${Math.floor(i / 13)}.parquet#${i % 13}`);
      expect(s.turns).toEqual(expected[i].turns);
      expect(s.images).toHaveLength(1);
      expect(s.images[0].path).toBe(`${expected[i].id}.png`);
      const { data } = await sharp(s.images[0].bytes).raw().toBuffer({ resolveWithObject: true });
      expect(Buffer.from(data).equals(Buffer.from(expected[i].pixels)), `pixels of example ${i}`).toBe(true);
    }
    // Same seed, same files, byte for byte.
    const again = await writeSyntheticCauldron({ dir: join(dir, "b"), ...opts });
    expect(readFileSync(again[1]).equals(readFileSync(files[1]))).toBe(true);
  });
});
