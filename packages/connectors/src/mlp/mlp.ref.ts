// The MLP connector in plain f64 loops: the truth its GPU path and gradients are checked against.

export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

/** y[r, o] = b[o] + Σ_i W[o, i] x[r, i] with W stored [out, in]. */
export function linearRef(
  x: Float64Array,
  rows: number,
  w: Float64Array,
  b: Float64Array | null,
  inF: number,
  outF: number,
): Float64Array {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < inF; i++) s += w[o * inF + i]! * x[r * inF + i]!;
      y[r * outF + o] = s;
    }
  return y;
}

export interface MlpRefShape {
  images: number;
  patches: number;
  dv: number;
  dh: number;
  dt: number;
  pool: number;
}

/** x [I, P, dv], mask [I, P] → [I, ceil(P/pool), dt]: masked mean per group, fc1, gelu_tanh, fc2, zero where a group is all padding. */
export function mlpConnectorRef(
  s: MlpRefShape,
  x: Float64Array,
  mask: Float64Array,
  w1: Float64Array,
  b1: Float64Array,
  w2: Float64Array,
  b2: Float64Array,
): Float64Array {
  const G = Math.ceil(s.patches / s.pool);
  const pooled = new Float64Array(s.images * G * s.dv);
  const count = new Float64Array(s.images * G);
  for (let n = 0; n < s.images; n++)
    for (let p = 0; p < s.patches; p++) {
      // only real patches contribute to their group
      if (!mask[n * s.patches + p]) continue;
      const g = n * G + Math.floor(p / s.pool);
      count[g]!++;
      for (let d = 0; d < s.dv; d++) pooled[g * s.dv + d]! += x[(n * s.patches + p) * s.dv + d]!;
    }
  // mean over the group's real patches
  for (let g = 0; g < s.images * G; g++)
    for (let d = 0; d < s.dv; d++) pooled[g * s.dv + d]! /= Math.max(count[g]!, 1);
  const h = linearRef(pooled, s.images * G, w1, b1, s.dv, s.dh).map(geluTanh);
  const y = linearRef(h, s.images * G, w2, b2, s.dh, s.dt);
  // tokens of all-padding groups are zero
  for (let g = 0; g < s.images * G; g++) if (!count[g]) y.fill(0, g * s.dt, (g + 1) * s.dt);
  return y;
}
