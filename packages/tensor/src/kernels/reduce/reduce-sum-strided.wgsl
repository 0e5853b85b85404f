// Sum over the middle axis of a contiguous [outer, len, inner] view: one invocation per output, so
// neighbouring invocations read neighbouring memory. Chunked over the axis when outputs are few:
// output slot v = chunk * outer * inner + o.
{{PRELUDE}}
struct Params { outer: u32, len: u32, inner: u32, chunks: u32, chunk_len: u32, off: u32, scale: f32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let v = row_of(wid, nwg, lid);
  let outs = p.outer * p.inner;
  if (v >= outs * p.chunks) { return; }
  let o = v % outs;
  let start = (v / outs) * p.chunk_len;
  let n = min(p.chunk_len, p.len - start);
  let base = p.off + (o / p.inner) * p.len * p.inner + start * p.inner + o % p.inner;
  var a = 0.0;
  var b = 0.0;
  var k = 0u;
  for (; k + 1u < n; k += 2u) {
    a += ld_x(base + k * p.inner);
    b += ld_x(base + (k + 1u) * p.inner);
  }
  if (k < n) { a += ld_x(base + k * p.inner); }
  st_y(v, (a + b) * p.scale);
}
