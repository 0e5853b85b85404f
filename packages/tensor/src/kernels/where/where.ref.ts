// Plain-loop reference for where, in f64, with numpy broadcasting.

export interface Operand {
  data: ArrayLike<number>;
  shape: readonly number[];
}

/** Reads operand t at output coordinate `coord` (right-aligned; size-1 dims repeat). */
function at(t: Operand, coord: readonly number[]): number {
  let idx = 0;
  const lead = coord.length - t.shape.length;
  for (let d = 0; d < t.shape.length; d++)
    idx = idx * t.shape[d]! + (t.shape[d] === 1 ? 0 : coord[lead + d]!);
  return t.data[idx]!;
}

export function whereRef(cond: Operand, a: Operand, b: Operand): { data: Float64Array; shape: number[] } {
  // Output shape: the broadcast of all three.
  const rank = Math.max(cond.shape.length, a.shape.length, b.shape.length);
  const shape = Array.from(
    { length: rank },
    (_, i) => [cond, a, b].map((t) => t.shape[t.shape.length - rank + i] ?? 1).find((d) => d !== 1) ?? 1,
  );
  const n = shape.reduce((p, d) => p * d, 1);
  const data = new Float64Array(n);
  const coord = new Array<number>(rank).fill(0);
  for (let i = 0; i < n; i++) {
    let rest = i;
    for (let d = rank - 1; d >= 0; d--) {
      coord[d] = rest % shape[d]!;
      rest = Math.floor(rest / shape[d]!);
    }
    // Non-zero (NaN too) picks a.
    const c = at(cond, coord);
    data[i] = c !== 0 ? at(a, coord) : at(b, coord);
  }
  return { data, shape };
}
