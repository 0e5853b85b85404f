// Plain f64 definitions of every elementwise op: the truth the kernels are tested against.

function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse for a reference: use the series / continued fraction.
  const t = Math.abs(x);
  if (t < 3) {
    let sum = 0;
    let term = t;
    for (let n = 0; n < 100; n++) {
      sum += term / (2 * n + 1);
      term *= (-t * t) / (n + 1);
      if (Math.abs(term) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|.
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return Math.sign(x) * (1 - erfc);
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export const UNARY_REF: Record<string, (x: number, alpha: number, beta: number) => number> = {
  neg: (x) => -x,
  abs: (x) => Math.abs(x),
  exp: (x) => Math.exp(x),
  log: (x) => Math.log(x),
  sqrt: (x) => Math.sqrt(x),
  rsqrt: (x) => 1 / Math.sqrt(x),
  tanh: (x) => Math.tanh(x),
  sigmoid,
  silu: (x) => x * sigmoid(x),
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  relu: (x) => Math.max(x, 0),
  square: (x) => x * x,
  reciprocal: (x) => 1 / x,
  scale: (x, a) => x * a,
  add_scalar: (x, a) => x + a,
  pow_scalar: (x, a) => x ** a,
  clamp: (x, a, b) => Math.min(Math.max(x, a), b),
};

export const BINARY_REF: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => a ** b,
  maximum: (a, b) => Math.max(a, b),
  minimum: (a, b) => Math.min(a, b),
  gt: (a, b) => +(a > b),
  ge: (a, b) => +(a >= b),
  lt: (a, b) => +(a < b),
  le: (a, b) => +(a <= b),
  eq: (a, b) => +(a === b),
  ne: (a, b) => +(a !== b),
};

/** Reference broadcasting: out[i] = f(a[ia], b[ib]) over numpy-broadcast shapes (row-major data). */
export function broadcastRef(
  f: (a: number, b: number) => number,
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
): { data: Float64Array; shape: number[] } {
  const rank = Math.max(aShape.length, bShape.length);
  const pad = (s: readonly number[]) => [...new Array(rank - s.length).fill(1), ...s];
  const as = pad(aShape);
  const bs = pad(bShape);
  const shape = as.map((d, i) => (d === 1 ? bs[i]! : d));
  const n = shape.reduce((p, d) => p * d, 1);
  const out = new Float64Array(n);
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0; i < n; i++) {
    let rest = i;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] = rest % shape[d]!;
      rest = Math.floor(rest / shape[d]!);
    }
    let ia = 0;
    let ib = 0;
    for (let d = 0; d < rank; d++) {
      ia = ia * as[d]! + (as[d] === 1 ? 0 : idx[d]!);
      ib = ib * bs[d]! + (bs[d] === 1 ? 0 : idx[d]!);
    }
    out[i] = f(a[ia]!, b[ib]!);
  }
  return { data: out, shape };
}
