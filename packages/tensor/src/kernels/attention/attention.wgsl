// Fused attention forward: o = softmax(scale * q k^T + mask) v, plus the row logsumexp L.
// Online softmax (FlashAttention): each query row keeps a running max m, a running sum l and
// an unnormalised accumulator acc[D] while keys stream past, so the [Tq, Tk] score matrix
// never exists (4,900 vision tokens would need 1.5 GB per layer). One invocation owns one
// query row; a workgroup owns BLOCK rows of one (head, batch).

@group(0) @binding(0) var<storage, read> q: array<elt>;
@group(0) @binding(1) var<storage, read> k: array<elt>;
@group(0) @binding(2) var<storage, read> v: array<elt>;
@group(0) @binding(3) var<storage, read> masks: array<u32>; // key padding and/or full mask words
@group(0) @binding(4) var<storage, read_write> o: array<elt>;
@group(0) @binding(5) var<storage, read_write> lse: array<u32>; // f32 bits, so -inf needs no arithmetic
@group(0) @binding(6) var<uniform> P: Params;

// Writes o = acc / l and L = m + log(l); a row that saw no key (l == 0) gets o = 0, L = -inf.
fn finish_row(b: u32, h: u32, i: u32, m: f32, l: f32, acc: ptr<function, array<f32, HEAD_DIM>>) {
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var d = 0u; d < dim(); d++) {
    o[o_at(b, h, i, d)] = elt((*acc)[d] * inv);
  }
  lse[(b * P.Hq + h) * P.Tq + i] = select(LSE_EMPTY, bitcast<u32>(m + log(l)), l > 0.0);
}

// Registers only, no workgroup memory or barriers: for lavapipe, where a barrier turns the
// workgroup into coroutines and workgroup memory is plain memory anyway. All invocations walk
// the same keys (the union of their ranges) so that every K and V address is workgroup-uniform:
// lavapipe then loads each element once and broadcasts it to the SIMD lanes.
@compute @workgroup_size(BLOCK)
fn forward_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i0 = wg.x * BLOCK;
  let i = min(i0 + lid, P.Tq - 1u); // rows past the end redo the last row and do not write
  let h = wg.y;
  let b = wg.z;
  let hk = h / P.group; // grouped-query attention: g query heads share one KV head

  // The scale is folded into q once instead of into every score.
  var qr: array<f32, HEAD_DIM>;
  let qb = q_at(b, h, i, 0u);
  for (var d = 0u; d < dim(); d++) { qr[d] = f32(q[qb + d * P.qsD]) * P.scale; }

  var acc: array<f32, HEAD_DIM>;
  var m = NEG_BIG;
  var l = 0.0;
  let r = vec2<u32>(key_range(query_pos(i)));
  let lo = u32(key_range(query_pos(i0)).x);
  let hi = u32(key_range(query_pos(min(i0 + BLOCK, P.Tq) - 1u)).y);
  var s: array<f32, CHUNK>;
  // Scores are taken CHUNK keys at a time so acc is rescaled once per chunk, not per key.
  for (var j0 = lo; j0 < hi; j0 += CHUNK) {
    var cmax = NEG_BIG;
    for (var c = 0u; c < CHUNK; c++) {
      let j = min(j0 + c, hi - 1u);
      let kb = k_at(b, hk, j, 0u);
      var dot = 0.0;
      for (var d = 0u; d < dim(); d++) { dot += qr[d] * f32(k[kb + d * P.ksD]); }
      let t = mask_term(b, h, i, j);
      let ok = j0 + c < hi && j >= r.x && j < r.y && t > MASK_LIMIT;
      s[c] = select(NEG_BIG, dot + t, ok);
      cmax = max(cmax, s[c]);
    }
    let mnew = max(m, cmax);
    let corr = exp(m - mnew);
    m = mnew;
    l *= corr;
    for (var d = 0u; d < dim(); d++) { acc[d] *= corr; }
    for (var c = 0u; c < CHUNK; c++) {
      // A masked score gives exp(NEG_BIG - m) = 0, or 1 while m is still NEG_BIG: select it away.
      let p = select(0.0, exp(s[c] - m), s[c] > MASK_LIMIT);
      l += p;
      let vb = v_at(b, hk, min(j0 + c, hi - 1u), 0u);
      for (var d = 0u; d < dim(); d++) { acc[d] += p * f32(v[vb + d * P.vsD]); }
    }
  }
  if (i0 + lid < P.Tq) { finish_row(b, h, i, m, l, &acc); }
}

// For real GPUs: the workgroup copies TILE keys and values at a time into workgroup memory
// with coalesced loads; every invocation then reads the same element (a broadcast).
var<workgroup> kt: array<f32, TILE * HEAD_DIM>;
var<workgroup> vt: array<f32, TILE * HEAD_DIM>;

@compute @workgroup_size(BLOCK)
fn forward_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i0 = wg.x * BLOCK;
  let i = i0 + lid;
  let h = wg.y;
  let b = wg.z;
  let hk = h / P.group;
  let live = i < P.Tq; // dead rows still load tiles and meet the barriers

  var qr: array<f32, HEAD_DIM>;
  if (live) {
    let qb = q_at(b, h, i, 0u);
    for (var d = 0u; d < dim(); d++) { qr[d] = f32(q[qb + d * P.qsD]) * P.scale; }
  }
  var acc: array<f32, HEAD_DIM>;
  var m = NEG_BIG;
  var l = 0.0;
  let r = vec2<u32>(key_range(query_pos(i)));
  // Keys any row of this block may see; uniform across the workgroup, as barriers require.
  let i1 = min(i0 + BLOCK, P.Tq) - 1u;
  let lo = u32(key_range(query_pos(i0)).x);
  let hi = u32(key_range(query_pos(i1)).y);

  var s: array<f32, TILE>;
  for (var j0 = lo; j0 < hi; j0 += TILE) {
    workgroupBarrier(); // the previous tile is no longer read
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
    // No `continue` here: it would make the next iteration's barriers non-uniform.
    var cmax = NEG_BIG;
    for (var c = 0u; c < tile_rows(); c++) {
      let j = j0 + c;
      var t = NEG_BIG;
      if (live && j >= r.x && j < r.y) {
        t = mask_term(b, h, i, j);
        if (t > MASK_LIMIT) {
          var dot = 0.0;
          for (var d = 0u; d < dim(); d++) { dot += qr[d] * kt[c * HEAD_DIM + d]; }
          t += dot;
        }
      }
      s[c] = t;
      cmax = max(cmax, t);
    }
    if (cmax > MASK_LIMIT) {
      let mnew = max(m, cmax);
      let corr = exp(m - mnew);
      m = mnew;
      l *= corr;
      for (var d = 0u; d < dim(); d++) { acc[d] *= corr; }
      for (var c = 0u; c < tile_rows(); c++) {
        if (s[c] > MASK_LIMIT) {
          let p = exp(s[c] - m);
          l += p;
          for (var d = 0u; d < dim(); d++) { acc[d] += p * vt[c * HEAD_DIM + d]; }
        }
      }
    }
  }
  if (live) { finish_row(b, h, i, m, l, &acc); }
}
