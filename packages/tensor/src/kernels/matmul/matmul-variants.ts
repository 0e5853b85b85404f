// Which kernel variant runs where. Kept free of device imports so the tuning harness can use it on raw Dawn.
import type { MatmulDType, MatmulVariant } from "./matmul-shader.js";

export interface AdapterTraits {
  /** lavapipe/llvmpipe/SwiftShader: a CPU behind the WebGPU API. */
  isSoftware: boolean;
  hasSubgroups: boolean;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

/** Element strides and offsets as the kernel will see them (see matmul-shader.ts). */
export interface LayoutTraits {
  aOff: number;
  aRow: number;
  aCol: number;
  /** Batch strides of A (any count). */
  aBatch: readonly number[];
  bOff: number;
  bRow: number;
  bCol: number;
  bBatch: readonly number[];
}

/** Tile shapes measured best on lavapipe (bench/matmul-tune.ts; see the README's table). */
export const CPU_DEFAULTS = { ra: 4, tn: 4, wgSubgroups: 8, ku: 4 } as const;
/** GPU tiling: 64x64 tile, 4x4 per invocation, k slabs of 16. */
export const GPU_DEFAULTS = { tm: 4, tn: 4, wgM: 16, wgN: 16, bk: 16 } as const;

/** Widest load (in elements) along an axis of unit stride whose every other offset is a multiple of it. */
export function loadWidth(
  dtype: MatmulDType,
  unitStride: boolean,
  others: readonly number[],
  cap = 8,
): number {
  if (!unitStride) return 1;
  for (const w of dtype === "f16" ? [8, 4, 2] : [4]) {
    if (w <= cap && others.every((x) => x % w === 0)) return w;
  }
  return 1;
}

export function pickMatmulVariant(
  adapter: AdapterTraits,
  dtype: MatmulDType,
  layout: LayoutTraits,
  M = Infinity,
): MatmulVariant {
  const l = layout;
  if (adapter.isSoftware) {
    const sgMin = adapter.subgroupMinSize ?? 0;
    const sg = sgMin >= 2 && sgMin === adapter.subgroupMaxSize ? sgMin : 8;
    // Broadcast needs a fixed subgroup size and enough rows to fill it; a few rows (a GEMV) load A per lane instead.
    const broadcast = adapter.hasSubgroups && sgMin === sg && M > sg / 2;
    // Few rows: a small tile (less wasted work, and a shader that compiles in a fraction of the time).
    const ra = broadcast ? (M > 2 * sg ? CPU_DEFAULTS.ra : 1) : M <= 1 ? 1 : 4;
    const tn = broadcast ? CPU_DEFAULTS.tn : 8;
    const aw = loadWidth(dtype, l.aCol === 1, [l.aOff, l.aRow, ...l.aBatch]);
    // B along k (a [N, K] weight) or along n (a [K, N] matrix), whichever is contiguous.
    const bwK = loadWidth(dtype, l.bRow === 1, [l.bOff, l.bCol, ...l.bBatch]);
    const bwN = loadWidth(dtype, l.bCol === 1, [l.bOff, l.bRow, ...l.bBatch], tn);
    const bAxis = bwK >= bwN ? "k" : "n";
    const bw = Math.max(bwK, bwN);
    const ku = Math.max(CPU_DEFAULTS.ku, aw, bAxis === "k" ? bw : 1);
    return {
      kind: "cpu",
      dtype,
      sg,
      ra,
      tn,
      wgSubgroups: CPU_DEFAULTS.wgSubgroups,
      ku,
      broadcast,
      aw,
      bw,
      bAxis,
    };
  }
  return { kind: "gpu", dtype, ...GPU_DEFAULTS, aKContig: l.aCol === 1, bNContig: l.bCol === 1 };
}

/** Why a variant cannot read this layout (wide loads need alignment), or null when it can. */
export function variantMismatch(v: MatmulVariant, l: LayoutTraits): string | null {
  if (v.kind !== "cpu") return null;
  const aw = loadWidth(v.dtype, l.aCol === 1, [l.aOff, l.aRow, ...l.aBatch]);
  if (v.aw > aw) return `aw ${v.aw} needs A contiguous along k with offsets/strides multiple of ${v.aw}`;
  if (v.bw > 1) {
    const bw =
      v.bAxis === "k"
        ? loadWidth(v.dtype, l.bRow === 1, [l.bOff, l.bCol, ...l.bBatch])
        : loadWidth(v.dtype, l.bCol === 1, [l.bOff, l.bRow, ...l.bBatch]);
    if (v.bw > bw)
      return `bw ${v.bw} along ${v.bAxis} needs B contiguous along ${v.bAxis} with offsets/strides multiple of ${v.bw}`;
  }
  return null;
}
