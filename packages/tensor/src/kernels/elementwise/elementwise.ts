import { record } from "../../autograd.js";
import type { Device } from "../../device.js";
import { type DType, isFloat } from "../../dtype.js";
import { DTypeError, fmtShape, ShapeError } from "../../errors.js";
import { numel, Tensor } from "../../tensor.js";
import {
  ELEMENTS_PER_INVOCATION,
  elementwiseShader,
  type TileAccess,
  tiledShader,
  VEC4_PER_INVOCATION,
  vec4Shader,
} from "./elementwise-shader.js";

const MAX_RANK = 8;
const WORKGROUP = 256;

/** numpy broadcasting of two shapes; throws naming both. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(
        `${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast (dim ${i}: ${da} vs ${db})`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides that read `t` as if broadcast to `shape` (0 on broadcast dims). */
export function broadcastStrides(t: Tensor, shape: readonly number[]): number[] {
  const rank = shape.length;
  const out = new Array<number>(rank).fill(0);
  for (let i = 0; i < t.rank; i++) {
    const j = rank - t.rank + i;
    out[j] = t.shape[i] === 1 && shape[j] !== 1 ? 0 : t.strides[i]!;
  }
  return out;
}

/** 1-D launch grid that stays under the per-dimension workgroup limit. */
export function grid1d(device: Device, invocations: number, workgroupSize = WORKGROUP): [number, number] {
  const groups = Math.ceil(invocations / workgroupSize);
  const maxX = device.gpu.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= maxX) return [groups, 1];
  const y = Math.ceil(groups / maxX);
  return [Math.ceil(groups / y), y];
}

function computeType(dtype: DType): "f32" | "i32" | "u32" {
  return dtype === "f32" || dtype === "f16" ? "f32" : dtype;
}

interface Launch {
  op: string;
  inputs: readonly { t: Tensor; strides: readonly number[] }[];
  out: Tensor;
  outStrides?: readonly number[];
  outOffset?: number;
  shape: readonly number[];
  expr: string;
  compute: "f32" | "i32" | "u32";
  alpha?: number;
  beta?: number;
}

function launch(l: Launch): void {
  const n = numel(l.shape);
  if (n === 0) return;
  if (l.shape.length > MAX_RANK) throw new ShapeError(`${l.op}: rank ${l.shape.length} exceeds ${MAX_RANK}`);
  const outStrides = l.outStrides ?? l.out.strides;
  const outOffset = l.outOffset ?? l.out.offset;
  const contiguous = (strides: readonly number[]) => {
    let s = 1;
    for (let i = l.shape.length - 1; i >= 0; i--) {
      if (l.shape[i] !== 1 && strides[i] !== s) return false;
      s *= l.shape[i]!;
    }
    return true;
  };
  const strided = !contiguous(outStrides) || l.inputs.some((x) => !contiguous(x.strides));
  const offsets = [...l.inputs.map((x) => x.t.offset), outOffset];
  const buffers = [...l.inputs.map((x) => x.t.storage.buffer), l.out.storage.buffer];
  // vec4 bindings read whole 16-byte words: every buffer must hold whole ones (pool sizes do).
  const vec4Ok = buffers.every((b) => b.size % 16 === 0);
  if (!strided && vec4Ok && offsets.every((o) => o % 4 === 0)) {
    launchVec4(l, n, offsets);
    return;
  }
  if (strided) {
    const plan = planTiles(l.shape, [...l.inputs.map((x) => x.strides), outStrides]);
    if (plan && launchTiled(l, plan, offsets, vec4Ok)) return;
  }
  const code = elementwiseShader({
    inputs: l.inputs.map((x) => x.t.dtype),
    output: l.out.dtype,
    expr: l.expr,
    compute: l.compute,
    strided,
  });
  const u = new ArrayBuffer(160);
  const u32 = new Uint32Array(u);
  const f32 = new Float32Array(u);
  u32[0] = n;
  u32[1] = l.shape.length;
  u32[2] = l.inputs[0]?.t.offset ?? 0;
  u32[3] = l.inputs[1]?.t.offset ?? 0;
  u32[4] = outOffset;
  f32[5] = l.alpha ?? 0;
  f32[6] = l.beta ?? 0;
  for (let d = 0; d < l.shape.length; d++) {
    u32[8 + d] = l.shape[d]!;
    u32[16 + d] = l.inputs[0]?.strides[d] ?? 0;
    u32[24 + d] = l.inputs[1]?.strides[d] ?? 0;
    u32[32 + d] = outStrides[d]!;
  }
  const device = l.out.device;
  device.dispatch({
    op: l.op,
    code,
    buffers: buffers.map((buffer) => ({ buffer })),
    uniforms: u,
    workgroups: grid1d(device, n, WORKGROUP * ELEMENTS_PER_INVOCATION),
  });
}

