// Gradient of max over the middle axis of [outer, len, inner]: the output gradient goes to the
// recorded argmax of each output, zeros elsewhere. One invocation per input element.
{{PRELUDE}}
struct Params { outer: u32, len: u32, inner: u32, g_off: u32, idx_off: u32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = row_of(wid, nwg, lid);
  if (i >= p.outer * p.len * p.inner) { return; }
  let inner = i % p.inner;
  let k = (i / p.inner) % p.len;
  let o = (i / (p.len * p.inner)) * p.inner + inner;
  st_dx(i, select(0.0, ld_g(p.g_off + o), u32(ld_idx(p.idx_off + o)) == k));
}
