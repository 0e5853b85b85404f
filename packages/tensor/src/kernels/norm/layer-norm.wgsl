// LayerNorm over rows of a contiguous [rows, D] view in one kernel, f32 math:
//   y = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var + eps)  (biased variance, like torch)
// The variance is a second pass over (x - mean)², which stays accurate when |mean| >> std.
// mean and rstd are kept per row for the backward.
{{PRELUDE}}
struct Params { rows: u32, cols: u32, off_x: u32, off_w: u32, off_b: u32, eps: f32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_of(wid, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_of(lid);
  let xb = p.off_x + r * p.cols;
  let yb = r * p.cols;
  let n4 = p.cols / 4u;
  let inv_d = 1.0 / f32(p.cols);
  var s4 = vec4<f32>();
  for (var j = lane; j < n4; j += LANES) { s4 += ld4_x(xb + 4u * j); }
  var s = (s4.x + s4.y) + (s4.z + s4.w);
  for (var k = 4u * n4 + lane; k < p.cols; k += LANES) { s += ld_x(xb + k); }
  let mean = red_sum(s, lane) * inv_d;
  var v4 = vec4<f32>();
  for (var j = lane; j < n4; j += LANES) { let d = ld4_x(xb + 4u * j) - mean; v4 += d * d; }
  var v = (v4.x + v4.y) + (v4.z + v4.w);
  for (var k = 4u * n4 + lane; k < p.cols; k += LANES) { let d = ld_x(xb + k) - mean; v += d * d; }
  let rstd = inverseSqrt(red_sum(v, lane) * inv_d + p.eps);
  for (var j = lane; j < n4; j += LANES) {
    let e = 4u * j;
    st4_y(yb + e, (ld4_x(xb + e) - mean) * rstd * ld4_w(p.off_w + e) + ld4_b(p.off_b + e));
  }
  for (var k = 4u * n4 + lane; k < p.cols; k += LANES) {
    st_y(yb + k, (ld_x(xb + k) - mean) * rstd * ld_w(p.off_w + k) + ld_b(p.off_b + k));
  }
  if (lane == 0u) {
    st_mean(r, mean);
    st_rstd(r, rstd);
  }
}
