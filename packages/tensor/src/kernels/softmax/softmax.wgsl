// Softmax (or log-softmax when LOG) over rows of a contiguous [rows, cols] view, fused in one
// kernel. Subtract the row max first so exp() cannot overflow, whatever the logits' size. The row
// is read twice (max and normaliser together, then the output); the second read hits the cache.
// f32 math for any storage type. A row of only -inf gives NaN, like torch.
{{PRELUDE}}
const LOG: bool = {{LOG}};
struct Params { rows: u32, cols: u32, off_x: u32 };
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
  // 1. Row max and Σ exp(x - max) in one read (online rescaling).
  var ms = vec2<f32>(neg_inf(), 0.0);
  for (var j = lane; j < n4; j += LANES) { ms = online4(ms, ld4_x(xb + 4u * j)); }
  for (var k = 4u * n4 + lane; k < p.cols; k += LANES) { ms = online1(ms, ld_x(xb + k)); }
  ms = online_merge(ms, lane);
  let m = ms.x;
  let s = ms.y;
  // 2. Write exp(x - m) / s, or x - m - log(s).
  if (LOG) {
    let c = m + log(s);
    for (var j = lane; j < n4; j += LANES) { st4_y(yb + 4u * j, ld4_x(xb + 4u * j) - c); }
    for (var k = 4u * n4 + lane; k < p.cols; k += LANES) { st_y(yb + k, ld_x(xb + k) - c); }
  } else {
    let inv = 1.0 / s;
    for (var j = lane; j < n4; j += LANES) { st4_y(yb + 4u * j, exp(ld4_x(xb + 4u * j) - m) * inv); }
    for (var k = 4u * n4 + lane; k < p.cols; k += LANES) { st_y(yb + k, exp(ld_x(xb + k) - m) * inv); }
  }
}
