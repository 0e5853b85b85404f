// Total norm from the per-tile partial sums, and torch's clip coefficient:
// result = [norm, clamp(max_norm / (norm + 1e-6), max=1)]. One workgroup.
struct Dims { count: u32, max_norm: f32 };

@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> result: array<f32>;
@group(0) @binding(2) var<uniform> dims: Dims;

var<workgroup> sums: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < dims.count; i += 256u) { acc += partials[i]; }
  sums[lid] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid < s) { sums[lid] += sums[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let norm = sqrt(sums[0]);
    result[0] = norm;
    // torch.clamp(coef, max=1) keeps a NaN coefficient (non-finite gradients poison them all, as in
    // torch); min() may not. NaN is tested on the bits: compilers may fold `c != c` away.
    let c = dims.max_norm / (norm + 1e-6);
    let is_nan = (bitcast<u32>(c) & 0x7fffffffu) > 0x7f800000u;
    result[1] = select(1.0, c, c < 1.0 || is_nan);
  }
}
