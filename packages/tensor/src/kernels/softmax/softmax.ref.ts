// f64 references for softmax and log-softmax over the last axis of a row-major [rows, cols] array.

export function softmaxRef(x: ArrayLike<number>, cols: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r * cols < x.length; r++) {
    const o = r * cols;
    // Row max, so exp() of the shifted values is at most 1.
    let m = -Infinity;
    for (let k = 0; k < cols; k++) m = Math.max(m, x[o + k]!);
    // Normaliser.
    let s = 0;
    for (let k = 0; k < cols; k++) s += Math.exp(x[o + k]! - m);
    // Probabilities.
    for (let k = 0; k < cols; k++) out[o + k] = Math.exp(x[o + k]! - m) / s;
  }
  return out;
}

export function logSoftmaxRef(x: ArrayLike<number>, cols: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r * cols < x.length; r++) {
    const o = r * cols;
    let m = -Infinity;
    for (let k = 0; k < cols; k++) m = Math.max(m, x[o + k]!);
    let s = 0;
    for (let k = 0; k < cols; k++) s += Math.exp(x[o + k]! - m);
    // log p = x - m - log Σ exp(x - m).
    const c = m + Math.log(s);
    for (let k = 0; k < cols; k++) out[o + k] = x[o + k]! - c;
  }
  return out;
}
