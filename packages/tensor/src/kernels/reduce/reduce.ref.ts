// f64 references for reductions over one axis: plain loops over the [outer, len, inner] view.

function split3(shape: readonly number[], axis: number): [number, number, number] {
  const outer = shape.slice(0, axis).reduce((p, d) => p * d, 1);
  const inner = shape.slice(axis + 1).reduce((p, d) => p * d, 1);
  return [outer, shape[axis]!, inner];
}

/** Σ over `axis` times `scale`; output in the kept-dim layout [outer, inner]. */
export function sumRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  axis: number,
  scale = 1,
): Float64Array {
  const [outer, len, inner] = split3(shape, axis);
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      // Walk the reduced axis for this (outer, inner) pair.
      let s = 0;
      for (let k = 0; k < len; k++) s += x[(o * len + k) * inner + i]!;
      out[o * inner + i] = s * scale;
    }
  }
  return out;
}

/** Mean over `axis` (NaN when the axis is empty). */
export function meanRef(x: ArrayLike<number>, shape: readonly number[], axis: number): Float64Array {
  return sumRef(x, shape, axis, 1 / shape[axis]!);
}

/** Max over `axis` and the first index that attains it. */
export function maxRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  axis: number,
): { values: Float64Array; indices: Int32Array } {
  const [outer, len, inner] = split3(shape, axis);
  const values = new Float64Array(outer * inner);
  const indices = new Int32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      // Strict `>` keeps the first of equal maxima.
      let best = -Infinity;
      let bi = -1;
      for (let k = 0; k < len; k++) {
        const v = x[(o * len + k) * inner + i]!;
        if (bi < 0 || v > best) {
          best = v;
          bi = k;
        }
      }
      values[o * inner + i] = best;
      indices[o * inner + i] = bi;
    }
  }
  return { values, indices };
}
