// Shared machinery for kernels that walk rows of a contiguous [rows, cols] view: reductions over
// the innermost axis, softmax, norms, cross-entropy. One generator (`rowShader`) makes the WGSL
// prelude (bindings, load/store helpers, cross-lane reductions); `DUMP_WGSL=1` prints the result.
import type { Device } from "../../device.js";
import type { DType } from "../../dtype.js";
import { grid1d } from "../elementwise/elementwise.js";

/**
 * How invocations map to rows.
 * - lanes = 1: one invocation per row, `wg` rows per workgroup, no workgroup memory or barriers.
 *   Fastest on lavapipe, which runs a workgroup on one CPU thread and vectorises across invocations.
 * - lanes = wg: one workgroup per row; lanes stride the row, then a subgroup reduction (when the
 *   workgroup is exactly one subgroup) or a workgroup-memory tree. Fastest on GPUs, and on lavapipe
 *   when there are too few rows to keep every core busy.
 */
export interface RowPlan {
  wg: number;
  lanes: number;
  subgroups: boolean;
}

let forcedPlan: ((device: Device, rows: number) => RowPlan) | null = null;

export type RowVariant = "rows" | "subgroup" | "tree";

function forced(variant: RowVariant): (device: Device) => RowPlan {
  return (device) =>
    variant === "rows"
      ? { wg: 64, lanes: 1, subgroups: false }
      : variant === "subgroup"
        ? (subgroupPlan(device) ?? { wg: 8, lanes: 8, subgroups: false })
        : { wg: 256, lanes: 256, subgroups: false };
}

/** Runs `fn` with every row kernel using one variant (tests exercise each on any adapter). */
export async function withRowVariant<T>(variant: RowVariant, fn: () => Promise<T> | T): Promise<T> {
  const prev = forcedPlan;
  forcedPlan = forced(variant);
  try {
    return await fn();
  } finally {
    forcedPlan = prev;
  }
}

/** A one-subgroup workgroup, when the adapter's subgroup size is fixed and known. */
function subgroupPlan(device: Device): RowPlan | null {
  const { subgroupMinSize: lo, subgroupMaxSize: hi } = device.info;
  if (!device.hasSubgroups || !lo || lo !== hi || lo > 64 || (lo & (lo - 1)) !== 0) return null;
  return { wg: lo, lanes: lo, subgroups: true };
}

/** Rows below which lavapipe's one-invocation-per-row plan would leave cores idle. */
const SOFTWARE_MIN_ROWS = 128;

export function rowPlan(device: Device, rows: number): RowPlan {
  if (forcedPlan) return forcedPlan(device, rows);
  if (device.info.isSoftware) {
    if (rows >= SOFTWARE_MIN_ROWS) return { wg: 64, lanes: 1, subgroups: false };
    return subgroupPlan(device) ?? { wg: 8, lanes: 8, subgroups: false };
  }
  return { wg: 256, lanes: 256, subgroups: false };
}

/** Launch grid covering `rows` rows under `plan`. */
export function rowGrid(device: Device, rows: number, plan: RowPlan): [number, number] {
  return grid1d(device, rows, plan.wg / plan.lanes);
}

/**
 * Column kernels (sums down the rows of [rows, cols] with cols % 4 == 0): vec4 columns per
 * invocation (U) and rows per chunk. On lavapipe 8 vec4 columns × 256-row chunks ran 14× faster
 * than one scalar column per invocation over 4096 × 4096 (independent loads, short sweeps); GPUs
 * want one vec4 per thread for coalescing.
 */
export function columnTiling(device: Device, cols4: number): { u: number; chunkRows: number } {
  const maxU = device.info.isSoftware ? 8 : 1;
  let u = maxU;
  while (u > 1 && cols4 % u !== 0) u /= 2;
  return { u, chunkRows: device.info.isSoftware ? 256 : 64 };
}

export interface RowBuffer {
  name: string;
  dtype: DType;
  write?: boolean;
  /** Declared as array<vec4<T>>: the caller guarantees every ld4/st4 index is a multiple of 4. */
  vec4?: boolean;
}

