// Plain-loop reference for concat, in f64.

/** Joins contiguous inputs (data + shape) along `dim`. */
export function concatRef(
  inputs: readonly { data: ArrayLike<number>; shape: readonly number[] }[],
  dim: number,
): { data: Float64Array; shape: number[] } {
  const shape = [...inputs[0]!.shape];
  shape[dim] = inputs.reduce((s, t) => s + t.shape[dim]!, 0);
  const outer = shape.slice(0, dim).reduce((p, d) => p * d, 1);
  const inner = shape.slice(dim + 1).reduce((p, d) => p * d, 1);
  const data = new Float64Array(outer * shape[dim]! * inner);
  let base = 0;
  for (const t of inputs) {
    const len = t.shape[dim]!;
    // Copy this input's slab into columns [base, base + len) of every outer row.
    for (let o = 0; o < outer; o++)
      for (let j = 0; j < len; j++)
        for (let i = 0; i < inner; i++)
          data[(o * shape[dim]! + base + j) * inner + i] = t.data[(o * len + j) * inner + i]!;
    base += len;
  }
  return { data, shape };
}
