// Plain-loop references for index_select / embedding and their backward, in f64.

/** Row-major strides of a shape. */
function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** y = x.index_select(dim, index); x contiguous with `shape`. */
export function indexSelectRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  dim: number,
  index: ArrayLike<number>,
): Float64Array {
  const outer = shape.slice(0, dim).reduce((p, d) => p * d, 1);
  const len = shape[dim]!;
  const inner = shape.slice(dim + 1).reduce((p, d) => p * d, 1);
  const m = index.length;
  const y = new Float64Array(outer * m * inner);
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < m; j++) {
      // Each output slab copies the input slab the index names.
      const v = index[j]!;
      for (let i = 0; i < inner; i++) y[(o * m + j) * inner + i] = x[(o * len + v) * inner + i]!;
    }
  return y;
}

/** Backward: gx[.., index[j], ..] += g[.., j, ..]. */
export function scatterAddRef(
  g: ArrayLike<number>,
  shape: readonly number[],
  dim: number,
  index: ArrayLike<number>,
): Float64Array {
  const outer = shape.slice(0, dim).reduce((p, d) => p * d, 1);
  const len = shape[dim]!;
  const inner = shape.slice(dim + 1).reduce((p, d) => p * d, 1);
  const m = index.length;
  const gx = new Float64Array(outer * len * inner);
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < m; j++)
      for (let i = 0; i < inner; i++) gx[(o * len + index[j]!) * inner + i] += g[(o * m + j) * inner + i]!;
  return gx;
}

/** embedding: row ids[n] of weight [V, D] for every id. */
export function embeddingRef(ids: ArrayLike<number>, weight: ArrayLike<number>, dim: number): Float64Array {
  const y = new Float64Array(ids.length * dim);
  for (let n = 0; n < ids.length; n++)
    for (let d = 0; d < dim; d++) y[n * dim + d] = weight[ids[n]! * dim + d]!;
  return y;
}

/** Reads a strided view into a contiguous array (for tests that hand the GPU non-contiguous views). */
export function stridedRead(
  data: ArrayLike<number>,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): Float64Array {
  const n = shape.reduce((p, d) => p * d, 1);
  const out = new Float64Array(n);
  const cs = stridesOf(shape);
  for (let i = 0; i < n; i++) {
    let a = offset;
    for (let d = 0; d < shape.length; d++) a += (Math.floor(i / cs[d]!) % shape[d]!) * strides[d]!;
    out[i] = data[a]!;
  }
  return out;
}
