import { record } from "../../autograd.js";
import type { Device } from "../../device.js";
import { bytesPerElement, type DType } from "../../dtype.js";
import { DTypeError, fmtShape, ShapeError } from "../../errors.js";
import { Tensor } from "../../tensor.js";
import forwardSrc from "./attention.wgsl";
import commonSrc from "./attention-common.wgsl";
import deltaSrc from "./attention-grad-delta.wgsl";
import gradKvSrc from "./attention-grad-kv.wgsl";
import gradKvSubgroupSrc from "./attention-grad-kv-subgroup.wgsl";
import gradQSrc from "./attention-grad-q.wgsl";
import gradQSubgroupSrc from "./attention-grad-q-subgroup.wgsl";
import subgroupSrc from "./attention-subgroup.wgsl";

export interface AttentionOptions {
  /** Multiplies q . k; default 1 / sqrt(D). */
  scale?: number;
  /** Query i sits at absolute position Tk - Tq + i (KV-cache decode) and sees keys j <= that position. */
  causal?: boolean;
  /** [B, Tk], non-zero = keep; f32, i32 or u32. */
  keyPaddingMask?: Tensor;
  /** Sliding window: key j is allowed iff pos_i - j < window (Mistral). 0 or undefined: none. */
  window?: number;
  /**
   * Full mask [B, 1|Hq, Tq, Tk] (any dim may be a broadcast view). f32 is additive (values at or
   * below -1e30, -inf included, mask the pair); i32/u32 is boolean (non-zero = keep).
   */
  mask?: Tensor;
  /**
   * Kernel family; default "subgroup" on software adapters (lavapipe) with a fixed subgroup size,
   * "rows" on other software adapters, "tiled" elsewhere.
   */
  variant?: AttentionVariant;
}

/**
 * "rows": one query (or key) row per invocation, registers only, no workgroup memory or barriers.
 * "subgroup": as rows, but each lane loads one key row of a block (the dk/dv kernel: one query
 * and dO row) and shares it by subgroupBroadcast (lavapipe, where loads are the cost).
 * "tiled": K/V (or Q/dO) tiles staged in workgroup memory (GPUs).
 */
export type AttentionVariant = "rows" | "subgroup" | "tiled";

export interface AttentionOutput {
  /** [B, Hq, Tq, D], contiguous, q's dtype. */
  o: Tensor;
  /** Row logsumexp [B, Hq, Tq], f32; -inf for a row that sees no key. */
  lse: Tensor;
}

export interface AttentionGrads {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
}

const MAX_HEAD_DIM = 256;
/** Workgroup memory the tiled kernels may use: WebGPU's default limit, so no adapter refuses them. */
const TILE_BYTES = 16384;

const FLAG_CAUSAL = 1;
const FLAG_KEY_PAD = 2;
const FLAG_KEY_PAD_FLOAT = 4;
const FLAG_BIAS = 8;
const FLAG_BIAS_BOOL = 16;

// Field order of `struct Params` in attention-common.wgsl.
const PARAM_FIELDS = [
  "B",
  "Hq",
  "Hkv",
  "Tq",
  "Tk",
  "group",
  "window",
  "flags",
  "scale",
  "kpOff",
  "kpsB",
  "kpsK",
  "biasOff",
  "bsB",
  "bsH",
  "bsQ",
  "bsK",
  "qOff",
  "kOff",
  "vOff",
  "oOff",
  "doOff",
  "lseOff",
  "pad2",
  "qsB",
  "qsH",
  "qsT",
  "qsD",
  "ksB",
  "ksH",
  "ksT",
  "ksD",
  "vsB",
  "vsH",
  "vsT",
  "vsD",
  "osB",
  "osH",
  "osT",
  "osD",
  "dosB",
  "dosH",
  "dosT",
  "dosD",
  "D",
  "tileRows",
  "pad0",
  "pad1",
] as const;
type ParamName = (typeof PARAM_FIELDS)[number];

