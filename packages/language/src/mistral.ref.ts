// The Mistral decoder in plain f64 loops, following HF's eager code step by step: the truth for
// random-weight tests (sliding window, GQA, tied head) that the HF fixture does not cover.
import type { MistralConfig } from "./config.js";

export interface RefLayer {
  q: Float64Array; // [hq·d, H]  (PyTorch [out, in])
  k: Float64Array; // [hkv·d, H]
  v: Float64Array; // [hkv·d, H]
  o: Float64Array; // [H, hq·d]
  gate: Float64Array; // [I, H]
  up: Float64Array; // [I, H]
  down: Float64Array; // [H, I]
  inputNorm: Float64Array; // [H]
  postNorm: Float64Array; // [H]
}

export interface RefWeights {
  embed: Float64Array; // [V, H]
  layers: RefLayer[];
  norm: Float64Array; // [H]
  lmHead: Float64Array; // [V, H] (embed when tied)
}

/** y[n, out] = x[n, in] · W[out, in]ᵀ */
function linear(x: Float64Array, n: number, w: Float64Array, inF: number, outF: number): Float64Array {
  const y = new Float64Array(n * outF);
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < outF; o++) {
      let s = 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i]! * w[o * inF + i]!;
      y[r * outF + o] = s;
    }
  }
  return y;
}

/** x · rsqrt(mean(x²) + eps) · weight, per row. */
function rmsNorm(x: Float64Array, n: number, H: number, w: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(n * H);
  for (let r = 0; r < n; r++) {
    let ss = 0;
    for (let i = 0; i < H; i++) ss += x[r * H + i]! ** 2;
    const inv = 1 / Math.sqrt(ss / H + eps);
    for (let i = 0; i < H; i++) y[r * H + i] = x[r * H + i]! * inv * w[i]!;
  }
  return y;
}

function act(x: number, name: string): number {
  if (name === "silu") return x / (1 + Math.exp(-x));
  if (name === "relu") return Math.max(0, x);
  throw new Error(`ref: activation ${name} not in the reference`);
}

/** Rotate-half RoPE of one head vector in place: pairs (i, i + d/2) turn by pos · theta^(-2i/d). */
function rope(v: Float64Array, off: number, d: number, pos: number, theta: number): void {
  const half = d / 2;
  for (let i = 0; i < half; i++) {
    const ang = pos / theta ** ((2 * i) / d);
    const c = Math.cos(ang);
    const s = Math.sin(ang);
    const a = v[off + i]!;
    const b = v[off + i + half]!;
    v[off + i] = a * c - b * s;
    v[off + i + half] = b * c + a * s;
  }
}

/**
 * Full forward of `embeds` [B, T, H] with mask [B, T] and positions [B, T]. Key j is visible to
 * query i when j <= i, mask[j] = 1 and (no window or i - j < window). Rows that see no key get
 * zero attention (they are padding; callers compare real tokens only). Returns each layer's
 * output, the final-norm hidden states and the logits.
 */
export function mistralRef(
  cfg: MistralConfig,
  w: RefWeights,
  embeds: Float64Array,
  B: number,
  T: number,
  mask: ArrayLike<number>,
  positions: ArrayLike<number>,
): { layers: Float64Array[]; hidden: Float64Array; logits: Float64Array } {
  const {
    hidden_size: H,
    num_attention_heads: hq,
    num_key_value_heads: hkv,
    head_dim: d,
    intermediate_size: I,
  } = cfg;
  const n = B * T;
  let x = Float64Array.from(embeds);
  const outs: Float64Array[] = [];
  for (const L of w.layers) {
    // Attention block on the normed stream.
    const xn = rmsNorm(x, n, H, L.inputNorm, cfg.rms_norm_eps);
    const q = linear(xn, n, L.q, H, hq * d);
    const k = linear(xn, n, L.k, H, hkv * d);
    const v = linear(xn, n, L.v, H, hkv * d);
    for (let r = 0; r < n; r++) {
      for (let h = 0; h < hq; h++) rope(q, r * hq * d + h * d, d, positions[r]!, cfg.rope_theta);
      for (let h = 0; h < hkv; h++) rope(k, r * hkv * d + h * d, d, positions[r]!, cfg.rope_theta);
    }
    const attn = new Float64Array(n * hq * d);
    const group = hq / hkv;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < hq; h++) {
        const kh = Math.floor(h / group); // repeat_kv
        for (let i = 0; i < T; i++) {
          const qi = (b * T + i) * hq * d + h * d;
          const scores: number[] = [];
          const keys: number[] = [];
          for (let j = 0; j <= i; j++) {
            if (!mask[b * T + j]) continue;
            if (cfg.sliding_window !== null && i - j >= cfg.sliding_window) continue;
            let s = 0;
            const kj = (b * T + j) * hkv * d + kh * d;
            for (let e = 0; e < d; e++) s += q[qi + e]! * k[kj + e]!;
            scores.push(s / Math.sqrt(d));
            keys.push(j);
          }
          if (!keys.length) continue;
          const m = Math.max(...scores);
          const p = scores.map((s) => Math.exp(s - m));
          const z = p.reduce((a, c) => a + c, 0);
          keys.forEach((j, t) => {
            const vj = (b * T + j) * hkv * d + kh * d;
            for (let e = 0; e < d; e++) attn[qi + e] += (p[t]! / z) * v[vj + e]!;
          });
        }
      }
    }
    const o = linear(attn, n, L.o, hq * d, H);
    const h1 = x.map((val, i) => val + o[i]!);
    // SwiGLU MLP block.
    const hn = rmsNorm(h1, n, H, L.postNorm, cfg.rms_norm_eps);
    const g = linear(hn, n, L.gate, H, I);
    const u = linear(hn, n, L.up, H, I);
    const gu = g.map((val, i) => act(val, cfg.hidden_act) * u[i]!);
    const dn = linear(gu, n, L.down, I, H);
    x = h1.map((val, i) => val + dn[i]!);
    outs.push(x);
  }
  const hidden = rmsNorm(x, n, H, w.norm, cfg.rms_norm_eps);
  const logits = linear(hidden, n, w.lmHead, H, cfg.vocab_size);
  return { layers: outs, hidden, logits };
}
