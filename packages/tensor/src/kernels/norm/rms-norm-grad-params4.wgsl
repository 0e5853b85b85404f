// dweight partials of RMSNorm for D a multiple of 4: U adjacent vec4 columns and a chunk of rows
// per invocation (see layer-norm-grad-params4.wgsl). [chunks, D] f32 partials of Σ g * x * rstd.
{{PRELUDE}}
const U: u32 = {{U}}u;
struct Params { rows: u32, cols: u32, chunks: u32, chunk_rows: u32, off_x: u32, off_g: u32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let v = row_of(wid, nwg, lid);
  let blocks = p.cols / (4u * U);
  if (v >= p.chunks * blocks) { return; }
  let col = (v % blocks) * 4u * U;
  let r0 = (v / blocks) * p.chunk_rows;
  let r1 = min(p.rows, r0 + p.chunk_rows);
  var dw: array<vec4<f32>, U>;
  for (var r = r0; r < r1; r++) {
    let rstd = ld_rstd(r);
    for (var u = 0u; u < U; u++) {
      let e = r * p.cols + col + 4u * u;
      dw[u] += ld4_g(p.off_g + e) * ld4_x(p.off_x + e) * rstd;
    }
  }
  for (var u = 0u; u < U; u++) { st4_dw((v / blocks) * p.cols + col + 4u * u, dw[u]); }
}
