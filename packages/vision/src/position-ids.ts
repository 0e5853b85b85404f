import { ShapeError } from "@webvlm/tensor";
import type { PatchGrid } from "./masks.js";

const f32 = Math.fround;

/**
 * `torch.arange(start, end, step)` with float32 output, as PyTorch's CPU kernel (AVX2 build)
 * computes it; the released Idefics2 checkpoints were trained with these exact values.
 *
 * The length is `ceil((end - start) / step)` in double. Values are computed in double and
 * rounded to float32, but not all the same way: full 16-element blocks go through 8-lane vectors,
 * which round the lane base `f32(start + step·b)` first and then add `k·step` (b = lane-vector
 * start, k = lane), while the tail is `f32(start + step·i)`. The two roundings differ at some
 * exact ties, which moves a patch into a neighbouring bucket.
 */
export function torchArangeF32(start: number, end: number, step: number): Float32Array {
  const n = Math.max(0, Math.ceil((end - start) / step));
  const out = new Float32Array(n);
  const vectorEnd = Math.floor(n / 16) * 16;
  for (let i = 0; i < n; i++) {
    if (i < vectorEnd) {
      const b = i - (i % 8);
      const base = f32(start + step * b);
      out[i] = f32(base + (i - b) * step);
    } else {
      out[i] = f32(start + step * i);
    }
  }
  return out;
}

/** Bucket boundaries of a side with `numPatchesPerSide` position slots: arange(1/N, 1, 1/N). */
export function bucketBoundaries(numPatchesPerSide: number): Float32Array {
  return torchArangeF32(1 / numPatchesPerSide, 1.0, 1 / numPatchesPerSide);
}

/**
 * Position bucket of each of the `nb` patches along one side of an image, when the model has
 * `numPatchesPerSide` slots per side (Idefics2VisionEmbeddings): fractional coordinates
 * `arange(0, 1 - 1e-6, f32(1 / nb))` bucketised with `right=True` (count of boundaries <= x).
 * Not `floor(i·N / nb)`: float32 rounding moves some exact ties down one bucket.
 */
export function positionBuckets(
  nb: number,
  numPatchesPerSide: number,
  boundaries = bucketBoundaries(numPatchesPerSide),
): Int32Array {
  if (!Number.isInteger(nb) || nb <= 0)
    throw new ShapeError(`positionBuckets: patch count ${nb} must be a positive integer`);
  // `1 / nb_patches` divides an int64 tensor: the reciprocal is computed in float32.
  const step = f32(1 / nb);
  const coords = torchArangeF32(0, 1 - 1e-6, step);
  if (coords.length !== nb) {
    throw new ShapeError(
      `positionBuckets: arange gave ${coords.length} coordinates for ${nb} patches (N = ${numPatchesPerSide})`,
    );
  }
  const out = new Int32Array(nb);
  for (let i = 0; i < nb; i++) {
    let count = 0;
    while (count < boundaries.length && boundaries[count]! <= coords[i]!) count++;
    out[i] = count;
  }
  return out;
}

/**
 * Ids into the position embedding for every patch slot of every image: [images, rows·cols],
 * row-major. Valid patches (a top-left rectangle of nb_h × nb_w) get `bucket_h·N + bucket_w`;
 * padded slots get 0 (they still receive position_embedding[0], like the reference).
 */
export function visionPositionIds(grid: PatchGrid, numPatchesPerSide: number): Int32Array {
  const { images, rows, cols, data } = grid;
  const N = numPatchesPerSide;
  const boundaries = bucketBoundaries(N);
  const out = new Int32Array(images * rows * cols);
  for (let n = 0; n < images; n++) {
    const base = n * rows * cols;
    // nb_h = mask[:, 0].sum(), nb_w = mask[0].sum(), as the reference counts them.
    let nbH = 0;
    let nbW = 0;
    let valid = 0;
    for (let r = 0; r < rows; r++) nbH += data[base + r * cols]! ? 1 : 0;
    for (let c = 0; c < cols; c++) nbW += data[base + c]! ? 1 : 0;
    for (let k = 0; k < rows * cols; k++) valid += data[base + k]! ? 1 : 0;
    if (valid !== nbH * nbW || nbH === 0) {
      throw new ShapeError(
        `visionPositionIds: image ${n}: the valid patches must form a non-empty top-left rectangle; ` +
          `first column has ${nbH}, first row ${nbW}, but ${valid} patches are valid (grid ${rows}×${cols})`,
      );
    }
    const bh = positionBuckets(nbH, N, boundaries);
    const bw = positionBuckets(nbW, N, boundaries);
    // Written into the valid slots in row-major order (boolean-mask assignment).
    let k = 0;
    for (let s = 0; s < rows * cols; s++) {
      if (!data[base + s]) continue;
      const i = Math.floor(k / nbW);
      const j = k % nbW;
      out[base + s] = bh[i]! * N + bw[j]!;
      k++;
    }
  }
  return out;
}
