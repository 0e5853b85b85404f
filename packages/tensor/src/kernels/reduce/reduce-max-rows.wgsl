// Max and argmax over the innermost axis of a contiguous [rows, cols] view (chunked like
// reduce-sum-rows). Ties keep the first index, like torch.max(dim). In a second pass over partials,
// `idx_of` reads each partial's original column instead of its position.
{{PRELUDE}}
struct Params { rows: u32, cols: u32, chunks: u32, chunk_len: u32, off: u32, idx_off: u32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

{{IDX}}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let v = row_of(wid, nwg, lid);
  if (v >= p.rows * p.chunks) { return; }
  let lane = lane_of(lid);
  let start = (v % p.chunks) * p.chunk_len;
  let len = min(p.chunk_len, p.cols - start);
  let base = p.off + (v / p.chunks) * p.cols + start;
  let ibase = p.idx_off + (v / p.chunks) * p.cols + start;
  let n4 = len / 4u;
  var best = neg_inf();
  var bi = NONE;
  // Each lane visits its elements in increasing order, so a strict `>` keeps the first maximum.
  for (var j = lane; j < n4; j += LANES) {
    let q = ld4_x(base + 4u * j);
    let k = 4u * j;
    if (bi == NONE || q.x > best) { best = q.x; bi = idx_of(ibase + k, start + k); }
    if (q.y > best) { best = q.y; bi = idx_of(ibase + k + 1u, start + k + 1u); }
    if (q.z > best) { best = q.z; bi = idx_of(ibase + k + 2u, start + k + 2u); }
    if (q.w > best) { best = q.w; bi = idx_of(ibase + k + 3u, start + k + 3u); }
  }
  for (var k = 4u * n4 + lane; k < len; k += LANES) {
    let q = ld_x(base + k);
    if (bi == NONE || q > best) { best = q; bi = idx_of(ibase + k, start + k); }
  }
  let r = red_argmax(best, bi, lane);
  if (lane == 0u) {
    st_y(v, bitcast<f32>(r.x));
    st_yi(v, i32(r.y));
  }
}