interface Tuning {
  /** Private array capacity: D itself, or with uniform bounds the bucket D falls in. */
  headDim: number;
  /** Loop bounds read from the uniform block (see attention-common.wgsl). */
  uniformBounds: boolean;
  /** Invocations per workgroup = rows per workgroup. */
  block: number;
  /** Rows per workgroup-memory tile (tiled). */
  tile: number;
  /** Scores between two rescales (rows forward). */
  chunk: number;
  /** Subgroup size (subgroup variant). */
  sg: number;
  /**
   * Subgroup kernels: q, k, v and dO rows are contiguous and 4-aligned, so they are bound as
   * `vec4` arrays and each `ld4*` helper is one load instead of four (see `attentionShader`).
   */
  rowVec4?: boolean;
}

/**
 * Pipeline constants for one launch. On lavapipe blocks of 8, 16 and 32 rows measured within
 * noise of each other (bench/attention-tune.ts); 16 keeps more workgroups for short sequences.
 * The tiled kernels fit two f32 tiles (plus `extraBytesPerRow`) in 16 KiB of workgroup memory.
 * On software adapters loop bounds are uniform (fast compiles, one pipeline per D bucket).
 */
function tuning(device: Device, variant: AttentionVariant, D: number, extraBytesPerRow = 0): Tuning {
  const uniformBounds = device.info.isSoftware;
  const headDim = uniformBounds ? Math.max(16, 2 ** Math.ceil(Math.log2(D))) : D;
  const sg = fixedSubgroupSize(device) ?? 8;
  if (variant === "rows") return { headDim, uniformBounds, block: 16, tile: 1, chunk: 8, sg };
  if (variant === "subgroup")
    return { headDim, uniformBounds, block: Math.max(16, sg), tile: 1, chunk: 8, sg };
  const rowBytes = 2 * 4 * headDim + extraBytesPerRow; // two f32 tiles
  const tile = Math.max(1, Math.min(32, Math.floor(TILE_BYTES / rowBytes)));
  return { headDim, uniformBounds, block: 64, tile, chunk: 8, sg };
}

/** Row tensors the kernels read four elements at a time: binding name, loader, its D-stride field. */
const ROW_LOADS = [
  ["q", "ld4q", "qsD"],
  ["k", "ld4k", "ksD"],
  ["v", "ld4v", "vsD"],
  ["dout", "ld4do", "dosD"],
] as const;

/**
 * Appends `ld4<x>(base, d)` — elements d .. d+3 of a row, zeros past D (which need not be a
 * multiple of 4) — for every row tensor the kernel calls it on. With `vec4` (every row contiguous
 * and 4-aligned) the binding becomes a vec4 array and each call one load: lavapipe turns each
 * storage load into a per-lane loop with bounds checks, so a vec4 load costs about a scalar one.
 */
function withRowLoads(kernelSrc: string, vec4: boolean): string {
  let kernel = kernelSrc;
  for (const [name, fn, strideField] of ROW_LOADS) {
    if (!kernel.includes(`${fn}(`)) continue;
    const binding = `var<storage, read> ${name}: array<elt>;`;
    if (!kernel.includes(binding))
      throw new Error(`internal: attention kernel calls ${fn} but does not bind ${name}`);
    if (vec4) {
      kernel = kernel.replace(binding, `var<storage, read> ${name}: array<vec4<elt>>;`);
      kernel += `\nfn ${fn}(base: u32, d: u32) -> vec4<f32> { return vec4<f32>(${name}[(base + d) >> 2u]); }\n`;
    } else {
      kernel += `
fn ${fn}(base: u32, d: u32) -> vec4<f32> {
  var r = vec4<f32>(0.0);
  for (var e = 0u; e < 4u; e++) { if (d + e < dim()) { r[e] = f32(${name}[base + (d + e) * P.${strideField}]); } }
  return r;
}
`;
    }
  }
  return kernel;
}

/**
 * The one generator of attention WGSL: the shared header with its constants set, then the
 * kernel. `DUMP_WGSL=1` prints it (the device does, when it compiles the pipeline).
 */
