// f64 reference for cross-entropy of logits [N, V] against integer targets, like torch's
// F.cross_entropy(logits, targets, ignore_index, reduction).

export function crossEntropyRowsRef(
  x: ArrayLike<number>,
  targets: ArrayLike<number>,
  v: number,
  ignoreIndex: number,
): Float64Array {
  const n = targets.length;
  const out = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const t = targets[r]!;
    // Ignored rows contribute 0.
    if (t === ignoreIndex) continue;
    // logsumexp with the row max subtracted.
    let m = -Infinity;
    for (let k = 0; k < v; k++) m = Math.max(m, x[r * v + k]!);
    let s = 0;
    for (let k = 0; k < v; k++) s += Math.exp(x[r * v + k]! - m);
    // -log p[target] = logsumexp - x[target].
    out[r] = m + Math.log(s) - x[r * v + t]!;
  }
  return out;
}

export function crossEntropyRef(
  x: ArrayLike<number>,
  targets: ArrayLike<number>,
  v: number,
  ignoreIndex: number,
  reduction: "mean" | "sum" | "none",
): Float64Array {
  const rows = crossEntropyRowsRef(x, targets, v, ignoreIndex);
  if (reduction === "none") return rows;
  // Sum, then divide by the number of non-ignored rows for the mean (0/0 = NaN, like torch).
  let s = 0;
  let count = 0;
  for (let r = 0; r < rows.length; r++) {
    s += rows[r]!;
    if (targets[r] !== ignoreIndex) count++;
  }
  return Float64Array.of(reduction === "sum" ? s : s / count);
}
