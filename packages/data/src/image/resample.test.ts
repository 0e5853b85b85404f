import { describe, expect, it } from "vitest";
import type { RgbImage } from "./decode.js";
import { cropRgb, resampleCoefficients, resizeRgb } from "./resample.js";
import { pillowVersion, resizeCases } from "./testdata/pillow-reference.js";

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function randomImage(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { width, height, data };
}

describe(`resizeRgb matches Pillow ${pillowVersion} Image.resize`, () => {
  for (const c of resizeCases) {
    it(`${c.filter} ${c.width}×${c.height} → ${c.outWidth}×${c.outHeight}`, () => {
      const out = resizeRgb(
        { width: c.width, height: c.height, data: c.input },
        c.outWidth,
        c.outHeight,
        c.filter,
      );
      expect([out.width, out.height]).toEqual([c.outWidth, c.outHeight]);
      const i = firstDiff(out.data, c.output);
      expect(i, `byte ${i}: got ${out.data[i]}, Pillow ${c.output[i]}`).toBe(-1);
    });
  }
});

describe("resizeRgb", () => {
  it("resizing a region equals resizing a copy of it", () => {
    const img = randomImage(211, 157, 7);
    const region = { x: 13, y: 29, width: 150, height: 101 };
    for (const [w, h] of [
      [56, 41],
      [150, 40],
      [33, 101],
      [300, 200],
      [150, 101],
    ]) {
      const a = resizeRgb(img, w, h, "bilinear", region);
      const b = resizeRgb(cropRgb(img, region), w, h, "bilinear");
      expect(firstDiff(a.data, b.data)).toBe(-1);
    }
  });

  it("returns a copy when the size is unchanged", () => {
    const img = randomImage(5, 4, 1);
    const out = resizeRgb(img, 5, 4);
    expect(out.data).not.toBe(img.data);
    expect([...out.data]).toEqual([...img.data]);
  });

  it("keeps a constant image constant and never leaves 0..255", () => {
    const flat = { width: 97, height: 61, data: new Uint8Array(97 * 61 * 3).fill(200) };
    expect(resizeRgb(flat, 40, 23).data.every((v) => v === 200)).toBe(true);
    // Lanczos overshoots on a checkerboard: the result must be clipped, not wrapped.
    const board = { width: 16, height: 16, data: new Uint8Array(16 * 16 * 3) };
    for (let i = 0; i < 256; i++) board.data.fill(((i >> 4) + i) % 2 ? 255 : 0, i * 3, i * 3 + 3);
    const up = resizeRgb(board, 37, 41, "lanczos");
    expect(up.data.some((v) => v === 0) && up.data.some((v) => v === 255)).toBe(true);
  });

  it("has coefficients that sum to one in 22-bit fixed point", () => {
    for (const [inSize, outSize] of [
      [980, 378],
      [97, 56],
      [40, 56],
      [1, 7],
    ]) {
      const c = resampleCoefficients(inSize, outSize, "bilinear");
      for (let o = 0; o < outSize; o++) {
        const [first, n] = [c.bounds[2 * o], c.bounds[2 * o + 1]];
        expect(first >= 0 && first + n <= inSize && n <= c.ksize).toBe(true);
        let sum = 0;
        for (let t = 0; t < c.ksize; t++) sum += c.weights[o * c.ksize + t];
        expect(Math.abs(sum - (1 << 22))).toBeLessThanOrEqual(c.ksize);
      }
    }
  });

  it("rejects bad regions and sizes", () => {
    const img = randomImage(10, 10, 3);
    expect(() => resizeRgb(img, 5, 5, "bilinear", { x: 5, y: 0, width: 6, height: 10 })).toThrow(
      /outside the 10×10/,
    );
    expect(() => resizeRgb(img, 0, 5)).toThrow(/positive integers/);
  });
});
