// scatter_rows: y[index[i], d] = rows[i, d] into y, a contiguous [N, D] copy of base made just
// before. rows is any strided [M, D] view. With ZERO the rows are not read and zeros are written
// (the backward uses that to cut the overwritten rows out of base's gradient). Out-of-range indices
// are skipped; duplicates race (the host path rejects them).
{{ENABLE}}
@group(0) @binding(0) var<storage, read> rows: array<{{T}}>;
@group(0) @binding(1) var<storage, read> index: array<i32>;
@group(0) @binding(2) var<storage, read_write> y: array<{{T}}>;

struct Params {
  total: u32,   // M * D
  d: u32,
  n: u32,       // rows of y
  zero: u32,
  roff: u32,
  rs0: u32,
  rs1: u32,
  ioff: u32,
  istride: u32,
};
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (t >= p.total) { return; }
  let i = t / p.d;
  let c = t % p.d;
  let v = index[p.ioff + i * p.istride];
  if (v < 0 || u32(v) >= p.n) { return; }
  var value = {{T}}(0);
  if (p.zero == 0u) { value = rows[p.roff + i * p.rs0 + c * p.rs1]; }
  y[u32(v) * p.d + c] = value;
}
