// index_select: y[.., j, ..] = x[.., index[j], ..] along one dim. x is any strided view (its
// strides come in the uniform block), y is contiguous. An index outside [0, len) yields 0: the
// GPU cannot throw, and a zero row is easier to spot than a read of a neighbouring tensor.
// x may be one chunk [lo, hi) of a source too large for one binding: then (skip = 1) only
// indices inside the chunk are written, read at index - lo, and y was zeroed beforehand.
{{ENABLE}}
@group(0) @binding(0) var<storage, read> x: array<{{T}}>;
@group(0) @binding(1) var<storage, read> index: array<i32>;
@group(0) @binding(2) var<storage, read_write> y: array<{{T}}>;

struct Params {
  n: u32,        // elements of y
  rank: u32,
  dim: u32,      // the gathered dim
  hi: u32,       // indices in [lo, hi) are read (x's extent along dim, or the chunk's end)
  xoff: u32,
  ioff: u32,
  istride: u32,
  lo: u32,
  skip: u32,     // 1: leave y alone for indices outside [lo, hi)
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
  shape: array<vec4<u32>, 2>,   // y's shape
  xstride: array<vec4<u32>, 2>,
};
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= p.n) { return; }
  var rest = i;
  var xa = p.xoff;
  var ok = true;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let q = u32(d) / 4u;
    let r = u32(d) % 4u;
    let extent = p.shape[q][r];
    var c = rest % extent;
    rest = rest / extent;
    if (u32(d) == p.dim) {
      let v = index[p.ioff + c * p.istride];
      ok = v >= i32(p.lo) && u32(v) < p.hi;
      if (!ok && p.skip == 1u) { return; }
      c = select(0u, u32(v) - p.lo, ok);
    }
    xa += c * p.xstride[q][r];
  }
  y[i] = select({{T}}(0), x[xa], ok);
}
