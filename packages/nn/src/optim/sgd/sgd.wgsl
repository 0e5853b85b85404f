// torch.optim.SGD over a table of tiles (see adamw.wgsl for the layout). {{MOMENTUM}} is "1" when
// the momentum buffer is bound; without it the kernel is plain SGD with weight decay.
struct Hyper {
  neg_lr: f32,
  weight_decay: f32,
  momentum: f32,
  one_minus_dampening: f32,
  nesterov: u32,
  first_step: u32,          // 1 on the parameter's first step: the buffer starts as a copy of the gradient
  pad: u32,
  enabled: u32,
};
struct Dims { tile_base: u32, tile_count: u32, p_off: u32, g_off: u32, s_off: u32 };

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
{{BUFFER_BINDING}}
@group(0) @binding({{B}}) var<storage, read> tiles: array<vec4<u32>>;
@group(0) @binding({{B1}}) var<storage, read> hyper: array<Hyper>;
@group(0) @binding({{B2}}) var<uniform> dims: Dims;

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
    let p = param[dims.p_off + e];
    // grad = grad.add(param, alpha=weight_decay)
    var g = grad[dims.g_off + e];
    if (h.weight_decay != 0.0) { g = g + h.weight_decay * p; }
    {{MOMENTUM_STEP}}
    // param.add_(grad, alpha=-lr)
    param[dims.p_off + e] = p + h.neg_lr * g;
  }
}