/** All operands contiguous and 4-aligned: four elements per access. */
function launchVec4(l: Launch, n: number, offsets: readonly number[]): void {
  const code = vec4Shader({
    inputs: l.inputs.map((x) => x.t.dtype),
    output: l.out.dtype,
    expr: l.expr,
    compute: l.compute,
  });
  const u = new ArrayBuffer(32);
  const u32 = new Uint32Array(u);
  const f32 = new Float32Array(u);
  u32[0] = n;
  u32[1] = l.inputs[0] ? offsets[0]! / 4 : 0;
  u32[2] = l.inputs[1] ? offsets[1]! / 4 : 0;
  u32[3] = offsets[offsets.length - 1]! / 4;
  f32[4] = l.alpha ?? 0;
  f32[5] = l.beta ?? 0;
  const device = l.out.device;
  device.dispatch({
    op: l.op,
    code,
    buffers: [...l.inputs.map((x) => ({ buffer: x.t.storage.buffer })), { buffer: l.out.storage.buffer }],
    uniforms: u,
    workgroups: grid1d(device, Math.ceil(n / 4), WORKGROUP * VEC4_PER_INVOCATION),
  });
}

/**
 * A strided map collapsed for `elementwise-tiled.wgsl`: axis X (the output's innermost), axis Y
 * and batch axes, each with one stride per operand (inputs, then the output).
 */
export interface TilePlan {
  nx: number;
  ny: number;
  /** Per operand. */
  sx: number[];
  sy: number[];
  batchShape: number[];
  /** Per operand, per batch axis. */
  batchStrides: number[][];
}

/**
 * Merges axes that every operand walks as one (stride[i] = stride[i+1] * shape[i+1]), drops
 * size-1 axes, then picks X = the output's unit-stride axis and Y = an input's unit-stride axis
 * when that differs from X (a transpose), else the output's next-inner axis. Returns null when
 * 4×4 tiles would be mostly empty (both extents tiny): the generic kernel serves those.
 */
export function planTiles(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): TilePlan | null {
  const dims: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && strides.every((s, k) => st[k]![last] === s[d]! * shape[d]!)) {
      dims[last] *= shape[d]!;
      strides.forEach((s, k) => {
        st[k]![last] = s[d]!;
      });
    } else {
      dims.push(shape[d]!);
      strides.forEach((s, k) => {
        st[k]!.push(s[d]!);
      });
    }
  }
  if (dims.length > MAX_RANK) return null;
  const out = st[st.length - 1]!;
  const axes = dims.map((_, d) => d);
  const inner = (s: number[], avoid: number) =>
    axes.filter((d) => d !== avoid).sort((p, q) => s[p]! - s[q]! || q - p)[0] ?? -1;
  const x = axes.find((d) => out[d] === 1) ?? inner(out, -1);
  if (x < 0) return null; // a single element: nothing to tile
  let y = -1;
  for (let k = 0; k < st.length - 1 && y < 0; k++) {
    const u = axes.find((d) => d !== x && st[k]![d] === 1);
    if (u !== undefined) y = u;
  }
  if (y < 0) y = inner(out, x);
  const ny = y < 0 ? 1 : dims[y]!;
  if (dims[x]! * ny < 16) return null;
  const batch = axes.filter((d) => d !== x && d !== y);
  if (batch.length > MAX_RANK - 2) return null;
  return {
    nx: dims[x]!,
    ny,
    sx: st.map((s) => s[x]!),
    sy: st.map((s) => (y < 0 ? 0 : s[y]!)),
    batchShape: batch.map((d) => dims[d]!),
    batchStrides: st.map((s) => batch.map((d) => s[d]!)),
  };
}