export function attentionShader(kernelSrc: string, dtype: DType, t: Tuning): string {
  let kernel = kernelSrc;
  const consts: Record<string, string> = {
    HEAD_DIM: `${t.headDim}u`,
    BLOCK: `${t.block}u`,
    TILE: `${t.tile}u`,
    CHUNK: `${t.chunk}u`,
    SG: `${t.sg}u`,
    UNIFORM_BOUNDS: String(t.uniformBounds),
  };
  let header = commonSrc;
  for (const [name, value] of Object.entries(consts)) {
    const re = new RegExp(`const ${name}: (u32|bool) = [^;]+;`);
    if (!re.test(header)) throw new Error(`internal: attention-common.wgsl has no const ${name}`);
    header = header.replace(re, (_m, type: string) => `const ${name}: ${type} = ${value};`);
  }
  if (dtype === "f16") header = `enable f16;\n${header.replace("alias elt = f32;", "alias elt = f16;")}`;
  kernel = withRowLoads(kernel, t.rowVec4 ?? false);
  if (kernel.includes("subgroupBroadcast")) {
    header = `enable subgroups;\n${header}`;
    // subgroupBroadcast wants a constant lane: repeat each `@lanes` line per lane.
    kernel = kernel
      .split("\n")
      .flatMap((line) =>
        line.includes("// @lanes")
          ? Array.from({ length: t.sg }, (_, c) =>
              line.replace("// @lanes", "").replaceAll("LANE", `${c}u`).trimEnd(),
            )
          : [line],
      )
      .join("\n");
  }
  return `${header}\n${kernel}`;
}

interface Problem {
  device: Device;
  dtype: DType;
  B: number;
  Hq: number;
  Hkv: number;
  Tq: number;
  Tk: number;
  D: number;
  scale: number;
  variant: AttentionVariant;
  /** Uniform block with shapes, flags, masks and q/k/v strides; o and dO filled per launch. */
  params: Uint32Array;
  /** The masks binding (key padding and/or full mask, possibly a combined temporary). */
  masks: GPUBuffer;
  /** Temporaries to release after the last launch. */
  temps: Tensor[];
}

function setParam(p: Uint32Array, name: ParamName, value: number): void {
  p[PARAM_FIELDS.indexOf(name)] = value;
}

/** The uniform block for one launch: the problem's fields plus that pipeline's loop bounds. */
function withTuning(p: Uint32Array, D: number, t: Tuning): Uint32Array {
  const out = p.slice();
  setParam(out, "D", D);
  setParam(out, "tileRows", t.tile);
  return out;
}

function setStrides(p: Uint32Array, prefix: "q" | "k" | "v" | "o" | "do", t: Tensor): void {
  const names = ["B", "H", "T", "D"] as const;
  for (let a = 0; a < 4; a++)
    setParam(p, `${prefix}s${names[a]}` as ParamName, t.shape[a] === 1 ? 0 : t.strides[a]!);
  setParam(p, `${prefix}Off` as ParamName, t.offset);
}

/** Largest element index a view reads, plus one: the view must lie within one binding. */
function extent(t: Tensor): number {
  let last = t.offset;
  for (let a = 0; a < t.rank; a++) last += (t.shape[a]! - 1) * Math.abs(t.strides[a]!);
  return t.size === 0 ? 0 : last + 1;
}

function checkBinding(op: string, name: string, t: Tensor): void {
  const bytes = extent(t) * bytesPerElement(t.dtype);
  const limit = t.device.maxBindingBytes;
  if (bytes > limit) {
    throw new ShapeError(
      `${op}: ${name} ${fmtShape(t.shape)} spans ${bytes} bytes of its buffer, over the adapter's ` +
        `maxStorageBufferBindingSize ${limit}; split the batch or the heads`,
    );
  }
  if (extent(t) > 0xffffffff)
    throw new ShapeError(`${op}: ${name} ${fmtShape(t.shape)} has more than 2^32 elements`);
  if (t.strides.some((s) => s < 0))
    throw new ShapeError(`${op}: ${name} has a negative stride; make it contiguous first`);
}

