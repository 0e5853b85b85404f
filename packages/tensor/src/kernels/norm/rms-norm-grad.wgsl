// dx of RMSNorm, one row at a time, with xhat = x * rstd and gw = g * w:
//   dx = rstd * (gw - xhat * mean(gw * xhat))
{{PRELUDE}}
struct Params { rows: u32, cols: u32, off_x: u32, off_g: u32, off_w: u32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_of(wid, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_of(lid);
  let xb = p.off_x + r * p.cols;
  let gb = p.off_g + r * p.cols;
  let db = r * p.cols;
  let n4 = p.cols / 4u;
  let rstd = ld_rstd(r);
  var b4 = vec4<f32>();
  for (var j = lane; j < n4; j += LANES) {
    let e = 4u * j;
    b4 += ld4_g(gb + e) * ld4_w(p.off_w + e) * ld4_x(xb + e);
  }
  var b = (b4.x + b4.y) + (b4.z + b4.w);
  for (var k = 4u * n4 + lane; k < p.cols; k += LANES) { b += ld_g(gb + k) * ld_w(p.off_w + k) * ld_x(xb + k); }
  // mean(gw * xhat) * rstd = Σ(gw * x) * rstd² / D
  b = red_sum(b, lane) * rstd * rstd / f32(p.cols);
  for (var j = lane; j < n4; j += LANES) {
    let e = 4u * j;
    st4_dx(db + e, rstd * (ld4_g(gb + e) * ld4_w(p.off_w + e) - ld4_x(xb + e) * b));
  }
  for (var k = 4u * n4 + lane; k < p.cols; k += LANES) {
    st_dx(db + k, rstd * (ld_g(gb + k) * ld_w(p.off_w + k) - ld_x(xb + k) * b));
  }
}
