// Fused log-softmax + NLL per row of logits [N, V]: loss = logsumexp(x) - x[target], computed
// after subtracting the row max. Rows whose target is ignore_index get loss 0; a target outside
// [0, V) gets NaN (a shader cannot throw). logsumexp is kept per row for the backward.
{{PRELUDE}}
struct Params { rows: u32, cols: u32, off_x: u32, off_t: u32, ignore: i32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = row_of(wid, nwg, lid);
  if (r >= p.rows) { return; }
  let lane = lane_of(lid);
  let xb = p.off_x + r * p.cols;
  let n4 = p.cols / 4u;
  // 1. Row max and Σ exp(x - max) in one read (online rescaling).
  var ms = vec2<f32>(neg_inf(), 0.0);
  for (var j = lane; j < n4; j += LANES) { ms = online4(ms, ld4_x(xb + 4u * j)); }
  for (var k = 4u * n4 + lane; k < p.cols; k += LANES) { ms = online1(ms, ld_x(xb + k)); }
  ms = online_merge(ms, lane);
  let m = ms.x;
  let s = ms.y;
  let lse = m + log(s);
  if (lane == 0u) {
    let t = ld_t(p.off_t + r);
    var loss = 0.0;
    if (t != p.ignore) {
      if (t < 0 || u32(t) >= p.cols) { loss = nan(); } else { loss = lse - ld_x(xb + u32(t)); }
    }
    st_loss(r, loss);
    st_lse(r, lse);
  }
}