/** The subgroup size when the adapter fixes one (lavapipe: 8 on AVX2), else null. */
function fixedSubgroupSize(device: Device): number | null {
  const { subgroupMinSize: lo, subgroupMaxSize: hi } = device.info;
  return device.hasSubgroups && lo !== undefined && lo === hi && lo >= 2 ? lo : null;
}

/** Whether every row of these [B, H, T, D] views is contiguous and starts at a multiple of 4 elements. */
function rowsAligned(D: number, ts: readonly Tensor[]): boolean {
  return (
    D % 4 === 0 &&
    ts.every(
      (t) =>
        t.strides[3] === 1 &&
        t.offset % 4 === 0 &&
        t.storage.buffer.size % 16 === 0 &&
        [0, 1, 2].every((a) => t.shape[a] === 1 || t.strides[a]! % 4 === 0),
    )
  );
}

function defaultVariant(device: Device): AttentionVariant {
  if (!device.info.isSoftware) return "tiled";
  return fixedSubgroupSize(device) ? "subgroup" : "rows";
}

/** Validates q, k, v and the options; builds the uniform block and the masks binding. */
function setup(op: string, q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Problem {
  for (const [name, t] of [
    ["q", q],
    ["k", k],
    ["v", v],
  ] as const) {
    if (t.rank !== 4) throw new ShapeError(`${op}: ${name} must be [B, H, T, D], got ${fmtShape(t.shape)}`);
  }
  const [B, Hq, Tq, D] = q.shape as [number, number, number, number];
  const [Bk, Hkv, Tk, Dk] = k.shape as [number, number, number, number];
  const shapes = `q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`;
  if (v.shape.some((d, a) => d !== k.shape[a]))
    throw new ShapeError(`${op}: k and v shapes differ: ${shapes}`);
  if (Bk !== B) throw new ShapeError(`${op}: batch sizes differ: ${shapes}`);
  if (Dk !== D) throw new ShapeError(`${op}: head dims differ: ${shapes}`);
  if (Hkv === 0 || Hq % Hkv !== 0) {
    throw new ShapeError(`${op}: query heads ${Hq} are not a multiple of KV heads ${Hkv}: ${shapes}`);
  }
  if (D < 1 || D > MAX_HEAD_DIM)
    throw new ShapeError(`${op}: head dim ${D} is outside 1..${MAX_HEAD_DIM}: ${shapes}`);
  if (q.dtype !== k.dtype || q.dtype !== v.dtype) {
    throw new DTypeError(`${op}: q, k, v dtypes differ: ${q.dtype}, ${k.dtype}, ${v.dtype}`);
  }
  if (q.dtype !== "f32" && q.dtype !== "f16")
    throw new DTypeError(`${op}: q has dtype ${q.dtype}; expected f32 or f16`);
  const device = q.device;
  if (k.device !== device || v.device !== device)
    throw new ShapeError(`${op}: q, k, v live on different devices`);
  if (q.dtype === "f16" && !device.hasF16)
    throw new DTypeError(`${op}: f16 inputs need the adapter's shader-f16 feature`);
  for (const [name, t] of [
    ["q", q],
    ["k", k],
    ["v", v],
  ] as const)
    checkBinding(op, name, t);

  const scale = opts.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(scale)) throw new ShapeError(`${op}: scale must be finite, got ${scale}`);
  const window = opts.window ?? 0;
  if (!Number.isInteger(window) || window < 0)
    throw new ShapeError(`${op}: window must be a non-negative integer, got ${window}`);

  const p = new Uint32Array(PARAM_FIELDS.length);
  const pf = new Float32Array(p.buffer);
  setParam(p, "B", B);
  setParam(p, "Hq", Hq);
  setParam(p, "Hkv", Hkv);
  setParam(p, "Tq", Tq);
  setParam(p, "Tk", Tk);
  setParam(p, "group", Hq / Hkv);
  setParam(p, "window", window);
  pf[PARAM_FIELDS.indexOf("scale")] = scale;
  setStrides(p, "q", q);
  setStrides(p, "k", k);
  setStrides(p, "v", v);

  let flags = opts.causal ? FLAG_CAUSAL : 0;
  const temps: Tensor[] = [];
  const kp = opts.keyPaddingMask;
  const mask = opts.mask;
  if (kp) {
    if (kp.rank !== 2 || kp.shape[0] !== B || kp.shape[1] !== Tk) {
      throw new ShapeError(
        `${op}: keyPaddingMask must be [B, Tk] = [${B}, ${Tk}], got ${fmtShape(kp.shape)} (${shapes})`,
      );
    }
    if (kp.dtype === "f16")
      throw new DTypeError(`${op}: keyPaddingMask has dtype f16; expected f32, i32 or u32`);
    if (kp.device !== device) throw new ShapeError(`${op}: keyPaddingMask lives on another device`);
    checkBinding(op, "keyPaddingMask", kp);
    flags |= FLAG_KEY_PAD | (kp.dtype === "f32" ? FLAG_KEY_PAD_FLOAT : 0);
    setParam(p, "kpsB", kp.shape[0] === 1 ? 0 : kp.strides[0]!);
    setParam(p, "kpsK", kp.shape[1] === 1 ? 0 : kp.strides[1]!);
  }
  if (mask) {
    const ok =
      mask.rank === 4 &&
      (mask.shape[0] === B || mask.shape[0] === 1) &&
      (mask.shape[1] === Hq || mask.shape[1] === 1) &&
      mask.shape[2] === Tq &&
      mask.shape[3] === Tk;
    if (!ok)
      throw new ShapeError(
        `${op}: mask must be [B|1, Hq|1, Tq, Tk] = [${B}, ${Hq}, ${Tq}, ${Tk}], got ${fmtShape(mask.shape)}`,
      );
    if (mask.dtype === "f16")
      throw new DTypeError(`${op}: mask has dtype f16; expected f32 (additive) or i32/u32 (boolean)`);
    if (mask.device !== device) throw new ShapeError(`${op}: mask lives on another device`);
    checkBinding(op, "mask", mask);
    flags |= FLAG_BIAS | (mask.dtype === "f32" ? 0 : FLAG_BIAS_BOOL);
    const names = ["bsB", "bsH", "bsQ", "bsK"] as const;
    for (let a = 0; a < 4; a++) setParam(p, names[a]!, mask.shape[a] === 1 ? 0 : mask.strides[a]!);
  }
  // Both masks share one binding, keeping the backward kernels within 8 storage buffers: when
  // both are given they are copied side by side into a temporary (GPU-side copies).
  let masks: GPUBuffer = q.storage.buffer; // any buffer: never read without a flag
  if (kp && mask) {
    const kpWords = extent(kp);
    const maskWords = extent(mask);
    const both = Tensor.empty([kpWords + maskWords], { dtype: "u32", device });
    temps.push(both);
    device.copyBuffer(kp.storage.buffer, 0, both.storage.buffer, 0, kpWords * 4);
    device.copyBuffer(mask.storage.buffer, 0, both.storage.buffer, kpWords * 4, maskWords * 4);
    checkBinding(op, "keyPaddingMask + mask", both);
    masks = both.storage.buffer;
    setParam(p, "kpOff", kp.offset);
    setParam(p, "biasOff", kpWords + mask.offset);
  } else if (kp) {
    masks = kp.storage.buffer;
    setParam(p, "kpOff", kp.offset);
  } else if (mask) {
    masks = mask.storage.buffer;
    setParam(p, "biasOff", mask.offset);
  }
  setParam(p, "flags", flags);
  const variant = opts.variant ?? defaultVariant(device);
  if (variant === "subgroup" && !fixedSubgroupSize(device)) {
    throw new ShapeError(`${op}: variant "subgroup" needs the subgroups feature with a fixed subgroup size`);
  }
  return { device, dtype: q.dtype, B, Hq, Hkv, Tq, Tk, D, scale, variant, params: p, masks, temps };
}

