// Attention backward, step 2 of 3, for lavapipe with the `subgroups` feature: dk and dv per key
// row, the same math as grad_kv_rows (attention-grad-kv.wgsl). Each lane owns a key row; for each
// block of SG query rows every lane loads one q row, one dO row and that row's (L, Di) and hands
// them to the others with subgroupBroadcast, so a lane issues SG times fewer loads per FMA.
// Lines marked `@lanes` are repeated by the launcher for LANE = 0 .. SG-1.

@group(0) @binding(0) var<storage, read> q: array<elt>;
@group(0) @binding(1) var<storage, read> k: array<elt>;
@group(0) @binding(2) var<storage, read> v: array<elt>;
@group(0) @binding(3) var<storage, read> masks: array<u32>;
@group(0) @binding(4) var<storage, read> dout: array<elt>;
@group(0) @binding(5) var<storage, read> stats: array<vec2<f32>>; // (L, Di) per query row
@group(0) @binding(6) var<storage, read_write> dk: array<elt>;    // contiguous [B, Hkv, Tk, D]
@group(0) @binding(7) var<storage, read_write> dv: array<elt>;    // contiguous [B, Hkv, Tk, D]
@group(0) @binding(8) var<uniform> P: Params;

// ld4q / ld4k / ld4v / ld4do (elements d .. d+3 of a row) are added by attentionShader.
@compute @workgroup_size(BLOCK)
fn grad_kv_subgroup(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                    @builtin(subgroup_invocation_id) lane: u32) {
  let j0 = wg.x * BLOCK;
  let j = min(j0 + lid, P.Tk - 1u); // rows past the end redo the last row and do not write
  let hk = wg.y;
  let b = wg.z;
  let kb = k_at(b, hk, j, 0u);
  let vb = v_at(b, hk, j, 0u);
  let r = vec2<u32>(query_range(j));
  // Query rows any key of the workgroup may be seen by: every broadcast in uniform control flow.
  let lo = u32(query_range(j0).x);
  let hi = u32(query_range(min(j0 + BLOCK, P.Tk) - 1u).y);
  let quads = (dim() + 3u) / 4u;

  // This lane's k and v rows, loaded once: private arrays are plain (vector) memory on lavapipe,
  // far cheaper to read than storage, which costs a per-lane loop with bounds checks.
  var kr: array<vec4<f32>, (HEAD_DIM + 3u) / 4u>;
  var vr: array<vec4<f32>, (HEAD_DIM + 3u) / 4u>;
  for (var d4 = 0u; d4 < quads; d4++) {
    kr[d4] = ld4k(kb, 4u * d4);
    vr[d4] = ld4v(vb, 4u * d4);
  }
  var dka: array<vec4<f32>, (HEAD_DIM + 3u) / 4u>;
  var dva: array<vec4<f32>, (HEAD_DIM + 3u) / 4u>;
  // This lane's q and dO rows of the current block, kept for the second pass.
  var qc: array<vec4<f32>, (HEAD_DIM + 3u) / 4u>;
  var dc: array<vec4<f32>, (HEAD_DIM + 3u) / 4u>;
  // Grouped-query attention: the g query heads of this KV head all contribute.
  for (var g = 0u; g < P.group; g++) {
    let h = hk * P.group + g;
    for (var i0 = lo; i0 < hi; i0 += SG) {
      let own = min(i0 + lane, hi - 1u); // the query row this lane loads for the subgroup
      let qb = q_at(b, h, own, 0u);
      let db = do_at(b, h, own, 0u);
      let sto = stats[(b * P.Hq + h) * P.Tq + own];
      // s = k . q and dp = v . dO of this lane's key against query rows i0 .. i0+SG-1.
      var s = array<f32, SG>();
      var dp = array<f32, SG>();
      for (var d4 = 0u; d4 < quads; d4++) {
        let kv = kr[d4];
        let vv = vr[d4];
        let qv = ld4q(qb, 4u * d4);
        let dv_ = ld4do(db, 4u * d4);
        qc[d4] = qv;
        dc[d4] = dv_;
        s[LANE] += dot(kv, subgroupBroadcast(qv, LANE)); dp[LANE] += dot(vv, subgroupBroadcast(dv_, LANE)); // @lanes
      }
      var st = array<vec2<f32>, SG>();
      st[LANE] = subgroupBroadcast(sto, LANE); // @lanes
      // P recomputed from L and dS = P * (dP - Di); masked pairs give 0 with a finite exponent.
      var p = array<f32, SG>();
      var ds = array<f32, SG>();
      for (var c = 0u; c < SG; c++) {
        let i = i0 + c;
        let t = mask_term(b, h, min(i, hi - 1u), j);
        let ok = i < hi && i >= r.x && i < r.y && t > MASK_LIMIT;
        p[c] = select(0.0, exp(select(NEG_BIG, s[c] * P.scale + max(t, MASK_LIMIT) - st[c].x, ok)), ok);
        ds[c] = p[c] * (dp[c] - st[c].y);
      }
      // dv += P dO_i and dk += dS q_i, the query rows broadcast again from the private copies.
      for (var d4 = 0u; d4 < quads; d4++) {
        let qv = qc[d4];
        let dv_ = dc[d4];
        var a = dka[d4];
        var e = dva[d4];
        a += ds[LANE] * subgroupBroadcast(qv, LANE); e += p[LANE] * subgroupBroadcast(dv_, LANE); // @lanes
        dka[d4] = a;
        dva[d4] = e;
      }
    }
  }
  if (j0 + lid < P.Tk) {
    let ob = ((b * P.Hkv + hk) * P.Tk + j) * P.D;
    for (var d = 0u; d < dim(); d++) {
      dk[ob + d] = elt(dka[d / 4u][d % 4u] * P.scale);
      dv[ob + d] = elt(dva[d / 4u][d % 4u]);
    }
  }
}
