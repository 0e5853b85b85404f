// Rotary position embedding, HF Llama/Mistral "rotate_half" layout: within the first `rot` dims,
// dim i and dim i + rot/2 form a pair rotated by angle pos * inv_freq[i]; dims >= rot pass through.
//   y[i]         = x[i] * cos - x[i + half] * sin
//   y[i + half]  = x[i + half] * cos + x[i] * sin
// `sign` = -1 rotates backwards: the transpose, i.e. the backward pass.
// The angle is formed exactly as HF does in f32: freq = f32(pos) * inv_freq (one f32 rounding;
// inv_freq comes from the host, rounded like torch). cos/sin then use our own range reduction:
// builtin sin/cos may reduce large arguments (pos 4000 → 4000 rad) in plain f32 and lose ~1e-3.
{{ENABLE}}
@group(0) @binding(0) var<storage, read> x: array<{{T}}>;
@group(0) @binding(1) var<storage, read> positions: array<i32>;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<{{T}}>;

struct Params {
  n: u32,       // B * H * T * (half + D - rot)
  H: u32,
  T: u32,
  D: u32,
  half: u32,
  rot: u32,
  xoff: u32,
  poff: u32,
  xs: vec4<u32>,   // x strides for [B, H, T, D]
  ps_b: u32,       // positions strides (0 when shared across the batch)
  ps_t: u32,
  sign: f32,
  _pad: u32,
};
@group(0) @binding(4) var<uniform> p: Params;

// (cos, sin) of an f32 argument to ~1 ulp for |a| < ~1e5: Cody–Waite reduction by pi/2 split
// into parts with few significant bits (k * part is exact for k < 2^16), then Cephes' minimax
// polynomials on [-pi/4, pi/4].
fn cos_sin(a: f32) -> vec2<f32> {
  let kf = round(a * 0.6366197723675814);
  var r = a - kf * 1.5703125;
  r = r - kf * 0.0004825592041015625;
  r = r - kf * 1.2665987014770508e-06;
  r = r - kf * 9.92093629470503e-10;
  let z = r * r;
  let s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
  let c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
  switch (i32(kf) & 3) {
    case 0: { return vec2<f32>(c, s); }
    case 1: { return vec2<f32>(-s, c); }
    case 2: { return vec2<f32>(-c, -s); }
    default: { return vec2<f32>(s, -c); }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (idx >= p.n) { return; }
  let width = p.half + p.D - p.rot;
  let j = idx % width;
  let row = idx / width;           // (b, h, t) flattened
  let t = row % p.T;
  let h = (row / p.T) % p.H;
  let b = row / (p.T * p.H);
  let xb = p.xoff + b * p.xs.x + h * p.xs.y + t * p.xs.z;
  let yb = row * p.D;
  if (j >= p.half) {
    let d = p.rot + j - p.half;
    y[yb + d] = x[xb + d * p.xs.w];
    return;
  }
  let pos = positions[p.poff + b * p.ps_b + t * p.ps_t];
  let cs = cos_sin(f32(pos) * inv_freq[j]);
  let sn = cs.y * p.sign;
  let x1 = f32(x[xb + j * p.xs.w]);
  let x2 = f32(x[xb + (j + p.half) * p.xs.w]);
  y[yb + j] = {{T}}(x1 * cs.x - x2 * sn);
  y[yb + j + p.half] = {{T}}(x2 * cs.x + x1 * sn);
}