function finish(pr: Problem): void {
  for (const t of pr.temps) t.dispose();
}

function launchForward(pr: Problem, q: Tensor, k: Tensor, v: Tensor): AttentionOutput {
  const { device, B, Hq, Tq, D } = pr;
  const o = Tensor.empty([B, Hq, Tq, D], { dtype: pr.dtype, device });
  const lse = Tensor.empty([B, Hq, Tq], { dtype: "f32", device });
  setStrides(pr.params, "o", o);
  const t = tuning(device, pr.variant, D);
  t.rowVec4 = pr.variant === "subgroup" && rowsAligned(D, [q, k, v]);
  device.dispatch({
    op: `attention_${pr.variant}`,
    code: attentionShader(pr.variant === "subgroup" ? subgroupSrc : forwardSrc, pr.dtype, t),
    entryPoint: `forward_${pr.variant}`,
    buffers: [q, k, v]
      .map((x) => ({ buffer: x.storage.buffer }))
      .concat({ buffer: pr.masks }, { buffer: o.storage.buffer }, { buffer: lse.storage.buffer }),
    uniforms: withTuning(pr.params, D, t),
    workgroups: [Math.ceil(Tq / t.block), Hq, B],
    writable: [4, 5],
  });
  return { o, lse };
}

/**
 * Fused attention forward: o = softmax(scale * q k^T + masks) v and the row logsumexp,
 * without autograd. q [B, Hq, Tq, D], k and v [B, Hkv, Tk, D] (Hq a multiple of Hkv), any strides.
 */
