// Duplicate-index chains for the deterministic scatter-add (see gather-grad.wgsl), built on the
// GPU when the indices never visited the host: for each position n, the next position holding the
// same index (-1 if none) and whether n is the first ("head"). O(M^2) compares in the worst case
// (all distinct), but with no float atomics the summation order is fixed and the result
// reproducible. Out-of-range indices are never heads.
@group(0) @binding(0) var<storage, read> index: array<i32>;
@group(0) @binding(1) var<storage, read_write> links: array<i32>;

struct Params { m: u32, len: u32, ioff: u32, istride: u32 };
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let n = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (n >= p.m) { return; }
  let v = index[p.ioff + n * p.istride];
  var next = -1;
  for (var k = n + 1u; k < p.m; k++) {
    if (index[p.ioff + k * p.istride] == v) { next = i32(k); break; }
  }
  // Walk backwards: a repeated index usually finds its predecessor quickly.
  var head = select(0, 1, v >= 0 && u32(v) < p.len);
  for (var k = i32(n) - 1; k >= 0 && head == 1; k--) {
    if (index[p.ioff + u32(k) * p.istride] == v) { head = 0; }
  }
  links[2u * n] = next;
  links[2u * n + 1u] = head;
}
