// Max and argmax over the middle axis of a contiguous [outer, len, inner] view, one invocation per
// output (chunked like reduce-sum-strided). Ties keep the first index.
{{PRELUDE}}
struct Params { outer: u32, len: u32, inner: u32, chunks: u32, chunk_len: u32, off: u32, idx_off: u32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

{{IDX}}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let v = row_of(wid, nwg, lid);
  let outs = p.outer * p.inner;
  if (v >= outs * p.chunks) { return; }
  let o = v % outs;
  let start = (v / outs) * p.chunk_len;
  let n = min(p.chunk_len, p.len - start);
  let rel = (o / p.inner) * p.len * p.inner + start * p.inner + o % p.inner;
  var best = neg_inf();
  var bi = NONE;
  for (var k = 0u; k < n; k++) {
    let q = ld_x(p.off + rel + k * p.inner);
    if (bi == NONE || q > best) { best = q; bi = idx_of(p.idx_off + rel + k * p.inner, start + k); }
  }
  st_y(v, best);
  st_yi(v, i32(bi));
}
