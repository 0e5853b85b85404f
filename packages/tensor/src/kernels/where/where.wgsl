// where(cond, a, b) with numpy broadcasting over all three: every operand is read through its own
// shape-aligned strides (0 on broadcast dims), so expand/transpose/narrow views need no copy.
// cond of any dtype: non-zero selects a. A float cond is tested on its bits without the sign, so
// NaN counts as true and -0 as false whatever the compiler does with unordered compares. a or b may be a scalar from the uniform
// block (the A/B placeholders below expand to a load or to that scalar).
{{ENABLE}}
{{BINDINGS}}

struct Params {
  n: u32,
  rank: u32,
  off_c: u32,
  off_a: u32,
  off_b: u32,
  scalar_a: u32,   // bits of a scalar a / b in the element type (f16 as f32 bits)
  scalar_b: u32,
  _pad: u32,
  shape: array<vec4<u32>, 2>,
  stride_c: array<vec4<u32>, 2>,
  stride_a: array<vec4<u32>, 2>,
  stride_b: array<vec4<u32>, 2>,
};
@group(0) @binding({{PARAMS}}) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= p.n) { return; }
  var rest = i;
  var ic = p.off_c;
  var ia = p.off_a;
  var ib = p.off_b;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let q = u32(d) / 4u;
    let r = u32(d) % 4u;
    let extent = p.shape[q][r];
    let c = rest % extent;
    rest = rest / extent;
    ic += c * p.stride_c[q][r];
    ia += c * p.stride_a[q][r];
    ib += c * p.stride_b[q][r];
  }
  let take_a = {{TEST}};
  if (take_a) { y[i] = {{A}}; } else { y[i] = {{B}}; }
}
