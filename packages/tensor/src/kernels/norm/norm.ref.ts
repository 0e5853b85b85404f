// f64 references for LayerNorm and RMSNorm over the last dim of a row-major [rows, D] array.

export function layerNormRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  d: number,
  eps: number,
): Float64Array {
  const out = new Float64Array(x.length);
  for (let o = 0; o < x.length; o += d) {
    // Mean of the row.
    let mean = 0;
    for (let k = 0; k < d; k++) mean += x[o + k]!;
    mean /= d;
    // Biased variance, like torch.nn.LayerNorm.
    let v = 0;
    for (let k = 0; k < d; k++) v += (x[o + k]! - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / d + eps);
    // Normalise, scale, shift.
    for (let k = 0; k < d; k++) out[o + k] = (x[o + k]! - mean) * rstd * w[k]! + b[k]!;
  }
  return out;
}

export function rmsNormRef(x: ArrayLike<number>, w: ArrayLike<number>, d: number, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let o = 0; o < x.length; o += d) {
    // Mean of squares of the row.
    let ms = 0;
    for (let k = 0; k < d; k++) ms += x[o + k]! ** 2;
    const rstd = 1 / Math.sqrt(ms / d + eps);
    // Scale each element, then the weight.
    for (let k = 0; k < d; k++) out[o + k] = x[o + k]! * rstd * w[k]!;
  }
  return out;
}
