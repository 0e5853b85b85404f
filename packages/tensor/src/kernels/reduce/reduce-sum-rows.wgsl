// Sum over the innermost axis of a contiguous [rows, cols] view, times `scale`; f32 accumulation.
// A long row may be split into `chunks` pieces ("virtual rows" v = row * chunks + chunk), each
// written as one partial that a second pass reduces: this keeps every core busy when rows are few.
{{PRELUDE}}
struct Params { rows: u32, cols: u32, chunks: u32, chunk_len: u32, off: u32, scale: f32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let v = row_of(wid, nwg, lid);
  if (v >= p.rows * p.chunks) { return; }
  let lane = lane_of(lid);
  let start = (v % p.chunks) * p.chunk_len;
  let len = min(p.chunk_len, p.cols - start);
  let base = p.off + (v / p.chunks) * p.cols + start;
  let n4 = len / 4u;
  // Two vec4 accumulators halve the dependency chain on the adds.
  var a = vec4<f32>();
  var b = vec4<f32>();
  var j = lane;
  for (; j + LANES < n4; j += 2u * LANES) {
    a += ld4_x(base + 4u * j);
    b += ld4_x(base + 4u * (j + LANES));
  }
  if (j < n4) { a += ld4_x(base + 4u * j); }
  a += b;
  var s = (a.x + a.y) + (a.z + a.w);
  for (var k = 4u * n4 + lane; k < len; k += LANES) { s += ld_x(base + k); }
  s = red_sum(s, lane);
  if (lane == 0u) { st_y(v, s * p.scale); }
}
