import { fmtShape, ShapeError } from "@webvlm/tensor";

/** Host data with a shape (what the processor produces, or what a tensor reads back as). */
export interface HostArray<T extends ArrayLike<number> = ArrayLike<number>> {
  data: T;
  shape: readonly number[];
}

/** Which patch slots of each image hold a real patch: `data[(n·rows + r)·cols + c]` is 1 or 0. */
export interface PatchGrid {
  images: number;
  rows: number;
  cols: number;
  data: Uint8Array;
}

/** Number of patch slots per image (rows · cols). */
export function patchesPerImage(grid: PatchGrid): number {
  return grid.rows * grid.cols;
}

/** A grid where every slot holds a real patch (no pixel mask given). */
export function fullPatchGrid(images: number, rows: number, cols: number): PatchGrid {
  return { images, rows, cols, data: new Uint8Array(images * rows * cols).fill(1) };
}

/**
 * Pixel mask [N, H, W] → patch mask [N, H/p, W/p] (floor: trailing pixels that do not fill a
 * patch are dropped, like the "valid" conv). A patch is valid only when all p² of its pixels are
 * (transformers ≥ 4.45: `unfold(...).sum((-1, -2)) == p²`; earlier versions took any pixel).
 */
export function patchAttentionMask(pixelMask: HostArray, patchSize: number): PatchGrid {
  const { data, shape } = pixelMask;
  if (shape.length !== 3) {
    throw new ShapeError(
      `patchAttentionMask: pixel_attention_mask must be [images, H, W], got ${fmtShape(shape)}`,
    );
  }
  const [N, H, W] = shape as [number, number, number];
  if (data.length !== N * H * W) {
    throw new ShapeError(
      `patchAttentionMask: ${data.length} values for pixel_attention_mask ${fmtShape(shape)}`,
    );
  }
  const rows = Math.floor(H / patchSize);
  const cols = Math.floor(W / patchSize);
  if (rows === 0 || cols === 0) {
    throw new ShapeError(
      `patchAttentionMask: images ${H}×${W} are smaller than one ${patchSize}×${patchSize} patch`,
    );
  }
  const out = new Uint8Array(N * rows * cols);
  const full = patchSize * patchSize;
  for (let n = 0; n < N; n++) {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        let sum = 0;
        for (let y = 0; y < patchSize; y++) {
          const row = (n * H + r * patchSize + y) * W + c * patchSize;
          for (let x = 0; x < patchSize; x++) sum += data[row + x]!;
        }
        out[(n * rows + r) * cols + c] = sum === full ? 1 : 0;
      }
    }
  }
  return { images: N, rows, cols, data: out };
}

/**
 * Indices of the images that are not padding: the reference drops every image whose values are
 * all exactly 0.0 (the processor pads samples with fewer images with such images).
 */
export function realImageIndices(pixelValues: ArrayLike<number>, images: number): number[] {
  const per = pixelValues.length / images;
  const out: number[] = [];
  for (let n = 0; n < images; n++) {
    for (let k = n * per; k < (n + 1) * per; k++) {
      if (pixelValues[k] !== 0) {
        out.push(n);
        break;
      }
    }
  }
  return out;
}

export interface VisionInputs {
  /** Real images only, [images, C, H, W] row-major. */
  pixelValues: Float32Array;
  shape: [number, number, number, number];
  /** Patch validity of the real images. */
  grid: PatchGrid;
  /** Position of each kept image in the flattened [batch · maxImages] input. */
  realImageIndices: number[];
}

/**
 * Processor output → what the vision tower takes: flattens [batch, maxImages, C, H, W] (or takes
 * [N, C, H, W]), drops all-zero padding images and derives the patch mask from the pixel mask
 * (all ones when none is given).
 */
export function prepareVisionInputs(
  pixelValues: HostArray,
  pixelAttentionMask: HostArray | undefined,
  patchSize: number,
): VisionInputs {
  const ps = pixelValues.shape;
  if (ps.length !== 4 && ps.length !== 5) {
    throw new ShapeError(
      `pixel_values must be [images, C, H, W] or [batch, images, C, H, W], got ${fmtShape(ps)}`,
    );
  }
  const [C, H, W] = ps.slice(-3) as [number, number, number];
  const total = ps.slice(0, -3).reduce((a, d) => a * d, 1);
  if (pixelValues.data.length !== total * C * H * W) {
    throw new ShapeError(`pixel_values: ${pixelValues.data.length} values for shape ${fmtShape(ps)}`);
  }
  if (pixelAttentionMask) {
    const ms = pixelAttentionMask.shape;
    const want = [...ps.slice(0, -3), H, W];
    if (ms.length !== want.length || ms.some((d, i) => d !== want[i])) {
      throw new ShapeError(
        `pixel_attention_mask ${fmtShape(ms)} must be ${fmtShape(want)} to match pixel_values ${fmtShape(ps)}`,
      );
    }
  }
  const keep = realImageIndices(pixelValues.data, total);
  if (keep.length === 0)
    throw new ShapeError(
      `pixel_values ${fmtShape(ps)}: every image is all zeros (padding); nothing to encode`,
    );
  const per = C * H * W;
  const out = new Float32Array(keep.length * per);
  const mask = new Int32Array(keep.length * H * W);
  keep.forEach((src, dst) => {
    for (let k = 0; k < per; k++) out[dst * per + k] = pixelValues.data[src * per + k]!;
    if (pixelAttentionMask) {
      for (let k = 0; k < H * W; k++) mask[dst * H * W + k] = pixelAttentionMask.data[src * H * W + k]!;
    }
  });
  if (!pixelAttentionMask) mask.fill(1);
  const grid = patchAttentionMask({ data: mask, shape: [keep.length, H, W] }, patchSize);
  return { pixelValues: out, shape: [keep.length, C, H, W], grid, realImageIndices: keep };
}
