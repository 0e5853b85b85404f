// Unpacks bf16 checkpoint data on the GPU. The host uploads the raw 16-bit patterns two per u32
// (element 2k in the low half, little-endian) and this kernel widens them. A bf16 is the high half
// of an f32, so the f32 result is a shift: exact, NaN payloads and subnormals kept. The f16 result
// rounds that f32 to nearest-even on the bits (no float ops: a driver may flush subnormals or
// round its own way), matching safetensors/half.ts f32BitsToF16Bits bit for bit.
// Both outputs are written as u32 words: f32 one per element, f16 two per word.
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;

struct Params { n: u32, to_f16: u32 };   // n: elements in this chunk
@group(0) @binding(2) var<uniform> p: Params;

fn f32_to_f16_bits(x: u32) -> u32 {
  let sign = (x >> 16u) & 0x8000u;
  let e = (x >> 23u) & 0xffu;
  let mant = x & 0x7fffffu;
  if (e == 0xffu) {
    // inf stays inf; NaN stays a quiet NaN with the top payload bits.
    return select(sign | 0x7e00u | (mant >> 13u), sign | 0x7c00u, mant == 0u);
  }
  let he = i32(e) - 112;   // rebias 127 -> 15
  if (he >= 0x1f) { return sign | 0x7c00u; }
  if (he <= 0) {
    // Subnormal f16 (or zero): shift the full mantissa down, round half to even.
    if (he < -10) { return sign; }
    let m = mant | 0x800000u;
    let shift = u32(14 - he);
    var h = m >> shift;
    let rem = m & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (h & 1u) == 1u)) { h++; }
    return sign | h;
  }
  var h = sign | (u32(he) << 10u) | (mant >> 13u);
  let rem = mant & 0x1fffu;
  // A carry may roll into the exponent (or to inf): that is the correct rounding.
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)) { h++; }
  return h;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (p.to_f16 == 0u) {
    if (i >= p.n) { return; }
    let w = src[i >> 1u];
    let b = select(w >> 16u, w & 0xffffu, (i & 1u) == 0u);
    dst[i] = b << 16u;
  } else {
    // One invocation per output word: elements 2i and 2i + 1.
    if (2u * i >= p.n) { return; }
    let w = src[i];
    let lo = f32_to_f16_bits((w & 0xffffu) << 16u);
    let hi = select(0u, f32_to_f16_bits(w & 0xffff0000u), 2u * i + 1u < p.n);
    dst[i] = lo | (hi << 16u);
  }
}
