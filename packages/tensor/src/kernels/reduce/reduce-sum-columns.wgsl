// Sum over the middle axis of a contiguous [outer, len, inner] view when inner is a multiple of 4:
// each invocation owns U adjacent vec4 columns and a chunk of the axis, so on a CPU (lavapipe) it
// issues U independent loads per step down the axis instead of one, and the sweep down a column
// strip stays short enough to stay in cache. Output slot layout [chunks, outer, inner].
{{PRELUDE}}
const U: u32 = {{U}}u;
struct Params { outer: u32, len: u32, inner4: u32, chunks: u32, chunk_len: u32, off: u32, scale: f32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let v = row_of(wid, nwg, lid);
  let blocks = p.inner4 / U;
  let outs = p.outer * blocks;
  if (v >= outs * p.chunks) { return; }
  let c = v / outs;
  let o = (v % outs) / blocks;
  let b = ((v % outs) % blocks) * U;
  let start = c * p.chunk_len;
  let n = min(p.chunk_len, p.len - start);
  var a: array<vec4<f32>, U>;
  var e = p.off + 4u * ((o * p.len + start) * p.inner4 + b);
  for (var k = 0u; k < n; k++) {
    for (var u = 0u; u < U; u++) { a[u] += ld4_x(e + 4u * u); }
    e += 4u * p.inner4;
  }
  let dst = 4u * ((c * p.outer + o) * p.inner4 + b);
  for (var u = 0u; u < U; u++) { st4_y(dst + 4u * u, a[u] * p.scale); }
}
