// Textbook attention in float64: the truth the kernels are checked against. Plain loops over
// contiguous arrays; it materialises every score row, which the kernels must never do.

export interface AttentionRefShape {
  B: number;
  Hq: number;
  Hkv: number;
  Tq: number;
  Tk: number;
  D: number;
}

export interface AttentionRefOptions {
  /** Default 1 / sqrt(D). */
  scale?: number;
  /** Query i sits at absolute position Tk - Tq + i and sees keys j <= its position. */
  causal?: boolean;
  /** [B, Tk], non-zero = keep. */
  keyPaddingMask?: ArrayLike<number>;
  /** Key j is allowed iff pos_i - j < window (Mistral's sliding window). */
  window?: number;
  /** Full mask [B, maskHeads, Tq, Tk] with maskHeads 1 or Hq. */
  mask?: { data: ArrayLike<number>; heads: number; kind: "additive" | "boolean" };
}

/** Additive values at or below this mask the pair, as in the kernels (so -inf and finfo.min agree). */
export const MASK_LIMIT = -1e30;

export interface AttentionRefOutput {
  /** [B, Hq, Tq, D] */
  o: Float64Array;
  /** [B, Hq, Tq]; -Infinity for a row that sees no key. */
  lse: Float64Array;
}

export interface AttentionRefGrads {
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
}

/** The additive term of pair (b, h, i, j), or null when a mask excludes it. */
function pairTerm(
  s: AttentionRefShape,
  opts: AttentionRefOptions,
  b: number,
  h: number,
  i: number,
  j: number,
): number | null {
  const pos = s.Tk - s.Tq + i;
  if (opts.causal && j > pos) return null;
  if (opts.window && pos - j >= opts.window) return null;
  if (opts.keyPaddingMask && opts.keyPaddingMask[b * s.Tk + j] === 0) return null;
  if (opts.mask) {
    const m = opts.mask;
    const hm = m.heads === 1 ? 0 : h;
    const value = m.data[((b * m.heads + hm) * s.Tq + i) * s.Tk + j]!;
    if (m.kind === "boolean") return value !== 0 ? 0 : null;
    return value <= MASK_LIMIT ? null : value;
  }
  return 0;
}

/**
 * Softmax probabilities of one query row over all keys (0 where masked), and the row's
 * logsumexp. A row with no allowed key gets all zeros and -Infinity.
 */
function probabilityRow(
  s: AttentionRefShape,
  opts: AttentionRefOptions,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  b: number,
  h: number,
  i: number,
): { p: Float64Array; lse: number } {
  const { Hq, Hkv, Tq, Tk, D } = s;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const hk = Math.floor(h / (Hq / Hkv));
  const scores = new Float64Array(Tk).fill(Number.NEGATIVE_INFINITY);
  // Scores: scale * q_i . k_j plus the mask term.
  for (let j = 0; j < Tk; j++) {
    const term = pairTerm(s, opts, b, h, i, j);
    if (term === null) continue;
    let dot = 0;
    for (let d = 0; d < D; d++)
      dot += q[((b * Hq + h) * Tq + i) * D + d]! * k[((b * Hkv + hk) * Tk + j) * D + d]!;
    scores[j] = scale * dot + term;
  }
  // Softmax with the max subtracted.
  const max = Math.max(...scores);
  const p = new Float64Array(Tk);
  if (max === Number.NEGATIVE_INFINITY) return { p, lse: Number.NEGATIVE_INFINITY };
  let sum = 0;
  for (let j = 0; j < Tk; j++) {
    p[j] = Math.exp(scores[j]! - max);
    sum += p[j]!;
  }
  for (let j = 0; j < Tk; j++) p[j] /= sum;
  return { p, lse: max + Math.log(sum) };
}

/** o = softmax(scale * q k^T + mask) v per (batch, head, query row); q, k, v contiguous. */
export function attentionRef(
  s: AttentionRefShape,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  opts: AttentionRefOptions = {},
): AttentionRefOutput {
  const { B, Hq, Hkv, Tq, Tk, D } = s;
  const o = new Float64Array(B * Hq * Tq * D);
  const lse = new Float64Array(B * Hq * Tq);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const hk = Math.floor(h / (Hq / Hkv));
      for (let i = 0; i < Tq; i++) {
        const row = probabilityRow(s, opts, q, k, b, h, i);
        lse[(b * Hq + h) * Tq + i] = row.lse;
        // Weighted sum of value rows.
        for (let j = 0; j < Tk; j++) {
          const pj = row.p[j]!;
          if (pj === 0) continue;
          for (let d = 0; d < D; d++)
            o[((b * Hq + h) * Tq + i) * D + d] += pj * v[((b * Hkv + hk) * Tk + j) * D + d]!;
        }
      }
    }
  }
  return { o, lse };
}

/**
 * Gradients of sum(dout * o) by the hand-derived formulas, per row with P the probabilities:
 * dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dP * P)), dQ = scale dS K, dK = scale dS^T Q.
 * Under grouped-query attention dK and dV sum over the query heads sharing a KV head.
 */
export function attentionBackwardRef(
  s: AttentionRefShape,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dout: ArrayLike<number>,
  opts: AttentionRefOptions = {},
): AttentionRefGrads {
  const { B, Hq, Hkv, Tq, Tk, D } = s;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const dq = new Float64Array(B * Hq * Tq * D);
  const dk = new Float64Array(B * Hkv * Tk * D);
  const dv = new Float64Array(B * Hkv * Tk * D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const hk = Math.floor(h / (Hq / Hkv));
      for (let i = 0; i < Tq; i++) {
        const { p } = probabilityRow(s, opts, q, k, b, h, i);
        const qi = ((b * Hq + h) * Tq + i) * D;
        // dP_j = dO_i . v_j
        const dp = new Float64Array(Tk);
        for (let j = 0; j < Tk; j++) {
          const vj = ((b * Hkv + hk) * Tk + j) * D;
          for (let d = 0; d < D; d++) dp[j] += dout[qi + d]! * v[vj + d]!;
        }
        // Softmax Jacobian: dS_j = P_j (dP_j - sum_l P_l dP_l).
        let rowDot = 0;
        for (let j = 0; j < Tk; j++) rowDot += p[j]! * dp[j]!;
        for (let j = 0; j < Tk; j++) {
          const pj = p[j]!;
          if (pj === 0) continue;
          const ds = pj * (dp[j]! - rowDot);
          const kj = ((b * Hkv + hk) * Tk + j) * D;
          for (let d = 0; d < D; d++) {
            dv[kj + d] += pj * dout[qi + d]!;
            dq[qi + d] += scale * ds * k[kj + d]!;
            dk[kj + d] += scale * ds * q[qi + d]!;
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