const TILE_LANES = 64;
/** Tiles per invocation along Y: STEPS in elementwise-tiled.wgsl. */
const TILE_STEPS = 4;

/** Returns false when the grid would exceed the adapter's limits (the caller falls back). */
function launchTiled(l: Launch, plan: TilePlan, offsets: readonly number[], vec4Ok: boolean): boolean {
  const ops = plan.sx.length;
  // vec4 along an axis needs a unit stride there and every other stride and the offset 4-aligned.
  const access = (k: number): TileAccess => {
    if (!vec4Ok || offsets[k]! % 4 !== 0 || plan.batchStrides[k]!.some((s) => s % 4 !== 0)) return "s";
    if (plan.sx[k] === 1 && plan.sy[k]! % 4 === 0) return "x";
    if (plan.sy[k] === 1 && plan.sx[k]! % 4 === 0) return "y";
    return "s";
  };
  const code = tiledShader({
    inputs: l.inputs.map((x) => x.t.dtype),
    output: l.out.dtype,
    expr: l.expr,
    compute: l.compute,
    access: l.inputs.map((_, k) => access(k)),
    outAccess: access(ops - 1),
  });
  // Lanes: when an operand walks Y faster than X (a transpose), a workgroup covers a square-ish
  // block (up to 32 rows) so that operand's cache lines are used whole; otherwise long rows
  // along X (streaming). Lanes left over (small nx) go to more rows, then to batch elements.
  const transposed = plan.sy.some((sy, k) => sy !== 0 && (plan.sx[k] === 0 || sy < plan.sx[k]!));
  let ly = 1;
  while (transposed && ly < 8 && ly * 4 < plan.ny) ly *= 2;
  let lx = 1;
  while (lx * ly < TILE_LANES && lx * 4 < plan.nx) lx *= 2;
  while (lx * ly < TILE_LANES && ly * 4 < plan.ny) ly *= 2;
  const gx = Math.ceil(plan.nx / (4 * lx));
  const gy = Math.ceil(plan.ny / (4 * ly * TILE_STEPS));
  const nb = plan.batchShape.reduce((p, d) => p * d, 1);
  const gz = Math.ceil(nb / (TILE_LANES / (lx * ly)));
  const device = l.out.device;
  const maxDim = device.gpu.limits.maxComputeWorkgroupsPerDimension;
  if (gx > maxDim || gy > maxDim || gz > maxDim) return false;
  const u = new ArrayBuffer(208);
  const u32 = new Uint32Array(u);
  const f32 = new Float32Array(u);
  u32.set([plan.nx, plan.ny, lx, ly, Math.log2(lx), Math.log2(lx * ly), plan.batchShape.length], 0);
  u32[7] = l.inputs[0] ? offsets[0]! : 0;
  u32[8] = l.inputs[1] ? offsets[1]! : 0;
  u32[9] = offsets[ops - 1]!;
  f32[10] = l.alpha ?? 0;
  f32[11] = l.beta ?? 0;
  // sx, sy: vec4 of (a, b, out) strides.
  const slot = (k: number) => (k === ops - 1 ? 2 : k);
  for (let k = 0; k < ops; k++) {
    u32[12 + slot(k)] = plan.sx[k]!;
    u32[16 + slot(k)] = plan.sy[k]!;
  }
  plan.batchShape.forEach((d, i) => {
    u32[20 + i] = d;
    for (let k = 0; k < ops; k++) u32[28 + 8 * slot(k) + i] = plan.batchStrides[k]![i]!;
  });
  device.dispatch({
    op: `${l.op}_tiled`,
    code,
    buffers: [...l.inputs.map((x) => ({ buffer: x.t.storage.buffer })), { buffer: l.out.storage.buffer }],
    uniforms: u,
    workgroups: [gx, gy, gz],
  });
  return true;
}

