// Strided n-ary elementwise map: out[view] = EXPR(a[view], b[view]).
// Every operand is addressed through its own shape-aligned strides and offset, so broadcasting
// (stride 0), transposes and slices need no copy. Placeholders {{...}} are filled by elementwise-shader.ts.
{{ENABLE}}
{{BINDINGS}}

struct Params {
  n: u32,
  rank: u32,
  off_a: u32,
  off_b: u32,
  off_o: u32,
  alpha: f32,
  beta: f32,
  _pad: u32,
  shape: array<vec4<u32>, 2>,
  stride_a: array<vec4<u32>, 2>,
  stride_b: array<vec4<u32>, 2>,
  stride_o: array<vec4<u32>, 2>,
};
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= p.n) { return; }
  var ia = p.off_a + i;
  var ib = p.off_b + i;
  var io = p.off_o + i;
  if ({{STRIDED}}) {
    // Peel coordinates from the innermost dim outward and map them through each operand's strides.
    var rest = i;
    ia = p.off_a;
    ib = p.off_b;
    io = p.off_o;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
      let q = u32(d) / 4u;
      let r = u32(d) % 4u;
      let extent = p.shape[q][r];
      let c = rest % extent;
      rest = rest / extent;
      ia += c * p.stride_a[q][r];
      ib += c * p.stride_b[q][r];
      io += c * p.stride_o[q][r];
    }
  }
  let alpha = p.alpha;
  let beta = p.beta;
  {{BODY}}
}
