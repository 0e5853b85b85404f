// torch.optim.AdamW over a table of tiles. One workgroup per tile (a run of one parameter's
// elements), so every thread of a workgroup reads the same hyperparameter row. Parameters,
// gradients and moments share one element layout; each binding has its own starting offset.
struct Hyper {
  decay: f32,           // 1 - lr * weight_decay: decoupled decay, applied before the Adam step
  lerp_weight: f32,     // 1 - beta1
  beta2: f32,
  one_minus_beta2: f32,
  neg_step_size: f32,   // -lr / (1 - beta1^step)
  bc2_sqrt: f32,        // sqrt(1 - beta2^step)
  eps: f32,
  enabled: u32,          // 0: no gradient this step, the parameter is left as it is
};
struct Dims { tile_base: u32, tile_count: u32, p_off: u32, g_off: u32, s_off: u32 };

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(3) var<storage, read_write> exp_avg_sq: array<f32>;
@group(0) @binding(4) var<storage, read> tiles: array<vec4<u32>>;   // parameter, first element, length, -
@group(0) @binding(5) var<storage, read> hyper: array<Hyper>;
@group(0) @binding(6) var<uniform> dims: Dims;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = wid.y * nwg.x + wid.x;
  if (t >= dims.tile_count) { return; }
  let tile = tiles[dims.tile_base + t];
  let h = hyper[tile.x];
  if (h.enabled == 0u) { return; }
  for (var i = lid; i < tile.z; i += 256u) {
    let e = tile.y + i;
    let g = grad[dims.g_off + e];
    // param.mul_(1 - lr * weight_decay)
    let p = param[dims.p_off + e] * h.decay;
    // exp_avg.lerp_(grad, 1 - beta1), with torch's two-sided lerp: exact at both ends.
    let m0 = exp_avg[dims.s_off + e];
    var m: f32;
    if (h.lerp_weight < 0.5) { m = m0 + h.lerp_weight * (g - m0); } else { m = g - (g - m0) * (1.0 - h.lerp_weight); }
    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    let v = exp_avg_sq[dims.s_off + e] * h.beta2 + h.one_minus_beta2 * g * g;
    exp_avg[dims.s_off + e] = m;
    exp_avg_sq[dims.s_off + e] = v;
    // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps); param.addcdiv_(exp_avg, denom, value=-step_size)
    let denom = sqrt(v) / h.bc2_sqrt + h.eps;
    param[dims.p_off + e] = p + h.neg_step_size * (m / denom);
  }
}