// ---- unary -----------------------------------------------------------------------------------

interface UnaryDef {
  /** Result from `a` (the input) and scalars `alpha`, `beta`. */
  expr: string;
  /** Gradient w.r.t. the input from `g` (grad of output), `x` (input), `y` (output); null = not differentiable. */
  grad: ((g: Tensor, x: Tensor, y: Tensor, alpha: number, beta: number) => Tensor) | null;
  floatOnly?: boolean;
  /** Whether the backward reads the input (x) and/or the output (y): only those are saved. */
  saves?: "x" | "y" | "xy" | "none";
}

// erf by Abramowitz–Stegun 7.1.26 refined: |error| < 1.5e-7, below f32's resolution near 1.
const ERF = (v: string) =>
  `select(-1.0, 1.0, ${v} >= 0.0) * (1.0 - (((((1.061405429 * (1.0 / (1.0 + 0.3275911 * abs(${v}))) - 1.453152027) * (1.0 / (1.0 + 0.3275911 * abs(${v}))) + 1.421413741) * (1.0 / (1.0 + 0.3275911 * abs(${v}))) - 0.284496736) * (1.0 / (1.0 + 0.3275911 * abs(${v}))) + 0.254829592) * (1.0 / (1.0 + 0.3275911 * abs(${v})))) * exp(-${v} * ${v}))`;
// tanh through exp of a non-positive argument: WGSL's tanh may overflow to NaN for large |x| on some drivers.
const TANH = (v: string) => `(sign(${v}) * (1.0 - exp(-2.0 * abs(${v}))) / (1.0 + exp(-2.0 * abs(${v}))))`;
const SQRT_2_OVER_PI = 0.7978845608028654;

