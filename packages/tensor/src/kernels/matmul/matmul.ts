import { needsGrad, noGrad, record } from "../../autograd.js";
import type { Device, KernelBinding } from "../../device.js";
import { bytesPerElement } from "../../dtype.js";
import { DTypeError, fmtShape, GpuError, ShapeError } from "../../errors.js";
import { Tensor } from "../../tensor.js";
import { sumTo } from "../elementwise/elementwise.js";
import {
  FLAG_ACCUMULATE,
  FLAG_BIAS,
  type MatmulDType,
  type MatmulParams,
  type MatmulVariant,
  matmulShader,
  PARAM_FIELDS,
  tileOf,
  variantKey,
} from "./matmul-shader.js";
import { type LayoutTraits, pickMatmulVariant, variantMismatch } from "./matmul-variants.js";

export interface MatmulOptions {
  /** Read A as its transpose: a is [..., K, M]. */
  transposeA?: boolean;
  /** Read B as its transpose: b is [..., N, K] (a Linear weight [out, in]). */
  transposeB?: boolean;
  /** Added to every row of the result: shape [N] (leading size-1 dims allowed). */
  bias?: Tensor;
  /** Force a kernel variant (benchmarks, tests); by default one is picked for the adapter. */
  variant?: MatmulVariant;
}

/** One operand as the kernel sees it: storage plus element strides of the 2-D matrix and its batch dims. */
interface Operand {
  t: Tensor;
  rowStride: number;
  colStride: number;
  /** Strides over the output's batch dims (0 where broadcast). */
  batchStrides: number[];
}

