// Reduces the middle axis of a contiguous [outer, len, inner] view: one invocation per output.
// Accumulates in f32 whatever the storage type.
{{ENABLE}}
@group(0) @binding(0) var<storage, read> x: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> y: array<{{T}}>;
struct Params { outer: u32, len: u32, inner: u32, off: u32, scale: f32 };
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (o >= p.outer * p.inner) { return; }
  let outer = o / p.inner;
  let inner = o % p.inner;
  var base = p.off + outer * p.len * p.inner + inner;
  var acc = 0.0;
  for (var k = 0u; k < p.len; k++) {
    acc += f32(x[base + k * p.inner]);
  }
  y[o] = {{T}}(acc * p.scale);
}
