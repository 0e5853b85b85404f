// Sum of squares of one tile of gradient elements per workgroup, into partials[tile].
// A tree in workgroup memory: one f32 per tile leaves the workgroup.
struct Dims { tile_base: u32, tile_count: u32, g_off: u32 };

@group(0) @binding(0) var<storage, read> grad: array<f32>;
@group(0) @binding(1) var<storage, read> tiles: array<vec4<u32>>;   // -, first element, length, -
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

var<workgroup> sums: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = wid.y * nwg.x + wid.x;
  if (t >= dims.tile_count) { return; }
  let tile = tiles[dims.tile_base + t];
  var acc = 0.0;
  for (var i = lid; i < tile.z; i += 256u) {
    let g = grad[dims.g_off + tile.y + i];
    acc += g * g;
  }
  sums[lid] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid < s) { sums[lid] += sums[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partials[dims.tile_base + t] = sums[0]; }
}
