// Backward of softmax / log-softmax over rows, from the saved output y and the incoming g:
//   softmax:     dx = y * (g - Σ g·y)
//   log-softmax: dx = g - exp(y) * Σ g
{{PRELUDE}}
const LOG: bool = {{LOG}};
struct Params { rows: u32, cols: u32, off_y: u32, off_g: u32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_of(wid, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_of(lid);
  let yb = p.off_y + r * p.cols;
  let gb = p.off_g + r * p.cols;
  let db = r * p.cols;
  let n4 = p.cols / 4u;
  var a4 = vec4<f32>();
  for (var j = lane; j < n4; j += LANES) {
    let g = ld4_g(gb + 4u * j);
    if (LOG) { a4 += g; } else { a4 += g * ld4_y(yb + 4u * j); }
  }
  var a = (a4.x + a4.y) + (a4.z + a4.w);
  for (var k = 4u * n4 + lane; k < p.cols; k += LANES) {
    let g = ld_g(gb + k);
    if (LOG) { a += g; } else { a += g * ld_y(yb + k); }
  }
  a = red_sum(a, lane);
  for (var j = lane; j < n4; j += LANES) {
    let g = ld4_g(gb + 4u * j);
    let y = ld4_y(yb + 4u * j);
    if (LOG) { st4_dx(db + 4u * j, g - exp(y) * a); } else { st4_dx(db + 4u * j, y * (g - a)); }
  }
  for (var k = 4u * n4 + lane; k < p.cols; k += LANES) {
    let g = ld_g(gb + k);
    let y = ld_y(yb + k);
    if (LOG) { st_dx(db + k, g - exp(y) * a); } else { st_dx(db + k, y * (g - a)); }
  }
}
