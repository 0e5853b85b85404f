// Contiguous elementwise map, four elements per load: out[i] = EXPR(a[i], b[i]). Used when every
// operand is contiguous and starts at a multiple of 4 elements. On lavapipe each storage access
// with a non-constant address is a per-lane loop, so one vec4 access costs about what a scalar
// one does. The expression is evaluated per component (it may use scalar-only builtins).
// Placeholders {{...}} are filled by elementwise-shader.ts (`vec4Shader`).
{{ENABLE}}
{{BINDINGS}}

struct Params {
  n: u32,      // elements
  off_a: u32,  // offsets in vec4s
  off_b: u32,
  off_o: u32,
  alpha: f32,
  beta: f32,
};
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

// Each invocation maps PER vec4s, 256 apart, so a workgroup covers a contiguous run.
const PER: u32 = {{PER}}u;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let alpha = p.alpha;
  let beta = p.beta;
  let base = (wid.y * nwg.x + wid.x) * 256u * PER + lid;
  for (var k = 0u; k < PER; k++) {
    let i = base + k * 256u;
    if (i * 4u >= p.n) { return; }
    var t: array<{{OUT}}, 4>;
    if (i * 4u + 4u <= p.n) {
{{FAST}}
    } else {
      // The last, partial vec4: element by element.
      for (var c = 0u; c < p.n - i * 4u; c++) {
{{SLOW}}
      }
    }
  }
}
