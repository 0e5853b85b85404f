import { describe, expect, it } from "vitest";
import { ConfigError, parseVisionConfig } from "./config.js";
import { patchAttentionMask, prepareVisionInputs, realImageIndices } from "./masks.js";

describe("patch mask from the pixel mask", () => {
  it("counts a patch only when all its pixels are real, and drops trailing pixels", () => {
    // One 5×7 image, patch 2: a 2×3 grid; the last row and column fill no patch.
    const H = 5;
    const W = 7;
    const mask = new Int32Array(H * W).fill(1);
    mask[0 * W + 3] = 0; // one padded pixel in patch (0, 1)
    mask[4 * W + 0] = 0; // in the dropped last row: no effect
    const grid = patchAttentionMask({ data: mask, shape: [1, H, W] }, 2);
    expect([grid.rows, grid.cols]).toEqual([2, 3]);
    expect(Array.from(grid.data)).toEqual([1, 0, 1, 1, 1, 1]);
  });

  it("rejects a mask that is not [images, H, W]", () => {
    expect(() => patchAttentionMask({ data: new Int32Array(4), shape: [4] }, 2)).toThrow(
      /pixel_attention_mask must be \[images, H, W\], got \[4\]/,
    );
  });
});

describe("padding images", () => {
  it("drops images whose values are all exactly 0", () => {
    const px = new Float32Array(3 * 4);
    px[5] = -0.5; // image 1 is real
    px[8] = 1e-30; // image 2 is real, however small
    expect(realImageIndices(px, 3)).toEqual([1, 2]);
  });

  it("prepareVisionInputs flattens [batch, images, ...], keeps real images and their masks", () => {
    const [B, M, C, H, W] = [2, 2, 1, 4, 4];
    const px = new Float32Array(B * M * C * H * W);
    const pm = new Int32Array(B * M * H * W);
    // sample 0: two images; sample 1: one image + a padding image.
    for (const n of [0, 1, 2]) {
      px.fill(n + 1, n * 16, n * 16 + 16);
      pm.fill(1, n * 16, n * 16 + (n === 1 ? 8 : 16)); // image 1: only the top half is real
    }
    const out = prepareVisionInputs(
      { data: px, shape: [B, M, C, H, W] },
      { data: pm, shape: [B, M, H, W] },
      2,
    );
    expect(out.realImageIndices).toEqual([0, 1, 2]);
    expect(out.shape).toEqual([3, 1, 4, 4]);
    expect(Array.from(out.grid.data)).toEqual([1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]);
    expect(() =>
      prepareVisionInputs({ data: px, shape: [B, M, C, H, W] }, { data: pm, shape: [B, M, H, 3] }, 2),
    ).toThrow(/pixel_attention_mask \[2, 2, 4, 3\] must be \[2, 2, 4, 4\]/);
    expect(() =>
      prepareVisionInputs({ data: new Float32Array(16), shape: [1, 1, 4, 4] }, undefined, 2),
    ).toThrow(/all zeros/);
  });
});

describe("vision config", () => {
  it("names the bad field", () => {
    const good = {
      vision_config: {
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        image_size: 56,
        patch_size: 14,
      },
    };
    expect(parseVisionConfig(good).layer_norm_eps).toBe(1e-6);
    expect(() => parseVisionConfig({ vision_config: { ...good.vision_config, patch_size: "14" } })).toThrow(
      /vision_config\.patch_size/,
    );
    expect(() =>
      parseVisionConfig({ vision_config: { ...good.vision_config, num_attention_heads: 5 } }),
    ).toThrow(ConfigError);
    expect(() =>
      parseVisionConfig({ vision_config: { ...good.vision_config, hidden_act: "swish" } }),
    ).toThrow(/vision_config\.hidden_act: 'swish'/);
  });
});
