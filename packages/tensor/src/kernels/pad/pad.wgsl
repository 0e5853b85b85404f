// Constant padding (and cropping, for negative widths) of a strided view: each output element
// maps back to x at c - before[d] in every dim; outside x it takes the fill value.
// One kernel serves forward and backward: the gradient is pad(g, -widths, 0).
{{ENABLE}}
@group(0) @binding(0) var<storage, read> x: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> y: array<{{T}}>;

struct Params {
  n: u32,
  rank: u32,
  xoff: u32,
  value: u32,   // fill value bits, as the element type (f16 travels as f32 bits)
  shape: array<vec4<u32>, 2>,    // y's shape
  xshape: array<vec4<u32>, 2>,
  before: array<vec4<i32>, 2>,   // may be negative (crop)
  xstride: array<vec4<u32>, 2>,
};
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= p.n) { return; }
  var rest = i;
  var a = p.xoff;
  var inside = true;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let q = u32(d) / 4u;
    let r = u32(d) % 4u;
    let extent = p.shape[q][r];
    let c = i32(rest % extent) - p.before[q][r];
    rest = rest / extent;
    inside = inside && c >= 0 && c < i32(p.xshape[q][r]);
    a += u32(max(c, 0)) * p.xstride[q][r];
  }
  if (inside) { y[i] = x[a]; } else { y[i] = {{FILL}}; }
}