/**
 * Batched matmul: op(a) · op(b) (+ bias), with op = transpose when asked. Batch dims broadcast
 * like numpy (a batch stride of 0 reads one matrix for every batch); transposed and strided
 * operands are read in place. Accumulates in f32; f16 operands give an f16 result.
 *
 * a: [..., M, K] (or [..., K, M] with transposeA), b: [..., K, N] (or [..., N, K] with transposeB)
 * → [...batch, M, N].
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const transposeA = options.transposeA ?? false;
  const transposeB = options.transposeB ?? false;
  const bias = options.bias;
  const dims = checkOperands(a, b, transposeA, transposeB, bias);
  const { M, N, K, batchShape } = dims;
  const out = Tensor.empty([...batchShape, M, N], { dtype: a.dtype, device: a.device });
  if (![a, b, out, bias].every((t) => !t || fitsBinding(t))) {
    // An operand over one storage binding (lm_head on a 128 MiB adapter): split into windows.
    noGrad(() => launchSplit(a, b, out, bias, transposeA, transposeB, options.variant));
  } else
    launchMatmul(a.device, {
      a: operand(a, transposeA, batchShape),
      b: operand(b, transposeB, batchShape),
      c: operand(out, false, batchShape),
      bias,
      M,
      N,
      K,
      batchShape,
      variant: options.variant,
    });

  const aShape = a.shape;
  const bShape = b.shape;
  const biasShape = bias?.shape;
  const inputs = bias ? [a, b, bias] : [a, b];
  // Decided now: by backward time the inputs may have been disposed by a tidy scope.
  const needA = needsGrad(a);
  const needB = needsGrad(b);
  return record(
    "matmul",
    out,
    inputs,
    (g, saved) => {
      const [sa, sb] = saved as [Tensor, Tensor];
      // C = op(A) op(B): dop(A) = g op(B)^T, dop(B) = op(A)^T g; a transposed operand takes the transpose of that.
      let ga: Tensor | null = null;
      let gb: Tensor | null = null;
      if (needA) {
        const full = transposeA
          ? matmul(sb, g, { transposeA: transposeB, transposeB: true })
          : matmul(g, sb, { transposeB: !transposeB });
        ga = sumTo(full, aShape);
        if (ga !== full) full.dispose();
      }
      if (needB && bShape.length === 2 && aShape.length > 2 && !transposeA) {
        // A weight shared by the batch: fold the batch into k ([batch*M, K] and [batch*M, N])
        // instead of a per-batch gradient summed afterwards.
        const a2 = sa.reshape([-1, aShape[aShape.length - 1]!]);
        const g2 = g.reshape([-1, g.shape[g.rank - 1]!]);
        gb = transposeB ? matmul(g2, a2, { transposeA: true }) : matmul(a2, g2, { transposeA: true });
        a2.dispose();
        g2.dispose();
      } else if (needB) {
        const full = transposeB
          ? matmul(g, sa, { transposeA: true, transposeB: transposeA })
          : matmul(sa, g, { transposeA: !transposeA });
        gb = sumTo(full, bShape);
        if (gb !== full) full.dispose();
      }
      const gbias = biasShape ? sumTo(g, biasShape) : null;
      return bias ? [ga, gb, gbias] : [ga, gb];
    },
    [a, b],
  );
}

interface Dims {
  M: number;
  N: number;
  K: number;
  batchShape: number[];
}

function checkOperands(a: Tensor, b: Tensor, transposeA: boolean, transposeB: boolean, bias?: Tensor): Dims {
  const desc = () =>
    `a ${fmtShape(a.shape)}${transposeA ? " (transposed)" : ""}, b ${fmtShape(b.shape)}${transposeB ? " (transposed)" : ""}`;
  if (a.rank < 2 || b.rank < 2) throw new ShapeError(`matmul: operands need rank >= 2: ${desc()}`);
  if (a.dtype !== b.dtype)
    throw new DTypeError(`matmul: dtypes differ: a ${a.dtype}, b ${b.dtype}; cast one first`);
  if (a.dtype !== "f32" && a.dtype !== "f16")
    throw new DTypeError(`matmul: needs f32 or f16 operands, got ${a.dtype}`);
  if (a.dtype === "f16" && !a.device.hasF16)
    throw new DTypeError("matmul: f16 operands need the adapter's shader-f16 feature");
  if (a.device !== b.device) throw new ShapeError(`matmul: operands live on different devices: ${desc()}`);
  const [am, ak] = transposeA
    ? [a.shape[a.rank - 1]!, a.shape[a.rank - 2]!]
    : [a.shape[a.rank - 2]!, a.shape[a.rank - 1]!];
  const [bk, bn] = transposeB
    ? [b.shape[b.rank - 1]!, b.shape[b.rank - 2]!]
    : [b.shape[b.rank - 2]!, b.shape[b.rank - 1]!];
  if (ak !== bk) {
    throw new ShapeError(
      `matmul: inner dims differ: ${desc()}: ${ak} vs ${bk}${transposeB ? "" : "; transpose b?"}`,
    );
  }
  const ab = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const rank = Math.max(ab.length, bb.length);
  const batchShape: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = ab[ab.length - rank + i] ?? 1;
    const db = bb[bb.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`matmul: batch dims do not broadcast: ${desc()} (batch dim ${i}: ${da} vs ${db})`);
    }
    batchShape.push(da === 1 ? db : da);
  }
  if (bias) {
    if (bias.dtype !== a.dtype)
      throw new DTypeError(`matmul: bias dtype ${bias.dtype} differs from the operands' ${a.dtype}`);
    const last = bias.shape[bias.rank - 1];
    if (bias.rank === 0 || last !== bn || bias.shape.slice(0, -1).some((d) => d !== 1)) {
      throw new ShapeError(`matmul: bias ${fmtShape(bias.shape)} must be [${bn}] for ${desc()}`);
    }
  }
  return { M: am, N: bn, K: ak, batchShape };
}

/**
 * Strides of `t` read as the matrix `transposed ? t^T : t` (rows: m for A, k for B), with batch
 * strides broadcast to `batchShape`.
 */
function operand(t: Tensor, transposed: boolean, batchShape: readonly number[]): Operand {
  const r = t.rank;
  const s0 = t.strides[r - 2]!;
  const s1 = t.strides[r - 1]!;
  const [rowStride, colStride] = transposed ? [s1, s0] : [s0, s1];
  const batchStrides = new Array<number>(batchShape.length).fill(0);
  const lead = r - 2;
  for (let i = 0; i < lead; i++) {
    const j = batchShape.length - lead + i;
    batchStrides[j] = t.shape[i] === 1 ? 0 : t.strides[i]!;
  }
  return { t, rowStride, colStride, batchStrides };
}

export interface MatmulLaunch {
  a: Operand;
  b: Operand;
  c: Operand;
  bias?: Tensor;
  M: number;
  N: number;
  K: number;
  batchShape: readonly number[];
  variant?: MatmulVariant;
  /** Add the product to what c holds (a K split over several launches). */
  accumulate?: boolean;
}