/** Whether a row-shaped operand can be read as vec4: rows of a multiple of 4 starting 4-aligned. */
export function vec4Ok(cols: number, offset: number): boolean {
  return cols % 4 === 0 && offset % 4 === 0;
}

function helpers(b: RowBuffer): string {
  const { name, dtype } = b;
  if (dtype === "i32" || dtype === "u32") {
    return (
      `fn ld_${name}(e: u32) -> ${dtype} { return ${name}[e]; }\n` +
      (b.write ? `fn st_${name}(e: u32, v: ${dtype}) { ${name}[e] = v; }\n` : "")
    );
  }
  const T = dtype;
  if (b.vec4) {
    let s = `fn ld_${name}(e: u32) -> f32 { return f32(${name}[e >> 2u][e & 3u]); }\n`;
    s += `fn ld4_${name}(e: u32) -> vec4<f32> { return vec4<f32>(${name}[e >> 2u]); }\n`;
    if (b.write) {
      s += `fn st_${name}(e: u32, v: f32) { ${name}[e >> 2u][e & 3u] = ${T}(v); }\n`;
      s += `fn st4_${name}(e: u32, v: vec4<f32>) { ${name}[e >> 2u] = vec4<${T}>(v); }\n`;
    }
    return s;
  }
  let s = `fn ld_${name}(e: u32) -> f32 { return f32(${name}[e]); }\n`;
  s += `fn ld4_${name}(e: u32) -> vec4<f32> { return vec4<f32>(f32(${name}[e]), f32(${name}[e + 1u]), f32(${name}[e + 2u]), f32(${name}[e + 3u])); }\n`;
  if (b.write) {
    s += `fn st_${name}(e: u32, v: f32) { ${name}[e] = ${T}(v); }\n`;
    s += `fn st4_${name}(e: u32, v: vec4<f32>) { ${name}[e] = ${T}(v.x); ${name}[e + 1u] = ${T}(v.y); ${name}[e + 2u] = ${T}(v.z); ${name}[e + 3u] = ${T}(v.w); }\n`;
  }
  return s;
}

// Cross-lane reductions. Every lane of a row calls them at the same point (uniform control flow);
// they return the row's result to every lane. `NONE` marks "no index yet" in arg-reductions.
function reductions(plan: RowPlan): string {
  if (plan.lanes === 1) {
    return `fn red_sum(v: f32, lane: u32) -> f32 { return v; }
fn red_max(v: f32, lane: u32) -> f32 { return v; }
fn red_argmax(v: f32, i: u32, lane: u32) -> vec2<u32> { return vec2<u32>(bitcast<u32>(v), i); }
`;
  }
  if (plan.subgroups) {
    return `fn red_sum(v: f32, lane: u32) -> f32 { return subgroupAdd(v); }
fn red_max(v: f32, lane: u32) -> f32 { return subgroupMax(v); }
fn red_argmax(v: f32, i: u32, lane: u32) -> vec2<u32> {
  let m = subgroupMax(select(v, neg_inf(), i == NONE));
  // Ties go to the smallest index, like torch.max(dim).
  let best = subgroupMin(select(NONE, i, v == m && i != NONE));
  return vec2<u32>(bitcast<u32>(m), best);
}
`;
  }
  return `var<workgroup> red_v: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;
fn red_sum(v: f32, lane: u32) -> f32 {
  red_v[lane] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { red_v[lane] += red_v[lane + s]; }
    workgroupBarrier();
  }
  let r = red_v[0];
  workgroupBarrier();
  return r;
}
fn red_max(v: f32, lane: u32) -> f32 {
  red_v[lane] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { red_v[lane] = max(red_v[lane], red_v[lane + s]); }
    workgroupBarrier();
  }
  let r = red_v[0];
  workgroupBarrier();
  return r;
}
fn red_argmax(v: f32, i: u32, lane: u32) -> vec2<u32> {
  red_v[lane] = v;
  red_i[lane] = i;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      let ov = red_v[lane + s];
      let oi = red_i[lane + s];
      let mv = red_v[lane];
      let mi = red_i[lane];
      if (better(ov, oi, mv, mi)) { red_v[lane] = ov; red_i[lane] = oi; }
    }
    workgroupBarrier();
  }
  let r = vec2<u32>(bitcast<u32>(red_v[0]), red_i[0]);
  workgroupBarrier();
  return r;
}
`;
}

