// d loss / d logits for each row: gr * (softmax(x) - onehot(target)), softmax from the saved
// logsumexp. gr is the row's share of the incoming gradient (g[r], g, or g / count for the mean);
// 0 for ignored rows, NaN for out-of-range targets.
{{PRELUDE}}
struct Params { rows: u32, cols: u32, off_x: u32, off_t: u32, ignore: i32, off_g: u32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

fn row_grad(r: u32) -> f32 { return {{GR}}; }

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_of(wid, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_of(lid);
  let xb = p.off_x + r * p.cols;
  let db = r * p.cols;
  let n4 = p.cols / 4u;
  let t = ld_t(p.off_t + r);
  let lse = ld_lse(r);
  var gr = row_grad(r);
  var ti = NONE;
  if (t == p.ignore) { gr = 0.0; } else if (t < 0 || u32(t) >= p.cols) { gr = nan(); } else { ti = u32(t); }
  for (var j = lane; j < n4; j += LANES) {
    let e = 4u * j;
    let hot = vec4<f32>(vec4<bool>(e == ti, e + 1u == ti, e + 2u == ti, e + 3u == ti));
    st4_dx(db + e, gr * (exp(ld4_x(xb + e) - lse) - hot));
  }
  for (var k = 4u * n4 + lane; k < p.cols; k += LANES) {
    st_dx(db + k, gr * (exp(ld_x(xb + k) - lse) - select(0.0, 1.0, k == ti)));
  }
}
