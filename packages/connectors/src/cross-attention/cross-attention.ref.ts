// One gated cross-attention block in plain f64 loops: the truth its GPU path and gradients are checked against.
import { linearRef } from "../mlp/mlp.ref.js";

export interface XattnRefShape {
  batch: number;
  T: number;
  M: number;
  D: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  inter: number;
  eps: number;
}

function rmsNormRef(x: Float64Array, rows: number, D: number, w: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(rows * D);
  for (let r = 0; r < rows; r++) {
    // x · rsqrt(mean(x²) + eps) · weight
    let ss = 0;
    for (let d = 0; d < D; d++) ss += x[r * D + d]! ** 2;
    const inv = 1 / Math.sqrt(ss / D + eps);
    for (let d = 0; d < D; d++) y[r * D + d] = x[r * D + d]! * inv * w[d]!;
  }
  return y;
}

const silu = (v: number) => v / (1 + Math.exp(-v));

/**
 * x [B, T, D], media [B, M, D], mediaMask [B, M] and the block's weights (HF layout [out, in]) →
 * x + tanh(attn_gate)·o_proj(attn(q(norm x), k(media), v(media))) then + tanh(ff_gate)·mlp(norm h).
 */
export function gatedXattnRef(
  s: XattnRefShape,
  x: Float64Array,
  media: Float64Array,
  mediaMask: Float64Array,
  [ln1, wq, wk, wv, wo, attnGate, ln2, wg, wu, wd, ffGate]: Float64Array[],
): Float64Array {
  const { batch: B, T, M, D, heads: H, kvHeads: Hkv, headDim: hd, inter, eps } = s;
  const xn = rmsNormRef(x, B * T, D, ln1!, eps);
  const q = linearRef(xn, B * T, wq!, null, D, H * hd);
  const k = linearRef(media, B * M, wk!, null, D, Hkv * hd);
  const v = linearRef(media, B * M, wv!, null, D, Hkv * hd);
  const o = new Float64Array(B * T * H * hd);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / (H / Hkv)); // grouped-query head
      for (let t = 0; t < T; t++) {
        // softmax over real media tokens only; a row with none outputs 0
        const scores: number[] = [];
        let mx = Number.NEGATIVE_INFINITY;
        for (let m = 0; m < M; m++) {
          if (!mediaMask[b * M + m]) {
            scores.push(Number.NEGATIVE_INFINITY);
            continue;
          }
          let sc = 0;
          for (let d = 0; d < hd; d++)
            sc += q[(b * T + t) * H * hd + h * hd + d]! * k[(b * M + m) * Hkv * hd + kh * hd + d]!;
          sc /= Math.sqrt(hd);
          scores.push(sc);
          mx = Math.max(mx, sc);
        }
        if (mx === Number.NEGATIVE_INFINITY) continue;
        const p = scores.map((sc) => Math.exp(sc - mx));
        const z = p.reduce((a, c) => a + c, 0);
        for (let m = 0; m < M; m++)
          for (let d = 0; d < hd; d++)
            o[(b * T + t) * H * hd + h * hd + d]! += (p[m]! / z) * v[(b * M + m) * Hkv * hd + kh * hd + d]!;
      }
    }
  const attn = linearRef(o, B * T, wo!, null, H * hd, D);
  const ga = Math.tanh(attnGate![0]!);
  const h1 = x.map((xv, i) => xv + ga * attn[i]!);
  const hn = rmsNormRef(h1, B * T, D, ln2!, eps);
  const g = linearRef(hn, B * T, wg!, null, D, inter);
  const u = linearRef(hn, B * T, wu!, null, D, inter);
  const mlp = linearRef(
    g.map((gv, i) => silu(gv) * u[i]!),
    B * T,
    wd!,
    null,
    inter,
    D,
  );
  const gf = Math.tanh(ffGate![0]!);
  return h1.map((hv, i) => hv + gf * mlp[i]!);
}
