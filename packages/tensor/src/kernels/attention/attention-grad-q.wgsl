// Attention backward, step 3 of 3: dq per query row (FlashAttention-2). The probabilities are
// recomputed from L (p = exp(s - L)) instead of stored; dq = scale * sum_j p (dp - Di) k_j with
// dp = dO_i . v_j. One invocation owns one query row, so no atomics are needed.

@group(0) @binding(0) var<storage, read> q: array<elt>;
@group(0) @binding(1) var<storage, read> k: array<elt>;
@group(0) @binding(2) var<storage, read> v: array<elt>;
@group(0) @binding(3) var<storage, read> masks: array<u32>;
@group(0) @binding(4) var<storage, read> dout: array<elt>;
@group(0) @binding(5) var<storage, read> stats: array<vec2<f32>>; // (L, Di) per row
@group(0) @binding(6) var<storage, read_write> dq: array<elt>;     // contiguous [B, Hq, Tq, D]
@group(0) @binding(7) var<uniform> P: Params;

// Registers only, for lavapipe (see forward_rows).
@compute @workgroup_size(BLOCK)
fn grad_q_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = wg.x * BLOCK + lid;
  let h = wg.y;
  let b = wg.z;
  if (i >= P.Tq) { return; }
  let hk = h / P.group;
  let row = (b * P.Hq + h) * P.Tq + i;
  let st = stats[row];

  var qr: array<f32, HEAD_DIM>;
  var dr: array<f32, HEAD_DIM>;
  let qb = q_at(b, h, i, 0u);
  let db = do_at(b, h, i, 0u);
  for (var d = 0u; d < dim(); d++) {
    qr[d] = f32(q[qb + d * P.qsD]) * P.scale;
    dr[d] = f32(dout[db + d * P.dosD]);
  }
  var acc: array<f32, HEAD_DIM>;
  let r = vec2<u32>(key_range(query_pos(i)));
  for (var j = r.x; j < r.y; j++) {
    let t = mask_term(b, h, i, j);
    if (t <= MASK_LIMIT) { continue; }
    let kb = k_at(b, hk, j, 0u);
    let vb = v_at(b, hk, j, 0u);
    var s = t;
    var dp = 0.0;
    for (var d = 0u; d < dim(); d++) {
      s += qr[d] * f32(k[kb + d * P.ksD]);
      dp += dr[d] * f32(v[vb + d * P.vsD]);
    }
    let ds = exp(s - st.x) * (dp - st.y);
    for (var d = 0u; d < dim(); d++) { acc[d] += ds * f32(k[kb + d * P.ksD]); }
  }
  let ob = row * P.D;
  for (var d = 0u; d < dim(); d++) { dq[ob + d] = elt(acc[d] * P.scale); }
}

// For real GPUs: K and V stream through workgroup memory as in forward_tiled.
var<workgroup> kt: array<f32, TILE * HEAD_DIM>;
var<workgroup> vt: array<f32, TILE * HEAD_DIM>;

@compute @workgroup_size(BLOCK)
fn grad_q_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i0 = wg.x * BLOCK;
  let i = i0 + lid;
  let h = wg.y;
  let b = wg.z;
  let hk = h / P.group;
  let live = i < P.Tq;
  let row = (b * P.Hq + h) * P.Tq + i;

  var qr: array<f32, HEAD_DIM>;
  var dr: array<f32, HEAD_DIM>;
  var st = vec2<f32>(0.0);
  if (live) {
    st = stats[row];
    let qb = q_at(b, h, i, 0u);
    let db = do_at(b, h, i, 0u);
    for (var d = 0u; d < dim(); d++) {
      qr[d] = f32(q[qb + d * P.qsD]) * P.scale;
      dr[d] = f32(dout[db + d * P.dosD]);
    }
  }
  var acc: array<f32, HEAD_DIM>;
  let r = vec2<u32>(key_range(query_pos(i)));
  let i1 = min(i0 + BLOCK, P.Tq) - 1u;
  let lo = u32(key_range(query_pos(i0)).x);
  let hi = u32(key_range(query_pos(i1)).y);

  for (var j0 = lo; j0 < hi; j0 += TILE) {
    workgroupBarrier();
    for (var e = lid; e < TILE * HEAD_DIM; e += BLOCK) {
      let j = j0 + e / HEAD_DIM;
      let d = e % HEAD_DIM;
      var kv = 0.0;
      var vv = 0.0;
      if (j < hi && d < dim()) {
        kv = f32(k[k_at(b, hk, j, d)]);
        vv = f32(v[v_at(b, hk, j, d)]);
      }
      kt[e] = kv;
      vt[e] = vv;
    }
    workgroupBarrier();
    for (var c = 0u; c < tile_rows(); c++) {
      let j = j0 + c;
      if (live && j >= r.x && j < r.y) {
        let t = mask_term(b, h, i, j);
        if (t > MASK_LIMIT) {
          var s = t;
          var dp = 0.0;
          for (var d = 0u; d < dim(); d++) {
            s += qr[d] * kt[c * HEAD_DIM + d];
            dp += dr[d] * vt[c * HEAD_DIM + d];
          }
          let ds = exp(s - st.x) * (dp - st.y);
          for (var d = 0u; d < dim(); d++) { acc[d] += ds * kt[c * HEAD_DIM + d]; }
        }
      }
    }
  }
  if (live) {
    let ob = row * P.D;
    for (var d = 0u; d < dim(); d++) { dq[ob + d] = elt(acc[d] * P.scale); }
  }
}
