// Backward of index_select: gx[o, index[n], i] += g[o, n, i], with g viewed as [outer, M, inner]
// and gx (zero-filled beforehand) as [outer, len, inner]. No float atomics: only the first
// position of each distinct index (its "head") writes, summing its chain of duplicates in
// position order, so the result is deterministic. Cost O(outer * M * inner) reads of g.
// gx may be bound as a window of a buffer too large for one binding: only indices in [lo, hi)
// are written, at element (o * len + index) * inner + i - gxoff of the window.
{{ENABLE}}
@group(0) @binding(0) var<storage, read> g: array<{{T}}>;
@group(0) @binding(1) var<storage, read> index: array<i32>;
@group(0) @binding(2) var<storage, read> links: array<i32>;   // [next, head] per position
@group(0) @binding(3) var<storage, read_write> gx: array<{{T}}>;

struct Params {
  total: u32, m: u32, inner: u32, len: u32, goff: u32, ioff: u32, istride: u32, lo: u32,
  hi: u32, gxoff: u32, _pad0: u32, _pad1: u32,
};
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (t >= p.total) { return; }
  let i = t % p.inner;
  let n = (t / p.inner) % p.m;
  let o = t / (p.inner * p.m);
  if (links[2u * n + 1u] == 0) { return; }
  let v = u32(index[p.ioff + n * p.istride]);
  if (v < p.lo || v >= p.hi) { return; }
  let base = p.goff + o * p.m * p.inner + i;
  var acc = 0.0;
  var k = i32(n);
  loop {
    acc += f32(g[base + u32(k) * p.inner]);
    k = links[2u * u32(k)];
    if (k < 0) { break; }
  }
  gx[(o * p.len + v) * p.inner + i - p.gxoff] = {{T}}(acc);
}
