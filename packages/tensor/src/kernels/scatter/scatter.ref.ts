// Plain-loop reference for scatter_rows and its gradients, in f64.

/** y = base [n, d] with rows[i] written at row index[i]. */
export function scatterRowsRef(
  base: ArrayLike<number>,
  n: number,
  d: number,
  index: ArrayLike<number>,
  rows: ArrayLike<number>,
): Float64Array {
  // Start from a copy of base.
  const y = Float64Array.from({ length: n * d }, (_, k) => base[k]!);
  // Overwrite each indexed row.
  for (let i = 0; i < index.length; i++) for (let c = 0; c < d; c++) y[index[i]! * d + c] = rows[i * d + c]!;
  return y;
}
