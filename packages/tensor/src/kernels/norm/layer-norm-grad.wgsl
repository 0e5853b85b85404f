// dx of LayerNorm, one row at a time, with xhat = (x - mean) * rstd and gw = g * w:
//   dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat))
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
  let mean = ld_mean(r);
  let rstd = ld_rstd(r);
  var a4 = vec4<f32>();
  var b4 = vec4<f32>();
  for (var j = lane; j < n4; j += LANES) {
    let e = 4u * j;
    let gw = ld4_g(gb + e) * ld4_w(p.off_w + e);
    a4 += gw;
    b4 += gw * (ld4_x(xb + e) - mean) * rstd;
  }
  var a = (a4.x + a4.y) + (a4.z + a4.w);
  var b = (b4.x + b4.y) + (b4.z + b4.w);
  for (var k = 4u * n4 + lane; k < p.cols; k += LANES) {
    let gw = ld_g(gb + k) * ld_w(p.off_w + k);
    a += gw;
    b += gw * (ld_x(xb + k) - mean) * rstd;
  }
  let inv_d = 1.0 / f32(p.cols);
  a = red_sum(a, lane) * inv_d;
  b = red_sum(b, lane) * inv_d;
  for (var j = lane; j < n4; j += LANES) {
    let e = 4u * j;
    let gw = ld4_g(gb + e) * ld4_w(p.off_w + e);
    st4_dx(db + e, rstd * (gw - a - (ld4_x(xb + e) - mean) * rstd * b));
  }
  for (var k = 4u * n4 + lane; k < p.cols; k += LANES) {
    let gw = ld_g(gb + k) * ld_w(p.off_w + k);
    st_dx(db + k, rstd * (gw - a - (ld_x(xb + k) - mean) * rstd * b));
  }
}
