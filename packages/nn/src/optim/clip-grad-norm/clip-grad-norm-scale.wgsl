// grad *= result[1] over a tile table: the clip coefficient never leaves the GPU.
struct Dims { tile_base: u32, tile_count: u32, g_off: u32 };

@group(0) @binding(0) var<storage, read_write> grad: array<f32>;
@group(0) @binding(1) var<storage, read> tiles: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> result: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = wid.y * nwg.x + wid.x;
  if (t >= dims.tile_count) { return; }
  let tile = tiles[dims.tile_base + t];
  let coef = result[1];
  for (var i = lid; i < tile.z; i += 256u) {
    let e = dims.g_off + tile.y + i;
    grad[e] = grad[e] * coef;
  }
}