export const UNARY: Record<string, UnaryDef> = {
  neg: { expr: "-a", grad: (g) => unary("neg", g), saves: "none" },
  identity: { expr: "a", grad: (g) => unary("identity", g), saves: "none" },
  abs: { expr: "abs(a)", grad: (g, x) => binary("mul", g, unary("sign", x)), saves: "x" },
  sign: { expr: "sign(a)", grad: null, saves: "none" },
  exp: { expr: "exp(a)", grad: (g, _x, y) => binary("mul", g, y), floatOnly: true, saves: "y" },
  log: { expr: "log(a)", grad: (g, x) => binary("div", g, x), floatOnly: true, saves: "x" },
  sqrt: {
    expr: "sqrt(a)",
    grad: (g, _x, y) => binary("div", unary("scale", g, 0.5), y),
    floatOnly: true,
    saves: "y",
  },
  rsqrt: {
    expr: "inverseSqrt(a)",
    grad: (g, _x, y) => binary("mul", g, unary("scale", unary("pow_scalar", y, 3), -0.5)),
    floatOnly: true,
    saves: "y",
  },
  tanh: {
    expr: TANH("a"),
    grad: (g, _x, y) => binary("mul", g, unary("one_minus_square", y)),
    floatOnly: true,
    saves: "y",
  },
  one_minus_square: {
    expr: "1.0 - a * a",
    grad: (g, x) => binary("mul", g, unary("scale", x, -2)),
    saves: "x",
  },
  sigmoid: {
    expr: "1.0 / (1.0 + exp(-a))",
    grad: (g, _x, y) => binary("mul", g, unary("sigmoid_grad_from_y", y)),
    floatOnly: true,
    saves: "y",
  },
  sigmoid_grad_from_y: { expr: "a * (1.0 - a)", grad: null },
  silu: {
    expr: "a / (1.0 + exp(-a))",
    grad: (g, x) => binary("mul", g, unary("silu_grad", x)),
    floatOnly: true,
    saves: "x",
  },
  silu_grad: { expr: "(1.0 / (1.0 + exp(-a))) * (1.0 + a * (1.0 - 1.0 / (1.0 + exp(-a))))", grad: null },
  gelu: {
    expr: `0.5 * a * (1.0 + ${ERF("(a * 0.7071067811865476)")})`,
    grad: (g, x) => binary("mul", g, unary("gelu_grad", x)),
    floatOnly: true,
    saves: "x",
  },
  gelu_grad: {
    expr: `0.5 * (1.0 + ${ERF("(a * 0.7071067811865476)")}) + a * 0.3989422804014327 * exp(-0.5 * a * a)`,
    grad: null,
  },
  gelu_tanh: {
    expr: `0.5 * a * (1.0 + ${TANH(`(${SQRT_2_OVER_PI} * (a + 0.044715 * a * a * a))`)})`,
    grad: (g, x) => binary("mul", g, unary("gelu_tanh_grad", x)),
    floatOnly: true,
    saves: "x",
  },
  gelu_tanh_grad: {
    // d/dx 0.5 x (1 + tanh(u)), u = c (x + 0.044715 x^3)
    expr: `0.5 * (1.0 + ${TANH(`(${SQRT_2_OVER_PI} * (a + 0.044715 * a * a * a))`)}) + 0.5 * a * (1.0 - ${TANH(`(${SQRT_2_OVER_PI} * (a + 0.044715 * a * a * a))`)} * ${TANH(`(${SQRT_2_OVER_PI} * (a + 0.044715 * a * a * a))`)}) * ${SQRT_2_OVER_PI} * (1.0 + 0.134145 * a * a)`,
    grad: null,
  },
  relu: {
    expr: "max(a, 0.0)",
    grad: (g, x) => binary("mul", g, unary("step", x)),
    floatOnly: true,
    saves: "x",
  },
  step: { expr: "select(0.0, 1.0, a > 0.0)", grad: null, floatOnly: true },
  square: { expr: "a * a", grad: (g, x) => binary("mul", g, unary("scale", x, 2)), saves: "x" },
  reciprocal: {
    expr: "1.0 / a",
    grad: (g, _x, y) => binary("mul", g, unary("scale", unary("square", y), -1)),
    floatOnly: true,
    saves: "y",
  },
  scale: {
    expr: "a * alpha",
    grad: (g, _x, _y, alpha) => unary("scale", g, alpha),
    floatOnly: true,
    saves: "none",
  },
  add_scalar: { expr: "a + alpha", grad: (g) => unary("identity", g), floatOnly: true, saves: "none" },
  // pow with a scalar exponent: defined for negative bases when the exponent is an integer, like torch.pow.
  pow_scalar: {
    expr: "select(select(select(pow(abs(a), alpha), -pow(abs(a), alpha), a < 0.0 && abs(alpha % 2.0) == 1.0), select(pow(abs(a), alpha), sqrt(-1.0 - abs(a)), a < 0.0 && fract(alpha) != 0.0), fract(alpha) != 0.0), 1.0, alpha == 0.0)",
    grad: (g, x, _y, alpha) => binary("mul", g, unary("scale", unary("pow_scalar", x, alpha - 1), alpha)),
    floatOnly: true,
    saves: "x",
  },
  clamp: {
    expr: "clamp(a, alpha, beta)",
    grad: (g, x, _y, alpha, beta) => binary("mul", g, unary("in_range", x, alpha, beta)),
    floatOnly: true,
    saves: "x",
  },
  in_range: { expr: "select(0.0, 1.0, a >= alpha && a <= beta)", grad: null, floatOnly: true },
};

/** Applies a unary map from `UNARY`; `alpha`/`beta` are its scalar parameters. */
export function unary(op: string, x: Tensor, alpha = 0, beta = 0): Tensor {
  const def = UNARY[op];
  if (!def) throw new Error(`unary: unknown op '${op}'`);
  if (def.floatOnly && !isFloat(x.dtype)) throw new DTypeError(`${op}: needs a float tensor, got ${x.dtype}`);
  const out = Tensor.empty(x.shape, { dtype: x.dtype, device: x.device });
  launch({
    op,
    inputs: [{ t: x, strides: x.strides }],
    out,
    shape: x.shape,
    expr: def.expr,
    compute: computeType(x.dtype),
    alpha,
    beta,
  });
  if (def.grad) {
    const grad = def.grad;
    const saves = def.saves ?? "xy";
    const saved = saves === "x" ? [x] : saves === "y" ? [out] : saves === "xy" ? [x, out] : [];
    record(
      op,
      out,
      [x],
      (g, s) => {
        const xs = saves === "x" || saves === "xy" ? s[0]! : x;
        const ys = saves === "y" ? s[0]! : saves === "xy" ? s[1]! : out;
        return [grad(g, xs, ys, alpha, beta)];
      },
      saved,
    );
  }
  return out;
}

