// Shared by every attention kernel: the parameter block, the mask rules and the key/query
// ranges. The launcher prepends this file to each kernel source and rewrites the `const`
// lines below for the head dim and block sizes (WGSL has no includes and private arrays
// need constant sizes).

const HEAD_DIM: u32 = 64u;  // private array capacity: D itself, or a bucket >= D (see dim())
const BLOCK: u32 = 64u;     // invocations per workgroup = rows owned by one workgroup
const TILE: u32 = 32u;      // rows per workgroup-memory tile (tiled entry points)
const CHUNK: u32 = 8u;      // scores kept in registers between two rescales (row entry points)
const SG: u32 = 8u;         // subgroup size (subgroup entry points)

// Loop bounds. With UNIFORM_BOUNDS they come from the uniform block, so the shader compiler
// cannot unroll them: lavapipe otherwise spends seconds to minutes unrolling attention loops,
// and one pipeline then serves every D up to HEAD_DIM. Without it they are constants, so GPU
// compilers unroll them and keep the private arrays in registers.
const UNIFORM_BOUNDS: bool = false;
fn dim() -> u32 {
  if (UNIFORM_BOUNDS) { return P.D; }
  return HEAD_DIM;
}
fn tile_rows() -> u32 {
  if (UNIFORM_BOUNDS) { return P.tileRows; }
  return TILE;
}

// Storage type of q, k, v, o and the gradients: f32, or f16 (the launcher then also emits
// `enable f16;`). Arithmetic is f32 throughout.
alias elt = f32;

// A score at or below this is a masked pair. Kept finite on purpose: WGSL lets compilers
// assume no infinities, so the kernels never compute with -inf (an additive mask may hold
// -inf or torch.finfo.min; both land here).
const MASK_LIMIT: f32 = -1.0e30;
const NEG_BIG: f32 = -3.0e38;
const LSE_EMPTY: u32 = 0xff800000u; // -inf bits: logsumexp of a fully masked row

const FLAG_CAUSAL: u32 = 1u;
const FLAG_KEY_PAD: u32 = 2u;
const FLAG_KEY_PAD_FLOAT: u32 = 4u; // key padding words are f32 (else i32/u32): -0.0 counts as 0
const FLAG_BIAS: u32 = 8u;
const FLAG_BIAS_BOOL: u32 = 16u;    // full mask words are booleans (non-zero = keep), else additive f32

// Mirrors PARAM_FIELDS in attention.ts, field for field. Strides and offsets are in elements.
struct Params {
  B: u32, Hq: u32, Hkv: u32, Tq: u32,
  Tk: u32, group: u32, window: u32, flags: u32,
  scale: f32, kpOff: u32, kpsB: u32, kpsK: u32,
  biasOff: u32, bsB: u32, bsH: u32, bsQ: u32,
  bsK: u32, qOff: u32, kOff: u32, vOff: u32,
  oOff: u32, doOff: u32, lseOff: u32, pad2: u32,
  qsB: u32, qsH: u32, qsT: u32, qsD: u32,
  ksB: u32, ksH: u32, ksT: u32, ksD: u32,
  vsB: u32, vsH: u32, vsT: u32, vsD: u32,
  osB: u32, osH: u32, osT: u32, osD: u32,
  dosB: u32, dosH: u32, dosT: u32, dosD: u32,
  D: u32, tileRows: u32, pad0: u32, pad1: u32,
}

// Absolute position of query row i: queries are the last Tq of Tk positions (KV-cache decode).
fn query_pos(i: u32) -> i32 {
  return i32(P.Tk) - i32(P.Tq) + i32(i);
}

// Keys [lo, hi) that causality and the sliding window allow for a query at position pos.
fn key_range(pos: i32) -> vec2<i32> {
  var lo = 0;
  var hi = i32(P.Tk);
  if ((P.flags & FLAG_CAUSAL) != 0u) { hi = min(hi, pos + 1); }
  if (P.window != 0u) { lo = max(lo, pos - i32(P.window) + 1); }
  return vec2<i32>(lo, max(hi, lo));
}

// Query rows [lo, hi) that may attend to key j (the inverse of key_range).
fn query_range(j: u32) -> vec2<i32> {
  let off = i32(P.Tk) - i32(P.Tq);
  var lo = 0;
  var hi = i32(P.Tq);
  if ((P.flags & FLAG_CAUSAL) != 0u) { lo = max(lo, i32(j) - off); }
  if (P.window != 0u) { hi = min(hi, i32(j) + i32(P.window) - off); }
  return vec2<i32>(lo, max(hi, lo));
}

// The additive term of pair (b, h, i, j) from the key padding and full masks, or NEG_BIG
// when either excludes it. Causality and the window are handled by the ranges above.
fn mask_term(b: u32, h: u32, i: u32, j: u32) -> f32 {
  if ((P.flags & FLAG_KEY_PAD) != 0u) {
    var w = masks[P.kpOff + b * P.kpsB + j * P.kpsK];
    if ((P.flags & FLAG_KEY_PAD_FLOAT) != 0u) { w = w & 0x7fffffffu; }
    if (w == 0u) { return NEG_BIG; }
  }
  if ((P.flags & FLAG_BIAS) != 0u) {
    let w = masks[P.biasOff + b * P.bsB + h * P.bsH + i * P.bsQ + j * P.bsK];
    if ((P.flags & FLAG_BIAS_BOOL) != 0u) {
      return select(NEG_BIG, 0.0, w != 0u);
    }
    let t = bitcast<f32>(w);
    return select(t, NEG_BIG, t <= MASK_LIMIT);
  }
  return 0.0;
}

fn q_at(b: u32, h: u32, i: u32, d: u32) -> u32 {
  return P.qOff + b * P.qsB + h * P.qsH + i * P.qsT + d * P.qsD;
}
fn k_at(b: u32, h: u32, j: u32, d: u32) -> u32 {
  return P.kOff + b * P.ksB + h * P.ksH + j * P.ksT + d * P.ksD;
}
fn v_at(b: u32, h: u32, j: u32, d: u32) -> u32 {
  return P.vOff + b * P.vsB + h * P.vsH + j * P.vsT + d * P.vsD;
}
fn o_at(b: u32, h: u32, i: u32, d: u32) -> u32 {
  return P.oOff + b * P.osB + h * P.osH + i * P.osT + d * P.osD;
}
fn do_at(b: u32, h: u32, i: u32, d: u32) -> u32 {
  return P.doOff + b * P.dosB + h * P.dosH + i * P.dosT + d * P.dosD;
}
