// Strided elementwise map in 4×4 tiles: out[view] = EXPR(a[view], b[view]) for permutes,
// transposes and broadcasts. The launcher collapses the view to axes X (the output's innermost),
// Y (the axis an input is contiguous along, when that is not X) and up to 6 batch axes. Each
// invocation maps a 4×4 tile of (Y, X): it loads each operand as four vec4 rows along whichever
// of X or Y that operand is contiguous in (else 16 scalars), transposes in registers and stores
// four vec4 along the output's contiguous axis. Why: lavapipe turns every storage access with a
// non-constant address into a per-lane loop, so a vec4 costs about what a scalar does, and the
// generic kernel's per-element coordinate carry (dynamically indexed private arrays) costs more
// than the copy itself. A workgroup's 64 tiles cover a compact block, so the transposed side of a
// permute stays in cache. Tiles that cross the edge take a scalar path with clamped loads.
// Placeholders {{...}} are filled by elementwise-shader.ts (`tiledShader`).
{{ENABLE}}
{{BINDINGS}}

struct Params {
  nx: u32,
  ny: u32,
  lx: u32,     // lanes of a workgroup along X (a power of two dividing 64)
  ly: u32,     // lanes along Y (lx · ly divides 64)
  lx_log2: u32,
  per_log2: u32, // log2(lx · ly)
  nbr: u32,    // batch axes
  off_a: u32,
  off_b: u32,
  off_o: u32,
  alpha: f32,
  beta: f32,
  sx: vec4<u32>, // strides along X of a, b, out
  sy: vec4<u32>, // strides along Y of a, b, out
  bshape: array<vec4<u32>, 2>,
  bsa: array<vec4<u32>, 2>,
  bsb: array<vec4<u32>, 2>,
  bso: array<vec4<u32>, 2>,
};
@group(0) @binding({{PARAMS_BINDING}}) var<uniform> p: Params;

// Tiles each invocation maps, STEPS·4·ly rows apart: amortises the batch decode below.
const STEPS: u32 = 4u;

// Grid: x = blocks along X, y = blocks along Y, z = groups of batch elements. A workgroup covers
// lx·4 columns × ly·4·STEPS rows of 64 / (lx·ly) consecutive batch elements, so small tiles
// (e.g. 16 × 16 patches) keep every lane busy.
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let alpha = p.alpha;
  let beta = p.beta;
  let per = p.lx * p.ly;
  var rest = wid.z * (64u >> p.per_log2) + (lid >> p.per_log2);
  var ba = p.off_a;
  var bb = p.off_b;
  var bo = p.off_o;
  for (var d = i32(p.nbr) - 1; d >= 0; d--) {
    let q = u32(d) / 4u;
    let r = u32(d) % 4u;
    let extent = p.bshape[q][r];
    let c = rest % extent;
    rest = rest / extent;
    ba += c * p.bsa[q][r];
    bb += c * p.bsb[q][r];
    bo += c * p.bso[q][r];
  }
  if (rest != 0u) { return; } // past the last batch element (grid rounding)
  let x0 = (wid.x * p.lx + (lid & (p.lx - 1u))) * 4u;
  if (x0 >= p.nx) { return; }
  for (var step = 0u; step < STEPS; step++) {
    let y0 = ((wid.y * STEPS + step) * p.ly + ((lid & (per - 1u)) >> p.lx_log2)) * 4u;
    if (y0 >= p.ny) { return; }
    let ia = ba + x0 * p.sx.x + y0 * p.sy.x;
    let ib = bb + x0 * p.sx.y + y0 * p.sy.y;
    let io = bo + x0 * p.sx.z + y0 * p.sy.z;
    var t: array<{{OUT}}, 16>;
    if (x0 + 4u <= p.nx && y0 + 4u <= p.ny) {
{{FAST}}
    } else {
      for (var r = 0u; r < 4u; r++) {
        for (var c = 0u; c < 4u; c++) {
          // Clamped: loads stay inside the view; only in-range elements are stored.
          let yr = min(r, p.ny - 1u - y0);
          let xc = min(c, p.nx - 1u - x0);
{{SLOW}}
        }
      }
    }
  }
}
