import { fileURLToPath } from "node:url";
import { readSafetensorsFile, toInt32 } from "@webvlm/tensor";
import { describe, expect, it } from "vitest";
import { patchAttentionMask } from "./masks.js";
import { positionBuckets, torchArangeF32, visionPositionIds } from "./position-ids.js";

const FIXTURES = fileURLToPath(new URL("../../../fixtures/idefics2-tiny/", import.meta.url));

describe("position buckets", () => {
  it("reproduce the reference tables for 4, 5 and 70 patches per side exactly", async () => {
    const aux = await readSafetensorsFile(`${FIXTURES}aux_position_buckets.safetensors`);
    for (const N of [4, 5, 70]) {
      const table = toInt32(aux.get(`aux.position_buckets.N${N}`)!);
      let mismatches = 0;
      const first: string[] = [];
      for (let n = 1; n <= N; n++) {
        const got = positionBuckets(n, N);
        for (let i = 0; i < N; i++) {
          const want = table[(n - 1) * N + i]!;
          const have = i < n ? got[i]! : -1;
          if (want !== have) {
            mismatches++;
            if (first.length < 5) first.push(`N=${N} nb=${n} i=${i}: ${have} vs ${want}`);
          }
        }
      }
      expect(first, `N=${N}: ${mismatches} mismatches`).toEqual([]);
    }
  });

  it("differs from exact rational floor(i·N/nb) where float32 rounding moves a tie (N=70, nb=25, i=5)", () => {
    expect(positionBuckets(25, 70)[5]).toBe(13);
    expect(Math.floor((5 * 70) / 25)).toBe(14);
  });

  it("arange uses the vector formula on 16-element blocks and the scalar one on the tail", () => {
    const a = torchArangeF32(0, 1 - 1e-6, Math.fround(1 / 25));
    expect(a.length).toBe(25);
    expect(a[0]).toBe(0);
    expect(torchArangeF32(1 / 70, 1, 1 / 70).length).toBe(69);
  });

  it("ids per image match the fixtures' vision.position_ids and patch_attention_mask", async () => {
    for (const name of ["single", "batch", "split"]) {
      const c = await readSafetensorsFile(`${FIXTURES}case_${name}.safetensors`);
      const pv = c.get(`${name}.pixel_values`)!;
      const pm = c.get(`${name}.pixel_attention_mask`)!;
      const want = c.get(`${name}.patch_attention_mask`)!;
      const pixels = new Float32Array(pv.data.buffer, pv.data.byteOffset, pv.data.byteLength / 4);
      const [B, M, , H, W] = pv.shape as number[];
      const mask = toInt32(pm);
      // Drop all-zero padding images the way the model does.
      const per = 3 * H! * W!;
      const keep: number[] = [];
      for (let n = 0; n < B! * M!; n++)
        if (pixels.subarray(n * per, (n + 1) * per).some((v) => v !== 0)) keep.push(n);
      const kept = new Int32Array(keep.length * H! * W!);
      keep.forEach((src, dst) => {
        kept.set(mask.subarray(src * H! * W!, (src + 1) * H! * W!), dst * H! * W!);
      });
      const grid = patchAttentionMask({ data: kept, shape: [keep.length, H!, W!] }, 14);
      expect([grid.images, grid.rows, grid.cols]).toEqual(want.shape);
      expect(Array.from(grid.data)).toEqual(Array.from(toInt32(want)));
      const ids = visionPositionIds(grid, 4);
      expect(Array.from(ids)).toEqual(Array.from(toInt32(c.get(`${name}.vision.position_ids`)!)));
    }
  });
});