export function attentionForward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: AttentionOptions = {},
): AttentionOutput {
  const pr = setup("attention", q, k, v, opts);
  try {
    return launchForward(pr, q, k, v);
  } finally {
    finish(pr);
  }
}

/**
 * Gradients of attention (FlashAttention-2): dq, dk, dv given dO, from the forward's o and lse.
 * Three launches: Di = rowsum(dO * o), then dk/dv per key row, then dq per query row (no atomics).
 * Pass the same options as the forward. The gradients are contiguous in q's dtype.
 */
export function attentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: Tensor,
  lse: Tensor,
  dout: Tensor,
  opts: AttentionOptions = {},
): AttentionGrads {
  const op = "attention backward";
  const pr = setup(op, q, k, v, opts);
  const { device, B, Hq, Hkv, Tq, Tk, D } = pr;
  try {
    for (const [name, t] of [
      ["o", o],
      ["dout", dout],
    ] as const) {
      if (t.rank !== 4 || t.shape.some((d, a) => d !== q.shape[a])) {
        throw new ShapeError(`${op}: ${name} must match q ${fmtShape(q.shape)}, got ${fmtShape(t.shape)}`);
      }
      if (t.dtype !== q.dtype) throw new DTypeError(`${op}: ${name} has dtype ${t.dtype}, q has ${q.dtype}`);
      checkBinding(op, name, t);
    }
    if (
      lse.rank !== 3 ||
      lse.shape[0] !== B ||
      lse.shape[1] !== Hq ||
      lse.shape[2] !== Tq ||
      lse.dtype !== "f32"
    ) {
      throw new ShapeError(
        `${op}: lse must be f32 [${B}, ${Hq}, ${Tq}], got ${lse.dtype} ${fmtShape(lse.shape)}`,
      );
    }
    const lseC = lse.contiguous();
    if (lseC !== lse) pr.temps.push(lseC);
    setParam(pr.params, "lseOff", lseC.offset);
    setStrides(pr.params, "o", o);
    setStrides(pr.params, "do", dout);

    const stats = Tensor.empty([B, Hq, Tq, 2], { dtype: "f32", device });
    pr.temps.push(stats);
    const dq = Tensor.empty([B, Hq, Tq, D], { dtype: pr.dtype, device });
    const dk = Tensor.empty([B, Hkv, Tk, D], { dtype: pr.dtype, device });
    const dv = Tensor.empty([B, Hkv, Tk, D], { dtype: pr.dtype, device });
    const bv = pr.variant;
    const kernels = {
      rows: { kv: gradKvSrc, q: gradQSrc },
      tiled: { kv: gradKvSrc, q: gradQSrc },
      subgroup: { kv: gradKvSubgroupSrc, q: gradQSubgroupSrc },
    }[bv];
    const buf = (t: Tensor) => ({ buffer: t.storage.buffer });

    const td = tuning(device, "rows", D);
    device.dispatch({
      op: "attention_grad_delta",
      code: attentionShader(deltaSrc, pr.dtype, td),
      entryPoint: "grad_delta",
      buffers: [buf(o), buf(dout), buf(lseC), buf(stats)],
      uniforms: withTuning(pr.params, D, td),
      workgroups: [Math.ceil(Tq / td.block), Hq, B],
      writable: [3],
    });
    const inputs = [buf(q), buf(k), buf(v), { buffer: pr.masks }, buf(dout), buf(stats)];
    // Q and dO tiles (plus 8 bytes of stats per row) share workgroup memory in grad_kv_tiled.
    const tkv = tuning(device, bv, D, 8);
    tkv.rowVec4 = bv === "subgroup" && rowsAligned(D, [q, k, v, dout]);
    device.dispatch({
      op: `attention_grad_kv_${bv}`,
      code: attentionShader(kernels.kv, pr.dtype, tkv),
      entryPoint: `grad_kv_${bv}`,
      buffers: [...inputs, buf(dk), buf(dv)],
      uniforms: withTuning(pr.params, D, tkv),
      workgroups: [Math.ceil(Tk / tkv.block), Hkv, B],
      writable: [6, 7],
    });
    const tq = { ...tuning(device, bv, D), rowVec4: tkv.rowVec4 };
    device.dispatch({
      op: `attention_grad_q_${bv}`,
      code: attentionShader(kernels.q, pr.dtype, tq),
      entryPoint: `grad_q_${bv}`,
      buffers: [...inputs, buf(dq)],
      uniforms: withTuning(pr.params, D, tq),
      workgroups: [Math.ceil(Tq / tq.block), Hq, B],
      writable: [6],
    });
    return { dq, dk, dv };
  } finally {
    finish(pr);
  }
}