/** Dispatches the kernel for already-validated operands (the output `c` is written, not allocated). */
export function launchMatmul(device: Device, l: MatmulLaunch): void {
  const { N, K } = l;
  let M = l.M;
  if (M === 0 || N === 0 || l.batchShape.some((d) => d === 0)) return;
  const dtype = l.a.t.dtype as MatmulDType;
  let batch = collapseBatch(l.batchShape, [l.a.batchStrides, l.b.batchStrides, l.c.batchStrides]);
  // [batch, M, K] x [K, N] with rows continuing across the batch (activations times a weight):
  // one [batch*M, K] x [K, N] product, which fills the row tiles better than batch small ones.
  if (
    batch.dims.length === 1 &&
    batch.strides[1]![0] === 0 &&
    batch.strides[0]![0] === M * l.a.rowStride &&
    batch.strides[2]![0] === M * l.c.rowStride
  ) {
    M *= batch.dims[0]!;
    batch = { dims: [], strides: [[], [], []] };
  }
  const layout = layoutOf(l.a, l.b, batch);
  const variant = l.variant ?? pickVariant(device, dtype, layout, M);
  if (variant.dtype !== dtype)
    throw new DTypeError(
      `matmul: variant ${variantKey(variant)} is for ${variant.dtype}, operands are ${dtype}`,
    );
  if (variant.kind === "cpu" && variant.broadcast) {
    const { subgroupMinSize: lo, subgroupMaxSize: hi } = device.info;
    if (!device.hasSubgroups || lo !== variant.sg || hi !== variant.sg) {
      throw new GpuError(
        `matmul: variant ${variantKey(variant)} broadcasts across ${variant.sg} lanes; this adapter's subgroups are ${lo}-${hi}`,
      );
    }
  }
  const mismatch = variantMismatch(variant, layout);
  if (mismatch)
    throw new ShapeError(`matmul: variant ${variantKey(variant)} cannot read these operands: ${mismatch}`);
  const code = matmulShader(variant);
  const tile = tileOf(variant);
  const gx = Math.ceil(N / tile.cols);
  const gy = Math.ceil(M / tile.rows);
  const maxDim = device.gpu.limits.maxComputeWorkgroupsPerDimension;
  if (gx > maxDim || gy > maxDim) {
    throw new GpuError(
      `matmul: [${M}, ${N}] needs ${gx}x${gy} workgroups, over the adapter's ${maxDim} per dimension`,
    );
  }
  const biasBinding = l.bias ? null : dummyBias(device);
  // Dispatch the batch as z = outer * inner; outer dims beyond two, or z over the limit, loop here.
  const { dims, strides } = batch;
  const inner = dims.length >= 1 ? dims[dims.length - 1]! : 1;
  const innerStrides = strides.map((s) => (dims.length >= 1 ? s[dims.length - 1]! : 0));
  const midDim = dims.length >= 2 ? dims[dims.length - 2]! : 1;
  const midStrides = strides.map((s) => (dims.length >= 2 ? s[dims.length - 2]! : 0));
  const outerDims = dims.slice(0, Math.max(0, dims.length - 2));
  const outerStrides = strides.map((s) => s.slice(0, outerDims.length));
  const midPerDispatch = Math.max(1, Math.min(midDim, Math.floor(maxDim / inner)));
  if (inner > maxDim)
    throw new GpuError(`matmul: batch dim ${inner} exceeds ${maxDim} workgroups per dimension`);
  const outerCount = outerDims.reduce((p, d) => p * d, 1);
  for (let o = 0; o < outerCount; o++) {
    // Element offsets of this outer batch index for a, b, c.
    const base = [0, 0, 0];
    let rem = o;
    for (let d = outerDims.length - 1; d >= 0; d--) {
      const idx = rem % outerDims[d]!;
      rem = Math.floor(rem / outerDims[d]!);
      for (let i = 0; i < 3; i++) base[i]! += idx * outerStrides[i]![d]!;
    }
    for (let m0 = 0; m0 < midDim; m0 += midPerDispatch) {
      const mids = Math.min(midPerDispatch, midDim - m0);
      const offs = [0, 1, 2].map((i) => base[i]! + m0 * midStrides[i]!);
      const ops = [l.a, l.b, l.c];
      const bind = ops.map((op, i) =>
        bindOperand(device, op, offs[i]!, M, N, K, i, mids, midStrides[i]!, inner, innerStrides[i]!),
      );
      const params: MatmulParams = {
        M,
        N,
        K,
        batchInner: inner,
        aOff: bind[0]!.elementOffset,
        aB0: midStrides[0]!,
        aB1: innerStrides[0]!,
        aRow: l.a.rowStride,
        aCol: l.a.colStride,
        bOff: bind[1]!.elementOffset,
        bB0: midStrides[1]!,
        bB1: innerStrides[1]!,
        bRow: l.b.rowStride,
        bCol: l.b.colStride,
        cOff: bind[2]!.elementOffset,
        cB0: midStrides[2]!,
        cB1: innerStrides[2]!,
        cRow: l.c.rowStride,
        cCol: l.c.colStride,
        biasOff: 0,
        biasStride: 1,
        flags: l.accumulate ? FLAG_ACCUMULATE : 0,
        pad0: 0,
        pad1: 0,
      };
      let biasBind: KernelBinding;
      if (l.bias) {
        const bb = bindRange(
          device,
          l.bias,
          l.bias.offset,
          l.bias.offset + (N - 1) * l.bias.strides[l.bias.rank - 1]!,
          "bias",
        );
        biasBind = bb.binding;
        params.biasOff = bb.elementOffset;
        params.biasStride = l.bias.strides[l.bias.rank - 1]!;
        params.flags |= FLAG_BIAS;
      } else {
        biasBind = { buffer: biasBinding! };
      }
      const u = new Uint32Array(PARAM_FIELDS.length);
      PARAM_FIELDS.forEach((f, i) => {
        const v = params[f];
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
          throw new GpuError(`matmul: parameter ${f} = ${v} does not fit a u32`);
        u[i] = v;
      });
      device.dispatch({
        op: "matmul",
        code,
        buffers: [bind[0]!.binding, bind[1]!.binding, biasBind, bind[2]!.binding],
        uniforms: u,
        workgroups: [gx, gy, mids * inner],
        writable: [3],
      });
    }
  }
}

