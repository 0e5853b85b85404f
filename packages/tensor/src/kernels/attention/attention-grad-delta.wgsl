// Attention backward, step 1 of 3 (FlashAttention-2): per query row, Di = sum_d dO * O, the
// softmax-Jacobian term shared by dq and dk (dS = P * (dO V^T - Di)). Also packs L beside Di
// so the two later kernels read one stats buffer (keeping them within 8 storage bindings),
// and turns the L of a fully masked row (-inf) into a huge finite value: exp(s - L) is then 0
// without any arithmetic on infinities.

@group(0) @binding(0) var<storage, read> o: array<elt>;
@group(0) @binding(1) var<storage, read> dout: array<elt>;
@group(0) @binding(2) var<storage, read> lse: array<u32>;
@group(0) @binding(3) var<storage, read_write> stats: array<vec2<f32>>; // (L, Di) per row
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<storage, read> masks: array<u32>; // never read here; mask_term names it

@compute @workgroup_size(BLOCK)
fn grad_delta(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = wg.x * BLOCK + lid;
  let h = wg.y;
  let b = wg.z;
  if (i >= P.Tq) { return; }
  let ob = o_at(b, h, i, 0u);
  let db = do_at(b, h, i, 0u);
  var di = 0.0;
  for (var d = 0u; d < dim(); d++) { di += f32(o[ob + d * P.osD]) * f32(dout[db + d * P.dosD]); }
  let row = (b * P.Hq + h) * P.Tq + i;
  let bits = lse[P.lseOff + row];
  stats[row] = vec2<f32>(select(bitcast<f32>(bits), -NEG_BIG, bits == LSE_EMPTY), di);
}
