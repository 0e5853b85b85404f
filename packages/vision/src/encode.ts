import { fmtShape, ShapeError, Tensor } from "@webvlm/tensor";
import { type HostArray, type PatchGrid, prepareVisionInputs, type VisionInputs } from "./masks.js";
import type { Idefics2VisionTransformer } from "./vision-transformer.js";

export interface EncodedImages {
  /** [images, patches, hidden] for the real images, after post_layernorm. */
  lastHiddenState: Tensor;
  /** i32 [images, patches], 1 = real patch: the connector's `patchMask`. */
  patchMask: Tensor;
  /** The same mask on the host, with the grid shape. */
  grid: PatchGrid;
  /** Which entries of the flattened [batch · maxImages] input were encoded (padding images are dropped). */
  realImageIndices: number[];
}

async function toHost(x: Tensor | HostArray, what: string): Promise<HostArray> {
  // toFloat32 decodes f16 (data() would give raw half bits); masks of any dtype become 0/1 floats.
  if (x instanceof Tensor) return { data: await x.toFloat32(), shape: x.shape };
  if (!x || !("data" in x) || !("shape" in x))
    throw new ShapeError(`${what}: expected a Tensor or { data, shape }`);
  return x;
}

/**
 * Processor output → vision features, the way Idefics2Model does it: flatten the image batch,
 * drop all-zero padding images, derive the patch mask from the pixel mask (a patch counts only
 * when all its pixels are real), run the tower.
 *
 * pixelValues: [batch, maxImages, C, H, W] or [N, C, H, W]; pixelAttentionMask: the same
 * leading dims + [H, W], or omitted (every pixel real). Tensors are read back to the host once
 * (the mask and padding checks are host work).
 */
export async function encodeImages(
  vision: Idefics2VisionTransformer,
  pixelValues: Tensor | HostArray,
  pixelAttentionMask?: Tensor | HostArray,
): Promise<EncodedImages> {
  const pv = await toHost(pixelValues, "pixel_values");
  const pm = pixelAttentionMask ? await toHost(pixelAttentionMask, "pixel_attention_mask") : undefined;
  const inputs: VisionInputs = prepareVisionInputs(pv, pm, vision.config.patch_size);
  if (inputs.shape[1] !== vision.config.num_channels) {
    throw new ShapeError(
      `pixel_values ${fmtShape(pv.shape)}: ${inputs.shape[1]} channels, the model has ${vision.config.num_channels}`,
    );
  }
  // Same dtype as the weights (f16 when loaded with { dtype: "f16" }).
  const pixels = Tensor.from(inputs.pixelValues, inputs.shape, {
    dtype: vision.embeddings.patch_embedding.weight.dtype,
  });
  try {
    const lastHiddenState = vision.forward(pixels, inputs.grid);
    const { images, rows, cols, data } = inputs.grid;
    const patchMask = Tensor.from(Int32Array.from(data), [images, rows * cols], { dtype: "i32" });
    return { lastHiddenState, patchMask, grid: inputs.grid, realImageIndices: inputs.realImageIndices };
  } finally {
    pixels.dispose();
  }
}
