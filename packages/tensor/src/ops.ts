import { type BackwardOptions, registerGradHelpers, backward as runBackward } from "./autograd.js";
import type { DType } from "./dtype.js";
import { binary, cast, full, unary } from "./kernels/elementwise/elementwise.js";
import {
  argmaxAll,
  argmaxAxis,
  maxAll,
  maxAxis,
  meanAll,
  meanAxis,
  sumAxis,
} from "./kernels/reduce/reduce.js";
import { logSoftmax, softmax } from "./kernels/softmax/softmax.js";
import { Tensor } from "./tensor.js";
import "./views.js";

type Operand = Tensor | number;

export const add = (a: Tensor, b: Operand): Tensor =>
  typeof b === "number" ? unary("add_scalar", a, b) : binary("add", a, b);
export const sub = (a: Tensor, b: Operand): Tensor =>
  typeof b === "number" ? unary("add_scalar", a, -b) : binary("sub", a, b);
export const mul = (a: Tensor, b: Operand): Tensor =>
  typeof b === "number" ? unary("scale", a, b) : binary("mul", a, b);
export const div = (a: Tensor, b: Operand): Tensor =>
  typeof b === "number" ? unary("scale", a, 1 / b) : binary("div", a, b);
export const pow = (a: Tensor, b: Operand): Tensor =>
  typeof b === "number" ? unary("pow_scalar", a, b) : binary("pow", a, b);
export const maximum = (a: Tensor, b: Tensor): Tensor => binary("maximum", a, b);
export const minimum = (a: Tensor, b: Tensor): Tensor => binary("minimum", a, b);
export const neg = (x: Tensor): Tensor => unary("neg", x);
export const abs = (x: Tensor): Tensor => unary("abs", x);
export const exp = (x: Tensor): Tensor => unary("exp", x);
export const log = (x: Tensor): Tensor => unary("log", x);
export const sqrt = (x: Tensor): Tensor => unary("sqrt", x);
export const rsqrt = (x: Tensor): Tensor => unary("rsqrt", x);
export const tanh = (x: Tensor): Tensor => unary("tanh", x);
export const sigmoid = (x: Tensor): Tensor => unary("sigmoid", x);
export const silu = (x: Tensor): Tensor => unary("silu", x);
/** Exact GELU (erf). */
export const gelu = (x: Tensor): Tensor => unary("gelu", x);
/** GELU with the tanh approximation (`gelu_pytorch_tanh`, SigLIP's activation). */
export const geluTanh = (x: Tensor): Tensor => unary("gelu_tanh", x);
export const relu = (x: Tensor): Tensor => unary("relu", x);
export const square = (x: Tensor): Tensor => unary("square", x);
export const clamp = (x: Tensor, min: number, max: number): Tensor => unary("clamp", x, min, max);
export const gt = (a: Tensor, b: Tensor): Tensor => binary("gt", a, b);
export const ge = (a: Tensor, b: Tensor): Tensor => binary("ge", a, b);
export const lt = (a: Tensor, b: Tensor): Tensor => binary("lt", a, b);
export const le = (a: Tensor, b: Tensor): Tensor => binary("le", a, b);
export const eq = (a: Tensor, b: Tensor): Tensor => binary("eq", a, b);
export const ne = (a: Tensor, b: Tensor): Tensor => binary("ne", a, b);

/** Sum over one axis, or over all elements when `axis` is omitted. */
export function sum(x: Tensor, axis?: number, keepDim = false): Tensor {
  if (axis !== undefined) return sumAxis(x, axis, keepDim);
  const flat = x.reshape([x.size]);
  const s = sumAxis(flat, 0, false);
  flat.dispose();
  return s;
}

/** Mean over one axis, or over all elements when `axis` is omitted. */
export function mean(x: Tensor, axis?: number, keepDim = false): Tensor {
  return axis === undefined ? meanAll(x) : meanAxis(x, axis, keepDim);
}

/** Max values over one axis (gradient to the first argmax), or over all elements. `maxAxis` also gives indices. */
export function max(x: Tensor, axis?: number, keepDim = false): Tensor {
  if (axis === undefined) return maxAll(x);
  const r = maxAxis(x, axis, keepDim);
  r.indices.dispose();
  return r.values;
}

/** i32 index of the max over one axis, or the flat index over all elements. */
export function argmax(x: Tensor, axis?: number, keepDim = false): Tensor {
  return axis === undefined ? argmaxAll(x) : argmaxAxis(x, axis, keepDim);
}

export function zeros(shape: readonly number[], options: { dtype?: DType } = {}): Tensor {
  return full(shape, 0, options);
}

export function ones(shape: readonly number[], options: { dtype?: DType } = {}): Tensor {
  return full(shape, 1, options);
}

export { cast, full };

registerGradHelpers({
  add: (a, b) => binary("add", a, b),
  onesLike: (t) => full(t.shape, 1, { dtype: t.dtype, device: t.device }),
});

// Fluent methods, so model code reads like the paper: `h.add(attn)`.

const P = Tensor.prototype;
P.add = function (b) {
  return add(this, b);
};
P.sub = function (b) {
  return sub(this, b);
};
P.mul = function (b) {
  return mul(this, b);
};
P.div = function (b) {
  return div(this, b);
};
P.pow = function (b) {
  return pow(this, b);
};
P.neg = function () {
  return neg(this);
};
P.abs = function () {
  return abs(this);
};
P.exp = function () {
  return exp(this);
};
P.log = function () {
  return log(this);
};
P.sqrt = function () {
  return sqrt(this);
};
P.rsqrt = function () {
  return rsqrt(this);
};
P.tanh = function () {
  return tanh(this);
};
P.sigmoid = function () {
  return sigmoid(this);
};
P.silu = function () {
  return silu(this);
};
P.gelu = function () {
  return gelu(this);
};
P.geluTanh = function () {
  return geluTanh(this);
};
P.relu = function () {
  return relu(this);
};
P.square = function () {
  return square(this);
};
P.sum = function (axis, keepDim) {
  return sum(this, axis, keepDim);
};
P.mean = function (axis, keepDim) {
  return mean(this, axis, keepDim);
};
P.max = function (axis, keepDim) {
  return max(this, axis, keepDim);
};
P.argmax = function (axis, keepDim) {
  return argmax(this, axis, keepDim);
};
P.softmax = function (axis) {
  return softmax(this, axis);
};
P.logSoftmax = function (axis) {
  return logSoftmax(this, axis);
};
P.cast = function (dtype) {
  return cast(this, dtype);
};
P.backward = function (options) {
  runBackward(this, options);
};
