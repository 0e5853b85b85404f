// Attention backward, step 3 of 3, for lavapipe with the `subgroups` feature: dq per query row,
// the same math as grad_q_rows (attention-grad-q.wgsl). As in forward_subgroup, each lane owns
// a query row; for each block of SG keys every lane loads one key row and one value row and hands
// them to the others with subgroupBroadcast (a register shuffle), so a lane issues SG times fewer
// loads per FMA. Lines marked `@lanes` are repeated by the launcher for LANE = 0 .. SG-1.

@group(0) @binding(0) var<storage, read> q: array<elt>;
@group(0) @binding(1) var<storage, read> k: array<elt>;
@group(0) @binding(2) var<storage, read> v: array<elt>;
@group(0) @binding(3) var<storage, read> masks: array<u32>;
@group(0) @binding(4) var<storage, read> dout: array<elt>;
@group(0) @binding(5) var<storage, read> stats: array<vec2<f32>>; // (L, Di) per row
@group(0) @binding(6) var<storage, read_write> dq: array<elt>;     // contiguous [B, Hq, Tq, D]
@group(0) @binding(7) var<uniform> P: Params;

// ld4q / ld4k / ld4v / ld4do (elements d .. d+3 of a row) are added by attentionShader.
@compute @workgroup_size(BLOCK)
fn grad_q_subgroup(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                   @builtin(subgroup_invocation_id) lane: u32) {
  let i0 = wg.x * BLOCK;
  let i = min(i0 + lid, P.Tq - 1u); // rows past the end redo the last row and do not write
  let h = wg.y;
  let b = wg.z;
  let hk = h / P.group;
  let row = (b * P.Hq + h) * P.Tq + i;
  let st = stats[row];
  let qb = q_at(b, h, i, 0u);
  let db = do_at(b, h, i, 0u);
  let r = vec2<u32>(key_range(query_pos(i)));
  // Keys of the whole workgroup, so that every broadcast sits in uniform control flow.
  let lo = u32(key_range(query_pos(i0)).x);
  let hi = u32(key_range(query_pos(min(i0 + BLOCK, P.Tq) - 1u)).y);
  let quads = (dim() + 3u) / 4u;

  // This lane's q and dO rows, loaded once: private arrays are plain (vector) memory on lavapipe,
  // far cheaper to read than storage, which costs a per-lane loop with bounds checks.
  var qr: array<vec4<f32>, (HEAD_DIM + 3u) / 4u>;
  var dr: array<vec4<f32>, (HEAD_DIM + 3u) / 4u>;
  for (var d4 = 0u; d4 < quads; d4++) {
    qr[d4] = ld4q(qb, 4u * d4);
    dr[d4] = ld4do(db, 4u * d4);
  }
  var acc: array<vec4<f32>, (HEAD_DIM + 3u) / 4u>;
  var kc: array<vec4<f32>, (HEAD_DIM + 3u) / 4u>; // this lane's key row of the current block
  for (var j0 = lo; j0 < hi; j0 += SG) {
    let own = min(j0 + lane, hi - 1u); // the key row this lane loads for the subgroup
    let kb = k_at(b, hk, own, 0u);
    let vb = v_at(b, hk, own, 0u);
    // Scores s = q . k and dp = dO . v of this lane's query against keys j0 .. j0+SG-1.
    var s = array<f32, SG>();
    var dp = array<f32, SG>();
    for (var d4 = 0u; d4 < quads; d4++) {
      let qv = qr[d4];
      let dv = dr[d4];
      let kv = ld4k(kb, 4u * d4);
      let vv = ld4v(vb, 4u * d4);
      kc[d4] = kv;
      s[LANE] += dot(qv, subgroupBroadcast(kv, LANE)); dp[LANE] += dot(dv, subgroupBroadcast(vv, LANE)); // @lanes
    }
    // dS = P * (dP - Di), P recomputed from L. Masked pairs give 0; the exponent is kept finite
    // for them too (t clamped), since WGSL lets compilers assume no infinities.
    var ds = array<f32, SG>();
    for (var c = 0u; c < SG; c++) {
      let j = j0 + c;
      let t = mask_term(b, h, i, min(j, hi - 1u));
      let ok = j < hi && j >= r.x && j < r.y && t > MASK_LIMIT;
      let e = exp(select(NEG_BIG, s[c] * P.scale + max(t, MASK_LIMIT) - st.x, ok));
      ds[c] = select(0.0, e * (dp[c] - st.y), ok);
    }
    // dq += dS_j k_j: the key rows are broadcast again, from the private copy.
    for (var d4 = 0u; d4 < quads; d4++) {
      let kv = kc[d4];
      var a = acc[d4];
      a += ds[LANE] * subgroupBroadcast(kv, LANE); // @lanes
      acc[d4] = a;
    }
  }
  if (i0 + lid < P.Tq) {
    let ob = row * P.D;
    for (var d = 0u; d < dim(); d++) { dq[ob + d] = elt(acc[d / 4u][d % 4u] * P.scale); }
  }
}
