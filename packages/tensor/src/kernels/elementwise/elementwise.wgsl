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

// Each invocation maps PER elements, 256 apart, so a workgroup covers a contiguous run of
// 256·PER elements: few workgroups (lavapipe runs each one as a CPU task) and coalesced lanes on GPUs.
const PER: u32 = {{PER}}u;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let alpha = p.alpha;
  let beta = p.beta;
  if (!{{STRIDED}}) {
    let base = (wid.y * nwg.x + wid.x) * 256u * PER + lid;
    for (var k = 0u; k < PER; k++) {
      let i = base + k * 256u;
      if (i >= p.n) { return; }
      let ia = p.off_a + i;
      let ib = p.off_b + i;
      let io = p.off_o + i;
      {{BODY}}
    }
    return;
  }
  // Strided: PER consecutive elements per invocation. Divisions (slow on CPUs) happen once, to
  // find the first element's coordinates; the rest step the innermost coordinate with a carry.
  let first = ((wid.y * nwg.x + wid.x) * 256u + lid) * PER;
  if (first >= p.n) { return; }
  var coord: array<u32, 8>;
  var rest = first;
  var ia = p.off_a;
  var ib = p.off_b;
  var io = p.off_o;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let q = u32(d) / 4u;
    let r = u32(d) % 4u;
    let extent = p.shape[q][r];
    let c = rest % extent;
    rest = rest / extent;
    coord[d] = c;
    ia += c * p.stride_a[q][r];
    ib += c * p.stride_b[q][r];
    io += c * p.stride_o[q][r];
  }
  let last = p.rank - 1u;
  for (var k = 0u; k < PER; k++) {
    if (first + k >= p.n) { return; }
    {{BODY}}
    // Advance one element: bump the innermost coordinate, carrying outward.
    var d = i32(last);
    loop {
      let q = u32(d) / 4u;
      let r = u32(d) % 4u;
      coord[d] += 1u;
      ia += p.stride_a[q][r];
      ib += p.stride_b[q][r];
      io += p.stride_o[q][r];
      if (coord[d] < p.shape[q][r] || d == 0) { break; }
      ia -= coord[d] * p.stride_a[q][r];
      ib -= coord[d] * p.stride_b[q][r];
      io -= coord[d] * p.stride_o[q][r];
      coord[d] = 0u;
      d -= 1;
    }
  }
}
