// Plain-loop batched matmul in f64: the truth the kernels are checked against.

export interface RefMatrix {
  data: ArrayLike<number>;
  /** Row-major shape [...batch, rows, cols] as stored. */
  shape: readonly number[];
}

export interface RefOptions {
  transposeA?: boolean;
  transposeB?: boolean;
  /** [N] values added to every row. */
  bias?: ArrayLike<number>;
}

/**
 * C[...batch, m, n] = Σ_k op(A)[..., m, k] · op(B)[..., k, n] (+ bias[n]), batch dims broadcast
 * like numpy. Returns the result (row-major) and its shape.
 */
export function matmulRef(
  a: RefMatrix,
  b: RefMatrix,
  options: RefOptions = {},
): { data: Float64Array; shape: number[] } {
  const ta = options.transposeA ?? false;
  const tb = options.transposeB ?? false;
  const ar = a.shape.length;
  const br = b.shape.length;
  // Stored matrix dims.
  const [aRows, aCols] = [a.shape[ar - 2]!, a.shape[ar - 1]!];
  const [bRows, bCols] = [b.shape[br - 2]!, b.shape[br - 1]!];
  const M = ta ? aCols : aRows;
  const K = ta ? aRows : aCols;
  const N = tb ? bRows : bCols;
  if ((tb ? bCols : bRows) !== K)
    throw new Error(`matmulRef: inner dims differ (${K} vs ${tb ? bCols : bRows})`);

  // Broadcast batch shape.
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const batch: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = aBatch[aBatch.length - rank + i] ?? 1;
    const db = bBatch[bBatch.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error("matmulRef: batch dims do not broadcast");
    batch.push(Math.max(da, db));
  }
  const batchCount = batch.reduce((p, d) => p * d, 1);

  // Index of the stored matrix of `dims` used by output batch index `z` (size-1 dims broadcast).
  const matrixIndex = (dims: readonly number[], z: number): number => {
    let idx = 0;
    let stride = 1;
    let rem = z;
    for (let i = rank - 1; i >= 0; i--) {
      const coord = rem % batch[i]!;
      rem = Math.floor(rem / batch[i]!);
      const j = dims.length - rank + i;
      if (j < 0) continue;
      const d = dims[j]!;
      idx += (d === 1 ? 0 : coord) * stride;
      stride *= d;
    }
    return idx;
  };

  const out = new Float64Array(batchCount * M * N);
  for (let z = 0; z < batchCount; z++) {
    const aBase = matrixIndex(aBatch, z) * aRows * aCols;
    const bBase = matrixIndex(bBatch, z) * bRows * bCols;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          // op(A)[m, k] and op(B)[k, n] read from the stored (possibly transposed) layouts.
          const av = ta ? a.data[aBase + k * aCols + m]! : a.data[aBase + m * aCols + k]!;
          const bv = tb ? b.data[bBase + n * bCols + k]! : b.data[bBase + k * bCols + n]!;
          s += av * bv;
        }
        // Bias is added once per output element, after the sum.
        if (options.bias) s += options.bias[n]!;
        out[(z * M + m) * N + n] = s;
      }
    }
  }
  return { data: out, shape: [...batch, M, N] };
}
