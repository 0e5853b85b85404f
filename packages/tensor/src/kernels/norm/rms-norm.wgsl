// RMSNorm over rows of a contiguous [rows, D] view in one kernel, as Mistral computes it:
//   y = w * T(x * rsqrt(mean(x²) + eps))   with f32 math and T the storage type,
// so f16 activations round once before the weight, like HF's `weight * hidden.to(input_dtype)`.
// rstd is kept per row for the backward.
{{PRELUDE}}
struct Params { rows: u32, cols: u32, off_x: u32, off_w: u32, eps: f32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

fn round_t(v: vec4<f32>) -> vec4<f32> { return vec4<f32>(vec4<{{T}}>(v)); }

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_of(wid, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_of(lid);
  let xb = p.off_x + r * p.cols;
  let yb = r * p.cols;
  let n4 = p.cols / 4u;
  var s4 = vec4<f32>();
  for (var j = lane; j < n4; j += LANES) { let q = ld4_x(xb + 4u * j); s4 += q * q; }
  var s = (s4.x + s4.y) + (s4.z + s4.w);
  for (var k = 4u * n4 + lane; k < p.cols; k += LANES) { let q = ld_x(xb + k); s += q * q; }
  let rstd = inverseSqrt(red_sum(s, lane) / f32(p.cols) + p.eps);
  for (var j = lane; j < n4; j += LANES) {
    let e = 4u * j;
    st4_y(yb + e, round_t(ld4_x(xb + e) * rstd) * ld4_w(p.off_w + e));
  }
  for (var k = 4u * n4 + lane; k < p.cols; k += LANES) {
    st_y(yb + k, round_t(vec4<f32>(ld_x(xb + k) * rstd)).x * ld_w(p.off_w + k));
  }
  if (lane == 0u) { st_rstd(r, rstd); }
}
