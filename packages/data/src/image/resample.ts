// Pillow-exact resampling of 8-bit RGB images (Pillow's libImaging/Resample.c, re-derived):
// separable convolution, horizontal pass first, the intermediate image rounded to uint8,
// coefficients in 22-bit fixed point, a pass skipped when its dimension does not change.
// Other libraries' "bilinear" is plain interpolation without antialiasing and differs.
import type { RgbImage } from "./decode.js";

/** Pillow filters usable through Resample.c. NEAREST (0) uses another code path and is not provided. */
export type ResampleFilter = "box" | "bilinear" | "hamming" | "bicubic" | "lanczos";

/** `PIL.Image.Resampling` codes as found in `preprocessor_config.json` (`"resample": 2`). */
export const PIL_RESAMPLE_CODES: Readonly<Record<number, ResampleFilter>> = {
  1: "lanczos",
  2: "bilinear",
  3: "bicubic",
  4: "box",
  5: "hamming",
};

// 8 result bits + 2 headroom bits for negative lobes / overshoot in a 32-bit accumulator.
const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);

interface FilterDef {
  fn: (x: number) => number;
  support: number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

// Hamming's constants are C float literals promoted to double.
const HAMMING_A = Math.fround(0.54);
const HAMMING_B = Math.fround(0.46);

const FILTERS: Record<ResampleFilter, FilterDef> = {
  box: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    fn: (x) => {
      const a = x < 0 ? -x : x;
      return a < 1 ? 1 - a : 0;
    },
  },
  hamming: {
    support: 1,
    fn: (x) => {
      const a = x < 0 ? -x : x;
      if (a === 0) return 1;
      if (a >= 1) return 0;
      const px = a * Math.PI;
      return (Math.sin(px) / px) * (HAMMING_A + HAMMING_B * Math.cos(px));
    },
  },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      const t = x < 0 ? -x : x;
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

/** Per output pixel: the first input index, the tap count, and `ksize` fixed-point weights. */
export interface ResampleCoefficients {
  ksize: number;
  /** `[first0, count0, first1, count1, …]`, one pair per output index. */
  bounds: Int32Array;
  /** `weights[out * ksize + tap]`, scaled by 2^22 and rounded half away from zero. */
  weights: Int32Array;
}

/** Coefficients for resampling `inSize` → `outSize` along one axis (Pillow's `precompute_coeffs`). */
export function resampleCoefficients(
  inSize: number,
  outSize: number,
  filter: ResampleFilter,
): ResampleCoefficients {
  const f = FILTERS[filter];
  const scale = inSize / outSize;
  const filterscale = Math.max(1, scale);
  const support = f.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = f.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      weights[xx * ksize + x] =
        w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

// Datasets repeat a handful of sizes; coefficient tables are small, so keep the recent ones.
const coefficientCache = new Map<string, ResampleCoefficients>();
const COEFFICIENT_CACHE_SIZE = 64;

function cachedCoefficients(inSize: number, outSize: number, filter: ResampleFilter): ResampleCoefficients {
  const key = `${filter}:${inSize}:${outSize}`;
  let c = coefficientCache.get(key);
  if (c) {
    coefficientCache.delete(key);
  } else {
    c = resampleCoefficients(inSize, outSize, filter);
    if (coefficientCache.size >= COEFFICIENT_CACHE_SIZE) {
      coefficientCache.delete(coefficientCache.keys().next().value as string);
    }
  }
  coefficientCache.set(key, c);
  return c;
}

/** A rectangle of an image, in pixels. */
export interface Region {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * Resizes `region` of `src` (default: all of it) to `outWidth`×`outHeight` exactly as Pillow's
 * `Image.resize((w, h), filter)` does on an RGB uint8 image. Always returns a new image.
 */
export function resizeRgb(
  src: RgbImage,
  outWidth: number,
  outHeight: number,
  filter: ResampleFilter = "bilinear",
  region: Region = { x: 0, y: 0, width: src.width, height: src.height },
): RgbImage {
  const { x: x0, y: y0, width: inW, height: inH } = region;
  if (!(x0 >= 0 && y0 >= 0 && inW > 0 && inH > 0 && x0 + inW <= src.width && y0 + inH <= src.height)) {
    throw new RangeError(
      `resizeRgb: region ${JSON.stringify(region)} is empty or outside the ${src.width}×${src.height} image`,
    );
  }
  if (!(Number.isInteger(outWidth) && Number.isInteger(outHeight) && outWidth > 0 && outHeight > 0)) {
    throw new RangeError(`resizeRgb: output size must be positive integers, got ${outWidth}×${outHeight}`);
  }
  if (!FILTERS[filter]) throw new RangeError(`resizeRgb: unknown filter ${filter}`);
  // One element type throughout keeps the pass loops monomorphic.
  const srcData = new Uint8ClampedArray(src.data.buffer, src.data.byteOffset, src.data.length);
  const srcStride = src.width * 3;
  const srcOffset = y0 * srcStride + x0 * 3;
  const needH = outWidth !== inW;
  const needV = outHeight !== inH;

  if (!needH && !needV) return cropRgb(src, region);

  const vert = cachedCoefficients(inH, outHeight, filter);
  if (!needH) {
    const out = new Uint8ClampedArray(outWidth * outHeight * 3);
    verticalPass(srcData, srcOffset, srcStride, inW * 3, out, outHeight, vert, 0);
    return { width: outWidth, height: outHeight, data: new Uint8Array(out.buffer) };
  }

  // Only rows the vertical pass reads go through the horizontal pass.
  const yFirst = vert.bounds[0];
  const yLast = vert.bounds[outHeight * 2 - 2] + vert.bounds[outHeight * 2 - 1];
  const horiz = cachedCoefficients(inW, outWidth, filter);
  const tmp = new Uint8ClampedArray(outWidth * (yLast - yFirst) * 3);
  horizontalPass(
    srcData,
    srcOffset + yFirst * srcStride,
    inW,
    srcStride,
    yLast - yFirst,
    tmp,
    outWidth,
    horiz,
  );
  if (!needV) return { width: outWidth, height: outHeight, data: new Uint8Array(tmp.buffer) };

  const out = new Uint8ClampedArray(outWidth * outHeight * 3);
  verticalPass(tmp, 0, outWidth * 3, outWidth * 3, out, outHeight, vert, yFirst);
  return { width: outWidth, height: outHeight, data: new Uint8Array(out.buffer) };
}

/** Copies `region` of `src` into a new image. */
export function cropRgb(src: RgbImage, region: Region): RgbImage {
  const { x, y, width, height } = region;
  if (!(x >= 0 && y >= 0 && width > 0 && height > 0 && x + width <= src.width && y + height <= src.height)) {
    throw new RangeError(
      `cropRgb: region ${JSON.stringify(region)} is empty or outside the ${src.width}×${src.height} image`,
    );
  }
  const out = new Uint8Array(width * height * 3);
  const rowLen = width * 3;
  for (let r = 0; r < height; r++) {
    const start = ((y + r) * src.width + x) * 3;
    out.set(src.data.subarray(start, start + rowLen), r * rowLen);
  }
  return { width, height, data: out };
}

// Uint8ClampedArray stores clip(v, 0, 255) for the integer `acc >> 22`, which is Pillow's clip8.
// Every pass reads and writes Uint8ClampedArray only, so the loops stay monomorphic. Sums fit in
// int32: |Σ u8·k| ≤ 255 · Σ|k| < 2^31 for these filters, as in Pillow's int accumulators.

// Most outputs need at most 3 or 4 taps (bilinear down to 1/1.5 or 1/2 of the size), so those
// loops are unrolled, with zero weights in unused slots.
function horizontalPass(
  src: Uint8ClampedArray,
  offset: number,
  inWidth: number,
  stride: number,
  rows: number,
  dst: Uint8ClampedArray,
  outWidth: number,
  c: ResampleCoefficients,
): void {
  const { ksize, bounds, weights } = c;
  let maxTaps = 0;
  for (let xx = 0; xx < outWidth; xx++) maxTaps = Math.max(maxTaps, bounds[2 * xx + 1]);
  const taps = maxTaps <= 3 ? 3 : 4;
  if (maxTaps > 4 || inWidth < taps) {
    horizontalPassGeneric(src, offset, stride, rows, dst, outWidth, c);
    return;
  }
  // Per output pixel: the byte offset of a `taps`-pixel window inside the row, and its weights.
  // Windows that would run past the row end slide left; their weights slide right.
  const first = new Int32Array(outWidth);
  const wt = new Int32Array(outWidth * taps);
  for (let xx = 0; xx < outWidth; xx++) {
    const x0 = bounds[2 * xx];
    const start = Math.min(x0, inWidth - taps);
    const n = bounds[2 * xx + 1];
    first[xx] = start * 3;
    for (let t = 0; t < n; t++) wt[xx * taps + x0 - start + t] = weights[xx * ksize + t];
  }
  let o = 0;
  if (taps === 3) {
    for (let y = 0; y < rows; y++) {
      const rowBase = offset + y * stride;
      for (let xx = 0, q = 0; xx < outWidth; xx++, q += 3, o += 3) {
        const p = rowBase + first[xx];
        const k0 = wt[q];
        const k1 = wt[q + 1];
        const k2 = wt[q + 2];
        dst[o] = (HALF + src[p] * k0 + src[p + 3] * k1 + src[p + 6] * k2) >> PRECISION_BITS;
        dst[o + 1] = (HALF + src[p + 1] * k0 + src[p + 4] * k1 + src[p + 7] * k2) >> PRECISION_BITS;
        dst[o + 2] = (HALF + src[p + 2] * k0 + src[p + 5] * k1 + src[p + 8] * k2) >> PRECISION_BITS;
      }
    }
    return;
  }
  for (let y = 0; y < rows; y++) {
    const rowBase = offset + y * stride;
    for (let xx = 0, q = 0; xx < outWidth; xx++, q += 4, o += 3) {
      const p = rowBase + first[xx];
      const k0 = wt[q];
      const k1 = wt[q + 1];
      const k2 = wt[q + 2];
      const k3 = wt[q + 3];
      dst[o] = (HALF + src[p] * k0 + src[p + 3] * k1 + src[p + 6] * k2 + src[p + 9] * k3) >> PRECISION_BITS;
      dst[o + 1] =
        (HALF + src[p + 1] * k0 + src[p + 4] * k1 + src[p + 7] * k2 + src[p + 10] * k3) >> PRECISION_BITS;
      dst[o + 2] =
        (HALF + src[p + 2] * k0 + src[p + 5] * k1 + src[p + 8] * k2 + src[p + 11] * k3) >> PRECISION_BITS;
    }
  }
}

function horizontalPassGeneric(
  src: Uint8ClampedArray,
  offset: number,
  stride: number,
  rows: number,
  dst: Uint8ClampedArray,
  outWidth: number,
  c: ResampleCoefficients,
): void {
  const { ksize, bounds, weights } = c;
  let o = 0;
  for (let y = 0; y < rows; y++) {
    const rowBase = offset + y * stride;
    for (let xx = 0; xx < outWidth; xx++) {
      const n = bounds[2 * xx + 1];
      const kb = xx * ksize;
      let p = rowBase + bounds[2 * xx] * 3;
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let t = 0; t < n; t++, p += 3) {
        const k = weights[kb + t];
        s0 += src[p] * k;
        s1 += src[p + 1] * k;
        s2 += src[p + 2] * k;
      }
      dst[o] = s0 >> PRECISION_BITS;
      dst[o + 1] = s1 >> PRECISION_BITS;
      dst[o + 2] = s2 >> PRECISION_BITS;
      o += 3;
    }
  }
}

// Each output row combines whole input rows, which stream through memory.
function verticalPass(
  src: Uint8ClampedArray,
  offset: number,
  stride: number,
  rowLen: number,
  dst: Uint8ClampedArray,
  outHeight: number,
  c: ResampleCoefficients,
  rowShift: number,
): void {
  const { ksize, bounds, weights } = c;
  let acc: Int32Array | null = null;
  for (let yy = 0; yy < outHeight; yy++) {
    const n = bounds[2 * yy + 1];
    const first = bounds[2 * yy] - rowShift;
    const kb = yy * ksize;
    const o = yy * rowLen;
    if (n <= 4) {
      // Absent taps get weight 0 and re-read the first row.
      const b0 = offset + first * stride;
      const b1 = n > 1 ? b0 + stride : b0;
      const b2 = n > 2 ? b0 + 2 * stride : b0;
      const b3 = n > 3 ? b0 + 3 * stride : b0;
      const k0 = weights[kb];
      const k1 = n > 1 ? weights[kb + 1] : 0;
      const k2 = n > 2 ? weights[kb + 2] : 0;
      const k3 = n > 3 ? weights[kb + 3] : 0;
      if (n <= 2) {
        for (let i = 0; i < rowLen; i++)
          dst[o + i] = (HALF + src[b0 + i] * k0 + src[b1 + i] * k1) >> PRECISION_BITS;
      } else if (n === 3) {
        for (let i = 0; i < rowLen; i++) {
          dst[o + i] = (HALF + src[b0 + i] * k0 + src[b1 + i] * k1 + src[b2 + i] * k2) >> PRECISION_BITS;
        }
      } else {
        for (let i = 0; i < rowLen; i++) {
          dst[o + i] =
            (HALF + src[b0 + i] * k0 + src[b1 + i] * k1 + src[b2 + i] * k2 + src[b3 + i] * k3) >>
            PRECISION_BITS;
        }
      }
      continue;
    }
    acc ??= new Int32Array(rowLen);
    acc.fill(HALF);
    for (let t = 0; t < n; t++) {
      const k = weights[kb + t];
      const base = offset + (first + t) * stride;
      for (let i = 0; i < rowLen; i++) acc[i] += src[base + i] * k;
    }
    for (let i = 0; i < rowLen; i++) dst[o + i] = acc[i] >> PRECISION_BITS;
  }
}