// ---- binary ----------------------------------------------------------------------------------

interface BinaryDef {
  expr: string;
  int?: boolean;
  grad: ((g: Tensor, a: Tensor, b: Tensor, y: Tensor) => [Tensor | null, Tensor | null]) | null;
  saves: "ab" | "a" | "b" | "aby" | "by" | "none";
}

export const BINARY: Record<string, BinaryDef> = {
  add: { expr: "a + b", int: true, grad: (g) => [g, g], saves: "none" },
  sub: { expr: "a - b", int: true, grad: (g) => [g, unary("neg", g)], saves: "none" },
  mul: {
    expr: "a * b",
    int: true,
    grad: (g, a, b) => [binary("mul", g, b), binary("mul", g, a)],
    saves: "ab",
  },
  div: {
    expr: "a / b",
    grad: (g, _a, b, y) => {
      const ga = binary("div", g, b);
      return [ga, unary("neg", binary("mul", ga, y))];
    },
    saves: "by",
  },
  pow: {
    expr: "pow(a, b)",
    grad: (g, a, b, y) => [
      binary("mul", g, binary("mul", b, binary("pow", a, unary("add_scalar", b, -1)))),
      binary("mul", g, binary("mul", y, unary("log", a))),
    ],
    saves: "aby",
  },
  maximum: {
    expr: "max(a, b)",
    int: true,
    grad: (g, a, b) => {
      const m = binary("ge", a, b);
      return [binary("mul", g, m), binary("mul", g, unary("add_scalar", unary("neg", m), 1))];
    },
    saves: "ab",
  },
  minimum: {
    expr: "min(a, b)",
    int: true,
    grad: (g, a, b) => {
      const m = binary("le", a, b);
      return [binary("mul", g, m), binary("mul", g, unary("add_scalar", unary("neg", m), 1))];
    },
    saves: "ab",
  },
  gt: { expr: "select(0.0, 1.0, a > b)", grad: null, saves: "none" },
  ge: { expr: "select(0.0, 1.0, a >= b)", grad: null, saves: "none" },
  lt: { expr: "select(0.0, 1.0, a < b)", grad: null, saves: "none" },
  le: { expr: "select(0.0, 1.0, a <= b)", grad: null, saves: "none" },
  eq: { expr: "select(0.0, 1.0, a == b)", grad: null, saves: "none" },
  ne: { expr: "select(0.0, 1.0, a != b)", grad: null, saves: "none" },
};

/** Applies a broadcasting binary op from `BINARY`. Operands must share a dtype. */
export function binary(op: string, a: Tensor, b: Tensor): Tensor {
  const def = BINARY[op];
  if (!def) throw new Error(`binary: unknown op '${op}'`);
  if (a.dtype !== b.dtype) {
    throw new DTypeError(
      `${op}: dtypes differ: a ${fmtShape(a.shape)} ${a.dtype}, b ${fmtShape(b.shape)} ${b.dtype}; cast one first`,
    );
  }
  if (!isFloat(a.dtype) && !def.int) throw new DTypeError(`${op}: needs float tensors, got ${a.dtype}`);
  if (a.device !== b.device) throw new ShapeError(`${op}: operands live on different devices`);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = Tensor.empty(shape, { dtype: a.dtype, device: a.device });
  const isCmp = def.expr.startsWith("select(0.0");
  const compute = computeType(a.dtype);
  const expr = isCmp && compute !== "f32" ? def.expr.replace("0.0", "0").replace("1.0", "1") : def.expr;
  launch({
    op,
    inputs: [
      { t: a, strides: broadcastStrides(a, shape) },
      { t: b, strides: broadcastStrides(b, shape) },
    ],
    out,
    shape,
    expr,
    compute,
  });
  if (def.grad) {
    const grad = def.grad;
    const saves = def.saves;
    const saved: Tensor[] = [];
    if (saves.includes("a")) saved.push(a);
    if (saves.includes("b")) saved.push(b);
    if (saves.includes("y")) saved.push(out);
    const aShape = a.shape;
    const bShape = b.shape;
    record(
      op,
      out,
      [a, b],
      (g, s) => {
        let k = 0;
        const sa = saves.includes("a") ? s[k++]! : a;
        const sb = saves.includes("b") ? s[k++]! : b;
        const sy = saves.includes("y") ? s[k++]! : out;
        const [ga, gb] = grad(g, sa, sb, sy);
        return [ga && sumTo(ga, aShape), gb && sumTo(gb, bShape)];
      },
      saved,
    );
  }
  return out;
}

