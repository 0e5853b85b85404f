// Helpers for tests in this and other packages: seeded data, closeness checks that name the worst
// element, and gradient checks against central finite differences of an f64 CPU reference.
import { getDevice } from "./device.js";
import type { DType } from "./dtype.js";
import { fmtShape } from "./errors.js";
import { tidy } from "./scope.js";
import { numel, Tensor } from "./tensor.js";
import "./ops.js";

export { attentionBackwardRef, attentionRef } from "./kernels/attention/attention.ref.js";

/** Deterministic PRNG (mulberry32) with normal draws by Box–Muller. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(n: number, lo = -1, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.next();
    return out;
  }
  normal(n: number, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = Math.max(this.next(), 1e-12);
      out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
    }
    return out;
  }
  int(n: number, lo: number, hi: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + Math.floor(this.next() * (hi - lo));
    return out;
  }
}

export interface CloseReport {
  maxAbs: number;
  worstIndex: number;
  actual: number;
  expected: number;
}

/** Largest |a - e| and where; NaN anywhere (or NaN vs number) counts as infinitely far. */
export function compare(actual: ArrayLike<number>, expected: ArrayLike<number>): CloseReport {
  if (actual.length !== expected.length) {
    throw new Error(`compare: ${actual.length} values vs ${expected.length} expected`);
  }
  let maxAbs = 0;
  let worstIndex = -1;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(a) && Number.isNaN(e)) continue;
    if (a === e) continue;
    const d = Number.isNaN(a) || Number.isNaN(e) ? Number.POSITIVE_INFINITY : Math.abs(a - e);
    if (d > maxAbs || worstIndex < 0) {
      maxAbs = d;
      worstIndex = i;
    }
  }
  return { maxAbs, worstIndex, actual: actual[worstIndex] ?? 0, expected: expected[worstIndex] ?? 0 };
}

/** Throws unless every |a - e| <= atol + rtol·|e|, naming the worst element. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 1e-5, rtol = 0, what = "values" }: { atol?: number; rtol?: number; what?: string } = {},
): CloseReport {
  if (actual.length !== expected.length)
    throw new Error(`${what}: ${actual.length} values vs ${expected.length} expected`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(a) && Number.isNaN(e)) continue;
    if (a === e) continue;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  const report = compare(actual, expected);
  if (worst >= 0) {
    throw new Error(
      `${what}: element ${worst} is ${actual[worst]} but expected ${expected[worst]} (atol ${atol}, rtol ${rtol}; max abs diff ${report.maxAbs} at ${report.worstIndex})`,
    );
  }
  return report;
}

/** Central finite differences of a scalar function of f64 inputs. */
export function finiteDifferences(
  f: (inputs: Float64Array[]) => number,
  inputs: readonly Float64Array[],
  eps = 1e-6,
): Float64Array[] {
  return inputs.map((x, k) => {
    const g = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const orig = x[i]!;
      const args = inputs.map((v, j) => (j === k ? v : v));
      x[i] = orig + eps;
      const up = f(args as Float64Array[]);
      x[i] = orig - eps;
      const down = f(args as Float64Array[]);
      x[i] = orig;
      g[i] = (up - down) / (2 * eps);
    }
    return g;
  });
}

export interface GradCheckInput {
  shape: readonly number[];
  data: Float32Array;
  /** Default true. Inputs that are indices or masks pass false. */
  requiresGrad?: boolean;
  dtype?: DType;
}

/**
 * Checks an op's GPU backward: loss = Σ w ∘ op(inputs) with fixed random weights w; the GPU
 * gradients must match central differences of `reference` (plain loops in f64).
 */
export async function checkGradients(options: {
  inputs: readonly GradCheckInput[];
  gpu: (inputs: Tensor[]) => Tensor;
  reference: (inputs: Float64Array[]) => Float64Array;
  atol?: number;
  rtol?: number;
  seed?: number;
  what?: string;
}): Promise<void> {
  await getDevice();
  const { inputs, atol = 1e-3, rtol = 1e-3, what = "gradient" } = options;
  const f64 = inputs.map((i) => Float64Array.from(i.data));
  const out0 = options.reference(f64);
  const w = new Rng(options.seed ?? 7).uniform(out0.length, -1, 1);
  const loss = (xs: Float64Array[]) => {
    const y = options.reference(xs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i]! * w[i]!;
    return s;
  };
  const expected = finiteDifferences(loss, f64);
  const tensors = inputs.map((i) => {
    const t = Tensor.from(i.data, i.shape, { dtype: i.dtype ?? "f32" });
    if (i.requiresGrad !== false) t.requiresGrad = true;
    return t;
  });
  tidy(() => {
    const y = options.gpu(tensors);
    if (y.size !== out0.length) {
      throw new Error(
        `${what}: gpu output ${fmtShape(y.shape)} has ${y.size} elements; reference ${out0.length}`,
      );
    }
    const wt = Tensor.from(w, y.shape, { dtype: y.dtype });
    y.mul(wt).sum().backward();
  });
  for (let k = 0; k < tensors.length; k++) {
    if (inputs[k]!.requiresGrad === false) continue;
    const t = tensors[k]!;
    if (!t.grad) throw new Error(`${what}: input ${k} ${fmtShape(t.shape)} received no gradient`);
    const got = await t.grad.toFloat32();
    assertClose(got, expected[k]!, { atol, rtol, what: `${what} (input ${k}, shape ${fmtShape(t.shape)})` });
  }
  for (const t of tensors) t.dispose();
}

export function shapeSize(shape: readonly number[]): number {
  return numel(shape);
}