interface Bound {
  binding: KernelBinding;
  elementOffset: number;
}

const NAMES = ["a", "b", "c"];

/** Binds the part of an operand's buffer this dispatch touches, so big buffers fit the binding limit. */
function bindOperand(
  device: Device,
  op: Operand,
  batchOffset: number,
  M: number,
  N: number,
  K: number,
  which: number,
  mids: number,
  midStride: number,
  inner: number,
  innerStride: number,
): Bound {
  const [rows, cols] = which === 0 ? [M, K] : which === 1 ? [K, N] : [M, N];
  const start = op.t.offset + batchOffset;
  let last = start;
  if (rows > 0 && cols > 0) last += (rows - 1) * op.rowStride + (cols - 1) * op.colStride;
  last += (mids - 1) * midStride + (inner - 1) * innerStride;
  return bindRange(device, op.t, start, last, NAMES[which]!);
}

function bindRange(device: Device, t: Tensor, first: number, last: number, name: string): Bound {
  const bpe = bytesPerElement(t.dtype);
  const align = device.gpu.limits.minStorageBufferOffsetAlignment;
  // f16 is read as words: keep the binding word-aligned and the element offset's parity.
  const startByte = first * bpe;
  const bindStart = Math.floor(startByte / align) * align;
  const endByte = Math.ceil(((last + 1) * bpe) / 4) * 4;
  // Whole 16-byte words: a shader reading vec4s sees arrayLength = floor(size / 16), and the tail
  // of a row that ends mid-vec4 must not fall outside it (robustness would clamp the read).
  const size = Math.max(16, Math.ceil((endByte - bindStart) / 16) * 16);
  const max = device.maxBindingBytes;
  if (endByte - bindStart > max) {
    throw new GpuError(
      `matmul: operand ${name} ${fmtShape(t.shape)} spans ${endByte - bindStart} bytes, over the adapter's storage binding limit of ${max}; split it`,
    );
  }
  const buffer = t.storage.buffer;
  return {
    binding: { buffer, offset: bindStart, size: Math.min(size, buffer.size - bindStart) },
    elementOffset: (startByte - bindStart) / bpe,
  };
}

const dummies = new WeakMap<Device, GPUBuffer>();
function dummyBias(device: Device): GPUBuffer {
  let buf = dummies.get(device);
  if (!buf) {
    buf = device.gpu.createBuffer({ label: "matmul-no-bias", size: 16, usage: GPUBufferUsage.STORAGE });
    dummies.set(device, buf);
  }
  return buf;
}

interface CollapsedBatch {
  dims: number[];
  /** strides[i][d] for operand i (a, b, c). */
  strides: number[][];
}

/** Drops size-1 batch dims and merges neighbours that are contiguous for all three operands. */
export function collapseBatch(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): CollapsedBatch {
  const dims: number[] = [];
  const out: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && strides.every((s, i) => out[i]![last] === s[d]! * shape[d]!)) {
      dims[last]! *= shape[d]!;
      strides.forEach((s, i) => {
        out[i]![last] = s[d]!;
      });
    } else {
      dims.push(shape[d]!);
      strides.forEach((s, i) => {
        out[i]!.push(s[d]!);
      });
    }
  }
  return { dims, strides: out };
}

