// Reduces per-row losses to one value in a single workgroup: the sum, or the mean over rows whose
// target is not ignore_index (NaN when there are none, like torch). Also writes that count, which
// the backward divides by.
{{PRELUDE}}
const MEAN: bool = {{MEAN}};
struct Params { rows: u32, off_t: u32, ignore: i32 };
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  var c = 0.0;
  for (var r = lid; r < p.rows; r += WG) {
    s += ld_loss(r);
    if (ld_t(p.off_t + r) != p.ignore) { c += 1.0; }
  }
  s = red_sum(s, lid);
  c = red_sum(c, lid);
  if (lid == 0u) {
    if (MEAN) { st_out(0u, select(s / c, nan(), c == 0.0)); } else { st_out(0u, s); }
    st_cnt(0u, c);
  }
}
