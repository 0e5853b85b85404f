// concat: copies up to four strided inputs into their slabs of a contiguous output in one pass.
// The output is viewed as [outer, total, inner] with `total` the extent along the concat dim; this
// dispatch covers the slab [base, base + width) of it, where inputs k = 0..count-1 sit side by side
// (input k spans [ends[k-1], ends[k]) of the slab). Every output element is written exactly once.
{{ENABLE}}
@group(0) @binding(0) var<storage, read> in0: array<{{T}}>;
@group(0) @binding(1) var<storage, read> in1: array<{{T}}>;
@group(0) @binding(2) var<storage, read> in2: array<{{T}}>;
@group(0) @binding(3) var<storage, read> in3: array<{{T}}>;
@group(0) @binding(4) var<storage, read_write> y: array<{{T}}>;

struct Params {
  n: u32,       // elements in this slab
  rank: u32,
  dim: u32,
  base: u32,    // slab start along dim
  total: u32,   // output extent along dim
  width: u32,   // slab extent along dim
  inner: u32,   // product of dims after dim
  count: u32,
  ends: vec4<u32>,
  offs: vec4<u32>,
  shape: array<vec4<u32>, 2>,               // slab shape (dim extent = width)
  strides: array<array<vec4<u32>, 2>, 4>,   // per input
};
@group(0) @binding(5) var<uniform> p: Params;

fn load(k: u32, a: u32) -> {{T}} {
  switch k {
    case 0u: { return in0[a]; }
    case 1u: { return in1[a]; }
    case 2u: { return in2[a]; }
    default: { return in3[a]; }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= p.n) { return; }
  let cd = (i / p.inner) % p.width;
  // Which input holds this slab column.
  var k = 0u;
  while (k + 1u < p.count && cd >= p.ends[k]) { k++; }
  let start = select(0u, p.ends[max(k, 1u) - 1u], k > 0u);
  var rest = i;
  var a = p.offs[k];
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let q = u32(d) / 4u;
    let r = u32(d) % 4u;
    let extent = p.shape[q][r];
    var c = rest % extent;
    rest = rest / extent;
    if (u32(d) == p.dim) { c = c - start; }
    a += c * p.strides[k][q][r];
  }
  let outer = i / (p.inner * p.width);
  y[(outer * p.total + p.base + cd) * p.inner + i % p.inner] = load(k, a);
}