function layoutOf(a: Operand, b: Operand, batch: CollapsedBatch): LayoutTraits {
  return {
    aOff: a.t.offset,
    aRow: a.rowStride,
    aCol: a.colStride,
    aBatch: batch.strides[0]!,
    bOff: b.t.offset,
    bRow: b.rowStride,
    bCol: b.colStride,
    bBatch: batch.strides[1]!,
  };
}

/** The kernel variant for this adapter and operand layout. */
function pickVariant(device: Device, dtype: MatmulDType, layout: LayoutTraits, M: number): MatmulVariant {
  const info = device.info;
  return pickMatmulVariant(
    {
      isSoftware: info.isSoftware,
      hasSubgroups: device.hasSubgroups,
      subgroupMinSize: info.subgroupMinSize,
      subgroupMaxSize: info.subgroupMaxSize,
    },
    dtype,
    layout,
    M,
  );
}

// ---- operands over one storage binding ---------------------------------------------------------

/** Bytes bindRange's window for a view covers at most: its span plus alignment and rounding slack. */
function windowBytes(t: Tensor, sizes: readonly number[] = t.shape): number {
  if (sizes.some((d) => d === 0)) return 0;
  let last = 0;
  sizes.forEach((d, i) => {
    last += (d - 1) * Math.abs(t.strides[i]!);
  });
  return (last + 1) * bytesPerElement(t.dtype) + t.device.gpu.limits.minStorageBufferOffsetAlignment + 16;
}

function fitsBinding(t: Tensor): boolean {
  return windowBytes(t) <= t.device.maxBindingBytes;
}

/**
 * matmul with some operand over the binding limit: batch dims are folded into M when the
 * weight is shared (or looped otherwise), then each 2-D product is cut into M×N×K blocks whose
 * windows fit (see split2d). Runs with grad disabled; `c` is written in place.
 */
function launchSplit(
  a: Tensor,
  b: Tensor,
  c: Tensor,
  bias: Tensor | undefined,
  tA: boolean,
  tB: boolean,
  variant?: MatmulVariant,
): void {
  if (c.rank === 2) {
    split2d(a, b, c, bias, tA, tB, variant);
    return;
  }
  if (b.rank === 2 && !tA && a.isContiguous()) {
    // x [..., M, K] times a weight: one [batch*M, K] product.
    const a2 = a.reshape([-1, a.shape[a.rank - 1]!]);
    const c2 = c.reshape([-1, c.shape[c.rank - 1]!]);
    split2d(a2, b, c2, bias, tA, tB, variant);
    a2.dispose();
    c2.dispose();
    return;
  }
  // Otherwise one 2-D product per batch index (broadcast dims read index 0).
  const batchShape = c.shape.slice(0, -2);
  const count = batchShape.reduce((p, d) => p * d, 1);
  const pick = (t: Tensor, idx: number[]): Tensor => {
    const lead = t.rank - 2;
    let offset = t.offset;
    for (let i = 0; i < lead; i++) {
      if (t.shape[i] !== 1) offset += idx[batchShape.length - lead + i]! * t.strides[i]!;
    }
    t.storage.retain();
    return new Tensor(t.storage, t.shape.slice(lead), t.dtype, t.strides.slice(lead), offset);
  };
  for (let n = 0; n < count; n++) {
    const idx: number[] = [];
    let rem = n;
    for (let d = batchShape.length - 1; d >= 0; d--) {
      idx[d] = rem % batchShape[d]!;
      rem = Math.floor(rem / batchShape[d]!);
    }
    const [a2, b2, c2] = [pick(a, idx), pick(b, idx), pick(c, idx)];
    split2d(a2, b2, c2, bias, tA, tB, variant);
    a2.dispose();
    b2.dispose();
    c2.dispose();
  }
}

/**
 * 2-D op(a)·op(b) (+ bias) into the view c, in blocks of mc×nc outputs and kc reduction steps
 * sized so each block's a, b, c (and bias) windows fit one binding. Blocks over M or N write
 * their own rows/columns of c (c is a strided view, bound at an aligned offset with the rest of
 * the offset in the uniforms). Blocks over K (a [K, N] operand whose rows are the reduction, as
 * in the backward g·W of lm_head) add into c in the kernel (FLAG_ACCUMULATE; f16 outputs are
 * rounded once per K block).
 */
