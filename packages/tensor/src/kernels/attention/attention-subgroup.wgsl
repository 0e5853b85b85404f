// Fused attention forward for lavapipe with the `subgroups` feature (same math as
// attention.wgsl). lavapipe runs 8 invocations per AVX2 vector and turns each storage load into
// a per-lane loop of 10-20 instructions, so loads, not FMAs, set the pace. Here each lane of a
// subgroup owns a query row, loads one key row of the block (not all SG of them) and hands it
// to the other lanes with subgroupBroadcast, a register shuffle: SG times fewer loads per FMA.
// Lines marked `@lanes` are repeated by the launcher for LANE = 0 .. SG-1 (subgroupBroadcast
// takes a constant lane).

@group(0) @binding(0) var<storage, read> q: array<elt>;
@group(0) @binding(1) var<storage, read> k: array<elt>;
@group(0) @binding(2) var<storage, read> v: array<elt>;
@group(0) @binding(3) var<storage, read> masks: array<u32>;
@group(0) @binding(4) var<storage, read_write> o: array<elt>;
@group(0) @binding(5) var<storage, read_write> lse: array<u32>;
@group(0) @binding(6) var<uniform> P: Params;

// ld4q / ld4k / ld4v / ld4do (elements d .. d+3 of a row) are added by attentionShader.
@compute @workgroup_size(BLOCK)
fn forward_subgroup(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                    @builtin(subgroup_invocation_id) lane: u32) {
  let i0 = wg.x * BLOCK;
  let i = min(i0 + lid, P.Tq - 1u); // rows past the end redo the last row and do not write
  let h = wg.y;
  let b = wg.z;
  let hk = h / P.group;
  let qb = q_at(b, h, i, 0u);
  let r = vec2<u32>(key_range(query_pos(i)));
  // Keys of the whole workgroup, so that every broadcast sits in uniform control flow.
  let lo = u32(key_range(query_pos(i0)).x);
  let hi = u32(key_range(query_pos(min(i0 + BLOCK, P.Tq) - 1u)).y);
  let quads = (dim() + 3u) / 4u;

  // This lane's q row, loaded once: private arrays are plain (vector) memory on lavapipe, far
  // cheaper to read than storage.
  var qr: array<vec4<f32>, (HEAD_DIM + 3u) / 4u>;
  for (var d4 = 0u; d4 < quads; d4++) { qr[d4] = ld4q(qb, 4u * d4); }
  var acc: array<vec4<f32>, (HEAD_DIM + 3u) / 4u>;
  var m = NEG_BIG;
  var l = 0.0;
  for (var j0 = lo; j0 < hi; j0 += SG) {
    let own = min(j0 + lane, hi - 1u); // the key row this lane loads for the subgroup
    // Scores of this lane's query against keys j0 .. j0+SG-1.
    // Explicitly zeroed: a bare `var s: array<f32, SG>;` here was zeroed only once on lavapipe.
    var s = array<f32, SG>();
    let kb = k_at(b, hk, own, 0u);
    for (var d4 = 0u; d4 < quads; d4++) {
      let qv = qr[d4];
      let kv = ld4k(kb, 4u * d4);
      s[LANE] += dot(qv, subgroupBroadcast(kv, LANE)); // @lanes
    }
    var cmax = NEG_BIG;
    for (var c = 0u; c < SG; c++) {
      let j = j0 + c;
      let t = mask_term(b, h, i, min(j, hi - 1u));
      let ok = j < hi && j >= r.x && j < r.y && t > MASK_LIMIT;
      s[c] = select(NEG_BIG, s[c] * P.scale + t, ok);
      cmax = max(cmax, s[c]);
    }
    // Online softmax: rescale what was accumulated when the running max grows.
    let mnew = max(m, cmax);
    let corr = exp(m - mnew);
    m = mnew;
    var p = array<f32, SG>();
    var psum = 0.0;
    for (var c = 0u; c < SG; c++) {
      p[c] = select(0.0, exp(s[c] - m), s[c] > MASK_LIMIT);
      psum += p[c];
    }
    l = l * corr + psum;
    let vb = v_at(b, hk, own, 0u);
    for (var d4 = 0u; d4 < quads; d4++) {
      let vv = ld4v(vb, 4u * d4);
      var a = acc[d4] * corr;
      a += p[LANE] * subgroupBroadcast(vv, LANE); // @lanes
      acc[d4] = a;
    }
  }
  if (i0 + lid < P.Tq) {
    let inv = select(0.0, 1.0 / l, l > 0.0);
    let ob = o_at(b, h, i, 0u);
    for (var d = 0u; d < dim(); d++) { o[ob + d * P.osD] = elt(acc[d / 4u][d % 4u] * inv); }
    lse[(b * P.Hq + h) * P.Tq + i] = select(LSE_EMPTY, bitcast<u32>(m + log(l)), l > 0.0);
  }
}