// Online softmax normaliser: a lane keeps (m, s) = (running max, Σ exp(x - m)) and rescales s
// when the max grows, so the row is read once for both. `c` avoids -inf - -inf = NaN while a
// lane has seen only -inf.
const ONLINE = `fn online4(ms: vec2<f32>, q: vec4<f32>) -> vec2<f32> {
  let mn = max(ms.x, max(max(q.x, q.y), max(q.z, q.w)));
  let c = select(mn, 0.0, mn == neg_inf());
  let e = exp(q - c);
  return vec2<f32>(mn, ms.y * exp(ms.x - c) + ((e.x + e.y) + (e.z + e.w)));
}
fn online1(ms: vec2<f32>, q: f32) -> vec2<f32> {
  let mn = max(ms.x, q);
  let c = select(mn, 0.0, mn == neg_inf());
  return vec2<f32>(mn, ms.y * exp(ms.x - c) + exp(q - c));
}
// Merges the lanes' (m, s) into the row's (max, Σ exp(x - max)); max is 0 for an all -inf row.
fn online_merge(ms: vec2<f32>, lane: u32) -> vec2<f32> {
  let m = red_max(ms.x, lane);
  let c = select(m, 0.0, m == neg_inf());
  return vec2<f32>(c, red_sum(ms.y * exp(ms.x - c), lane));
}
`;

/** The prelude every row kernel starts with; its template then declares `Params` and `main`. */
export function rowShader(template: string, plan: RowPlan, buffers: readonly RowBuffer[]): string {
  const f16 = buffers.some((b) => b.dtype === "f16");
  const rpw = plan.wg / plan.lanes;
  // With one row per workgroup the row index must not depend on local_invocation_index: barriers
  // after the bounds check need uniform control flow.
  const rowOf =
    rpw === 1
      ? "fn row_of(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return wid.y * nwg.x + wid.x; }"
      : "fn row_of(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.y * nwg.x + wid.x) * RPW + lid / LANES; }";
  const prelude = [
    f16 ? "enable f16;" : "",
    plan.subgroups ? "enable subgroups;" : "",
    `const WG: u32 = ${plan.wg}u;`,
    `const LANES: u32 = ${plan.lanes}u;`,
    `const RPW: u32 = ${rpw}u;`,
    "const NONE: u32 = 0xffffffffu;",
    "// WGSL rejects infinities and NaN in constant expressions: read the bits from private vars.",
    "var<private> NEG_INF_BITS: u32 = 0xff800000u;",
    "var<private> NAN_BITS: u32 = 0x7fc00000u;",
    "fn neg_inf() -> f32 { return bitcast<f32>(NEG_INF_BITS); }",
    "fn nan() -> f32 { return bitcast<f32>(NAN_BITS); }",
    ...buffers.map(
      (b, i) =>
        `@group(0) @binding(${i}) var<storage, ${b.write ? "read_write" : "read"}> ${b.name}: array<${b.vec4 ? `vec4<${b.dtype}>` : b.dtype}>;`,
    ),
    rowOf,
    "fn lane_of(lid: u32) -> u32 { return lid % LANES; }",
    "// (v, i) beats (w, j): a real index over none, then larger value, then smaller index.",
    "fn better(v: f32, i: u32, w: f32, j: u32) -> bool { return i != NONE && (j == NONE || v > w || (v == w && i < j)); }",
    ...buffers.map(helpers),
    reductions(plan),
    ONLINE,
  ].join("\n");
  return template.replace("{{PRELUDE}}", prelude).replace("{{PARAMS_BINDING}}", String(buffers.length));
}