/**
 * Scaled dot-product attention, fused (the [Tq, Tk] scores never exist), recorded for autograd.
 * q [B, Hq, Tq, D]; k, v [B, Hkv, Tk, D] with Hq = g * Hkv (query head h reads KV head
 * floor(h / g)). Views are read through their strides: a [B, T, H, D] projection permuted to
 * [B, H, T, D] needs no copy. A row that every mask excludes outputs zeros. Returns o [B, Hq, Tq, D].
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const { o, lse } = attentionForward(q, k, v, opts);
  // The masks are saved too: the backward re-applies them.
  const saved = [q, k, v, o, lse];
  if (opts.keyPaddingMask) saved.push(opts.keyPaddingMask);
  if (opts.mask) saved.push(opts.mask);
  const out = record(
    "attention",
    o,
    [q, k, v],
    (gradOut, s) => {
      const [sq, sk, sv, so, slse] = s as [Tensor, Tensor, Tensor, Tensor, Tensor];
      let n = 5;
      const bopts: AttentionOptions = { ...opts };
      if (opts.keyPaddingMask) bopts.keyPaddingMask = s[n++];
      if (opts.mask) bopts.mask = s[n++];
      const g = attentionBackward(sq, sk, sv, so, slse, gradOut, bopts);
      return [g.dq, g.dk, g.dv];
    },
    saved,
  );
  lse.dispose(); // the tape holds its own handle when it needs one
  return out;
}