// ---- copies, casts, fills ---------------------------------------------------------------------

/** A contiguous copy of any view. */
export function contiguousCopy(x: Tensor): Tensor {
  const out = Tensor.empty(x.shape, { dtype: x.dtype, device: x.device });
  launch({
    op: "copy",
    inputs: [{ t: x, strides: x.strides }],
    out,
    shape: x.shape,
    expr: "a",
    compute: computeType(x.dtype),
  });
  return record("contiguous", out, [x], (g) => [g]);
}

/** Writes `src` (broadcast to the view's shape) into the view `dst`, in place. Not recorded for autograd. */
export function assign(dst: Tensor, src: Tensor): void {
  if (src.dtype !== dst.dtype)
    throw new DTypeError(`assign: dtypes differ: dst ${dst.dtype}, src ${src.dtype}`);
  const shape = broadcastShapes("assign", dst.shape, src.shape);
  if (shape.length !== dst.rank || shape.some((d, i) => d !== dst.shape[i])) {
    throw new ShapeError(
      `assign: src ${fmtShape(src.shape)} does not broadcast to dst ${fmtShape(dst.shape)}`,
    );
  }
  launch({
    op: "assign",
    inputs: [{ t: src, strides: broadcastStrides(src, shape) }],
    out: dst,
    shape,
    expr: "a",
    compute: computeType(src.dtype),
  });
}

/** Converts between dtypes (float → int truncates toward zero, like a C cast). */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const out = Tensor.empty(x.shape, { dtype, device: x.device });
  const compute = computeType(x.dtype);
  launch({
    op: `cast_${x.dtype}_${dtype}`,
    inputs: [{ t: x, strides: x.strides }],
    out,
    shape: x.shape,
    expr: "a",
    compute,
  });
  if (isFloat(x.dtype) && isFloat(dtype)) {
    const from = x.dtype;
    return record("cast", out, [x], (g) => [cast(g, from)]);
  }
  return out;
}

/** A tensor of `shape` with every element `value`. */
export function full(
  shape: readonly number[],
  value: number,
  options: { dtype?: DType; device?: Device } = {},
): Tensor {
  const dtype = options.dtype ?? "f32";
  const out = Tensor.empty(shape, { dtype, device: options.device });
  const compute = computeType(dtype);
  const lit = compute === "f32" ? "alpha" : `${compute}(alpha)`;
  launch({ op: "fill", inputs: [], out, shape, expr: lit, compute, alpha: value });
  return out;
}

// ---- reductions needed by broadcasting's backward --------------------------------------------

import { sumAxis } from "../reduce/reduce.js";

/** Sums a broadcast gradient back to `shape` (the inverse of broadcasting). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.rank === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  let t = g;
  const lead = g.rank - shape.length;
  for (let i = 0; i < lead; i++) {
    const next = sumAxis(t, 0, false);
    if (t !== g) t.dispose();
    t = next;
  }
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1 && t.shape[i] !== 1) {
      const next = sumAxis(t, i, true);
      if (t !== g) t.dispose();
      t = next;
    }
  }
  if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ShapeError(`sumTo: cannot reduce ${fmtShape(g.shape)} to ${fmtShape(shape)}`);
  }
  return t;
}
