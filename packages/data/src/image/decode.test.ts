import { deflateSync } from "node:zlib";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { decodeImage, overWhite, toRgb } from "./decode.js";
import { ImageDecodeError, ImageTooLargeError } from "./errors.js";
import { decodeCases, pillowVersion } from "./testdata/pillow-reference.js";

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

// A PNG whose header claims width×height but whose data is a few bytes: the shape of a bomb.
function pngClaiming(width: number, height: number): Uint8Array {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.alloc(16))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

describe(`decodeImage matches Pillow ${pillowVersion} (exif_transpose, then convert / alpha_composite)`, () => {
  for (const c of decodeCases) {
    for (const mode of ["drop", "white"] as const) {
      const expected = c[mode];
      if (!expected) continue;
      it(`${c.name}, alpha ${mode}`, async () => {
        const img = await decodeImage(c.file, { alpha: mode, name: c.name });
        expect([img.width, img.height]).toEqual([expected.width, expected.height]);
        const i = firstDiff(img.data, expected.data);
        expect(i, `byte ${i}: got ${img.data[i]}, Pillow ${expected.data[i]}`).toBe(-1);
      });
    }
  }
});

describe("decodeImage refuses bad input, naming it", () => {
  it("refuses a decompression bomb before decoding", async () => {
    const bomb = pngClaiming(60000, 60000);
    await expect(decodeImage({ data: bomb, name: "record 17" })).rejects.toThrow(
      /^record 17: .*pixel limit|^record 17: .*over the limit/,
    );
    await expect(decodeImage(bomb)).rejects.toBeInstanceOf(ImageDecodeError);
  });

  it("applies a configurable pixel limit", async () => {
    const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: "#123456" } })
      .png()
      .toBuffer();
    await expect(decodeImage(png, { maxPixels: 1199, name: "small.png" })).rejects.toBeInstanceOf(
      ImageTooLargeError,
    );
    await expect(decodeImage(png, { maxPixels: 1199, name: "small.png" })).rejects.toThrow(
      /small\.png: image is 40×30 = 1200 pixels/,
    );
    const ok = await decodeImage(png, { maxPixels: 1200 });
    expect([ok.width, ok.height, ok.data[0], ok.data[1], ok.data[2]]).toEqual([40, 30, 0x12, 0x34, 0x56]);
    await expect(decodeImage(png, { maxPixels: 0 })).rejects.toThrow(/maxPixels/);
  });

  it("refuses truncated, garbage and unsupported files", async () => {
    const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: "#808080" } })
      .jpeg()
      .toBuffer();
    await expect(decodeImage({ data: jpeg.subarray(0, jpeg.length >> 1), name: "cut.jpg" })).rejects.toThrow(
      /^cut\.jpg: cannot decode/,
    );
    await expect(decodeImage({ data: new Uint8Array(100).fill(7), name: "noise.bin" })).rejects.toThrow(
      /^noise\.bin: /,
    );
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');
    await expect(decodeImage({ data: svg, name: "x.svg" })).rejects.toThrow(
      /x\.svg: unsupported image format svg/,
    );
    await expect(decodeImage("/nonexistent/a.png")).rejects.toThrow(/^\/nonexistent\/a\.png: /);
  });
});

describe("alpha", () => {
  it("composites over white exactly as round((c·a + 255·(255 − a)) / 255)", () => {
    for (let a = 0; a < 256; a++) {
      for (let c = 0; c < 256; c++) {
        const expected = Math.round((c * a + 255 * (255 - a)) / 255);
        if (overWhite(c, a) !== expected) throw new Error(`c=${c} a=${a}: ${overWhite(c, a)} vs ${expected}`);
      }
    }
  });

  it("expands grey and drops or composites alpha", () => {
    const la = new Uint8Array([10, 0, 20, 255]);
    expect([...toRgb(la, 2, 1, 2, "drop").data]).toEqual([10, 10, 10, 20, 20, 20]);
    expect([...toRgb(la, 2, 1, 2, "white").data]).toEqual([255, 255, 255, 20, 20, 20]);
    expect(() => toRgb(la, 3, 1, 2, "drop", "bad")).toThrow(/bad: expected 6 bytes/);
  });
});
