// Attention backward, step 2 of 3: dk and dv per key row (FlashAttention-2). With the
// probabilities recomputed from L: dv_j = sum_i p dO_i, dk_j = scale * sum_i p (dp - Di) q_i.
// Under grouped-query attention one KV head serves g query heads, so the sums also run over
// those heads. One invocation owns one key row: no atomics.

@group(0) @binding(0) var<storage, read> q: array<elt>;
@group(0) @binding(1) var<storage, read> k: array<elt>;
@group(0) @binding(2) var<storage, read> v: array<elt>;
@group(0) @binding(3) var<storage, read> masks: array<u32>;
@group(0) @binding(4) var<storage, read> dout: array<elt>;
@group(0) @binding(5) var<storage, read> stats: array<vec2<f32>>; // (L, Di) per query row
@group(0) @binding(6) var<storage, read_write> dk: array<elt>;    // contiguous [B, Hkv, Tk, D]
@group(0) @binding(7) var<storage, read_write> dv: array<elt>;    // contiguous [B, Hkv, Tk, D]
@group(0) @binding(8) var<uniform> P: Params;

// Registers only, for lavapipe (see forward_rows).
@compute @workgroup_size(BLOCK)
fn grad_kv_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j = wg.x * BLOCK + lid;
  let hk = wg.y;
  let b = wg.z;
  if (j >= P.Tk) { return; }

  // The scale is folded into k (for the scores) and applied to dk once at the end.
  var kr: array<f32, HEAD_DIM>;
  var vr: array<f32, HEAD_DIM>;
  let kb = k_at(b, hk, j, 0u);
  let vb = v_at(b, hk, j, 0u);
  for (var d = 0u; d < dim(); d++) {
    kr[d] = f32(k[kb + d * P.ksD]) * P.scale;
    vr[d] = f32(v[vb + d * P.vsD]);
  }
  var dka: array<f32, HEAD_DIM>;
  var dva: array<f32, HEAD_DIM>;
  let r = vec2<u32>(query_range(j));
  for (var g = 0u; g < P.group; g++) {
    let h = hk * P.group + g;
    for (var i = r.x; i < r.y; i++) {
      let t = mask_term(b, h, i, j);
      if (t <= MASK_LIMIT) { continue; }
      let st = stats[(b * P.Hq + h) * P.Tq + i];
      let qb = q_at(b, h, i, 0u);
      let db = do_at(b, h, i, 0u);
      var s = t;
      var dp = 0.0;
      for (var d = 0u; d < dim(); d++) {
        s += f32(q[qb + d * P.qsD]) * kr[d];
        dp += f32(dout[db + d * P.dosD]) * vr[d];
      }
      let p = exp(s - st.x);
      let ds = p * (dp - st.y);
      for (var d = 0u; d < dim(); d++) {
        dva[d] += p * f32(dout[db + d * P.dosD]);
        dka[d] += ds * f32(q[qb + d * P.qsD]);
      }
    }
  }
  let ob = ((b * P.Hkv + hk) * P.Tk + j) * P.D;
  for (var d = 0u; d < dim(); d++) {
    dk[ob + d] = elt(dka[d] * P.scale);
    dv[ob + d] = elt(dva[d]);
  }
}

// For real GPUs: query rows of q and dO, with their stats, stream through workgroup memory.
var<workgroup> qt: array<f32, TILE * HEAD_DIM>;
var<workgroup> dt: array<f32, TILE * HEAD_DIM>;
var<workgroup> stt: array<vec2<f32>, TILE>;

@compute @workgroup_size(BLOCK)
fn grad_kv_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j0 = wg.x * BLOCK;
  let j = j0 + lid;
  let hk = wg.y;
  let b = wg.z;
  let live = j < P.Tk;

  var kr: array<f32, HEAD_DIM>;
  var vr: array<f32, HEAD_DIM>;
  if (live) {
    let kb = k_at(b, hk, j, 0u);
    let vb = v_at(b, hk, j, 0u);
    for (var d = 0u; d < dim(); d++) {
      kr[d] = f32(k[kb + d * P.ksD]) * P.scale;
      vr[d] = f32(v[vb + d * P.vsD]);
    }
  }
  var dka: array<f32, HEAD_DIM>;
  var dva: array<f32, HEAD_DIM>;
  let r = vec2<u32>(query_range(j));
  // Query rows any key of this block may be seen by; uniform across the workgroup.
  let j1 = min(j0 + BLOCK, P.Tk) - 1u;
  let lo = u32(query_range(j0).x);
  let hi = u32(query_range(j1).y);

  for (var g = 0u; g < P.group; g++) {
    let h = hk * P.group + g;
    for (var i0 = lo; i0 < hi; i0 += TILE) {
      workgroupBarrier();
      for (var e = lid; e < TILE * HEAD_DIM; e += BLOCK) {
        let i = i0 + e / HEAD_DIM;
        let d = e % HEAD_DIM;
        var qv = 0.0;
        var dv_ = 0.0;
        if (i < hi && d < dim()) {
          qv = f32(q[q_at(b, h, i, d)]);
          dv_ = f32(dout[do_at(b, h, i, d)]);
        }
        qt[e] = qv;
        dt[e] = dv_;
      }
      for (var c = lid; c < tile_rows(); c += BLOCK) {
        let i = i0 + c;
        var st = vec2<f32>(-NEG_BIG, 0.0);
        if (i < hi) { st = stats[(b * P.Hq + h) * P.Tq + i]; }
        stt[c] = st;
      }
      workgroupBarrier();
      for (var c = 0u; c < tile_rows(); c++) {
        let i = i0 + c;
        if (live && i >= r.x && i < r.y) {
          let t = mask_term(b, h, i, j);
          if (t > MASK_LIMIT) {
            var s = t;
            var dp = 0.0;
            for (var d = 0u; d < dim(); d++) {
              s += qt[c * HEAD_DIM + d] * kr[d];
              dp += dt[c * HEAD_DIM + d] * vr[d];
            }
            let st = stt[c];
            let p = exp(s - st.x);
            let ds = p * (dp - st.y);
            for (var d = 0u; d < dim(); d++) {
              dva[d] += p * dt[c * HEAD_DIM + d];
              dka[d] += ds * qt[c * HEAD_DIM + d];
            }
          }
        }
      }
    }
  }
  if (live) {
    let ob = ((b * P.Hkv + hk) * P.Tk + j) * P.D;
    for (var d = 0u; d < dim(); d++) {
      dk[ob + d] = elt(dka[d] * P.scale);
      dv[ob + d] = elt(dva[d]);
    }
  }
}