function split2d(
  a: Tensor,
  b: Tensor,
  c: Tensor,
  bias: Tensor | undefined,
  tA: boolean,
  tB: boolean,
  variant?: MatmulVariant,
): void {
  const device = c.device;
  const max = device.maxBindingBytes;
  const [M, N] = c.shape as [number, number];
  const K = a.shape[tA ? 0 : 1]!;
  // Axis of each operand that holds m, n, k.
  const aM = tA ? 1 : 0;
  const aK = 1 - aM;
  const bK = tB ? 1 : 0;
  const bN = 1 - bK;
  const size = { m: M, n: N, k: K };
  type Axis = "m" | "n" | "k";
  const parts: { t: Tensor; axes: Axis[] }[] = [
    { t: a, axes: tA ? ["k", "m"] : ["m", "k"] },
    { t: b, axes: tB ? ["n", "k"] : ["k", "n"] },
    { t: c, axes: ["m", "n"] },
  ];
  if (bias) parts.push({ t: bias.reshape([-1]), axes: ["n"] });
  for (;;) {
    const over = parts.find(
      (p) =>
        windowBytes(
          p.t,
          p.axes.map((x) => size[x]),
        ) > max,
    );
    // A split K needs an f32 [mc, nc] accumulator, which must fit too.
    const accOver = size.k < K && size.m * size.n * 4 + 256 + 16 > max;
    if (!over && !accOver) break;
    if (!over) {
      if (size.m >= size.n) size.m = Math.ceil(size.m / 2);
      else size.n = Math.ceil(size.n / 2);
      continue;
    }
    // Shrink the operand's outer (larger-stride) axis: as many rows as fit, balanced over the chunks.
    const order = over.axes
      .map((x, i) => ({ x, stride: Math.abs(over.t.strides[i]!) }))
      .filter((e) => size[e.x] > 1)
      .sort((p, q) => q.stride - p.stride);
    const pick = order[0];
    if (!pick) {
      throw new GpuError(
        `matmul: one element of operand ${fmtShape(over.t.shape)} does not fit the storage binding limit ${max}`,
      );
    }
    const sizes = over.axes.map((x) => (x === pick.x ? 1 : size[x]));
    const room = max - windowBytes(over.t, sizes);
    const fit = room > 0 ? Math.floor(room / (pick.stride * bytesPerElement(over.t.dtype))) + 1 : 1;
    const total = size[pick.x];
    const next = Math.min(total - 1, room > 0 ? Math.max(1, fit) : Math.ceil(total / 2));
    // Balanced chunks: ceil(full / chunks) <= next.
    const full = { m: M, n: N, k: K }[pick.x];
    size[pick.x] = Math.ceil(full / Math.ceil(full / next));
  }
  const launch2d = (ab: Tensor, bb: Tensor, cb: Tensor, biasb: Tensor | undefined, accumulate = false) => {
    launchMatmul(device, {
      a: operand(ab, tA, []),
      b: operand(bb, tB, []),
      c: operand(cb, false, []),
      bias: biasb,
      M: cb.shape[0]!,
      N: cb.shape[1]!,
      K: ab.shape[aK]!,
      batchShape: [],
      variant,
      accumulate,
    });
  };
  for (let m0 = 0; m0 < M; m0 += size.m) {
    const mr = Math.min(size.m, M - m0);
    const am = a.narrow(aM, m0, mr);
    const cm = c.narrow(0, m0, mr);
    for (let n0 = 0; n0 < N; n0 += size.n) {
      const nr = Math.min(size.n, N - n0);
      const bn = b.narrow(bN, n0, nr);
      const cb = cm.narrow(1, n0, nr);
      const biasb = bias?.narrow(-1, n0, nr);
      if (size.k >= K) {
        launch2d(am, bn, cb, biasb);
      } else {
        // The first K block writes c (with the bias), the rest add to it in the kernel.
        for (let k0 = 0; k0 < K; k0 += size.k) {
          const kr = Math.min(size.k, K - k0);
          const ak = am.narrow(aK, k0, kr);
          const bk = bn.narrow(bK, k0, kr);
          launch2d(ak, bk, cb, k0 === 0 ? biasb : undefined, k0 > 0);
          ak.dispose();
          bk.dispose();
        }
      }
      bn.dispose();
      cb.dispose();
      biasb?.dispose();
    }
    am.dispose();
    cm.dispose();
  }
  if (bias) parts[3]!.t.dispose();
}
