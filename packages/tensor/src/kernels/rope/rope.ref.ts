// Plain-loop reference for rotary embedding (HF rotate_half layout), in f64; `f32Angles`
// reproduces HF's f32 rounding of inv_freq and freq (Math.fround at each torch f32 step).

export interface RopeRefOptions {
  theta: number;
  rotaryDim?: number;
  /** Round inv_freq and pos * inv_freq to f32 like HF's torch code; false = exact f64 angles. */
  f32Angles?: boolean;
  /** -1: inverse rotation. */
  sign?: number;
}

/** x contiguous [B, H, T, D]; positions [T] or [B, T] contiguous. */
export function ropeRef(
  x: ArrayLike<number>,
  [B, H, T, D]: readonly [number, number, number, number],
  positions: ArrayLike<number>,
  { theta, rotaryDim = D, f32Angles = true, sign = 1 }: RopeRefOptions,
): Float64Array {
  const half = rotaryDim / 2;
  const r = f32Angles ? Math.fround : (v: number) => v;
  // inv_freq[i] = 1 / theta^(2i / rot), each torch op rounded to f32 when emulating.
  const invFreq = Array.from({ length: half }, (_, i) => r(1 / r(theta ** r((2 * i) / rotaryDim))));
  const y = new Float64Array(B * H * T * D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const base = ((b * H + h) * T + t) * D;
        const pos = positions.length === T ? positions[t]! : positions[b * T + t]!;
        for (let i = 0; i < half; i++) {
          // Angle of pair (i, i + half); then rotate.
          const freq = r(pos * invFreq[i]!);
          const c = Math.cos(freq);
          const s = sign * Math.sin(freq);
          const x1 = x[base + i]!;
          const x2 = x[base + i + half]!;
          y[base + i] = x1 * c - x2 * s;
          y[base + i + half] = x2 * c + x1 * s;
        }
        // Dims past the rotary part pass through.
        for (let d = rotaryDim; d < D; d++) y[base + d] = x[base + d]!;
      }
  return y;
}
