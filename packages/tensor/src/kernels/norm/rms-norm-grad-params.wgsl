// dweight partials of RMSNorm: one invocation per (row chunk, column); [chunks, D] f32.
//   dw = Σ_rows g * x * rstd
{{PRELUDE}}
struct Params { rows: u32, cols: u32, chunks: u32, chunk_rows: u32, off_x: u32, off_g: u32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let v = row_of(wid, nwg, lid);
  if (v >= p.chunks * p.cols) { return; }
  let col = v % p.cols;
  let r0 = (v / p.cols) * p.chunk_rows;
  let r1 = min(p.rows, r0 + p.chunk_rows);
  var dw = 0.0;
  for (var r = r0; r < r1; r++) {
    dw += ld_g(p.off_g + r * p.cols + col) * ld_x(p.off_x + r * p.cols + col) * ld_rstd(r);
  }
  st_dw(v, dw);
}
