import type { BackwardOptions } from "./autograd.js";
import { type GradNode, isGradEnabled } from "./autograd.js";
import { currentDevice, type Device } from "./device.js";
import {
  bytesPerElement,
  type DType,
  f16ArrayToF32,
  f32ArrayToF16,
  type HostArray,
  hostArrayFor,
} from "./dtype.js";
import { DisposedError, DTypeError, fmtShape, ShapeError } from "./errors.js";
import { trackTensor } from "./scope.js";

type Operand = Tensor | number;

/** A GPU buffer shared by a tensor and its views; freed back to the pool when the last user lets go. */
export class Storage {
  refs = 1;
  constructor(
    readonly device: Device,
    readonly buffer: GPUBuffer,
    /** Allocated bytes (the pool's size class). */
    readonly capacity: number,
  ) {}

  retain(): void {
    this.refs++;
  }

  releaseRef(): void {
    if (--this.refs === 0) this.device.release(this.buffer, this.capacity);
  }
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(op: string, shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${op}: invalid shape ${fmtShape(shape)}`);
  }
}

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

/**
 * An n-dimensional view (shape, element strides, element offset) of device storage.
 * Views share storage; ops read strides where they can and copy otherwise.
 */
export class Tensor {
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
  private _storage: Storage | null;
  requiresGrad = false;
  /** Accumulated gradient of a leaf after `backward()`. */
  grad: Tensor | null = null;
  /** The op that produced this tensor, when it was recorded for autograd. */
  gradFn: GradNode | null = null;
  /** Not disposed by the enclosing `tidy` scope. */
  kept = false;

  // Fluent ops, installed on the prototype by ops.ts. Declared here (not by module augmentation)
  // so that the published .d.ts carries them whatever chunk the bundler puts ops.ts in.
  declare add: (b: Operand) => Tensor;
  declare sub: (b: Operand) => Tensor;
  declare mul: (b: Operand) => Tensor;
  declare div: (b: Operand) => Tensor;
  declare pow: (b: Operand) => Tensor;
  declare neg: () => Tensor;
  declare abs: () => Tensor;
  declare exp: () => Tensor;
  declare log: () => Tensor;
  declare sqrt: () => Tensor;
  declare rsqrt: () => Tensor;
  declare tanh: () => Tensor;
  declare sigmoid: () => Tensor;
  declare silu: () => Tensor;
  declare gelu: () => Tensor;
  declare geluTanh: () => Tensor;
  declare relu: () => Tensor;
  declare square: () => Tensor;
  declare sum: (axis?: number, keepDim?: boolean) => Tensor;
  declare mean: (axis?: number, keepDim?: boolean) => Tensor;
  declare max: (axis?: number, keepDim?: boolean) => Tensor;
  declare argmax: (axis?: number, keepDim?: boolean) => Tensor;
  /** Softmax over the last axis (`axis` must be -1 or rank - 1). */
  declare softmax: (axis?: number) => Tensor;
  declare logSoftmax: (axis?: number) => Tensor;
  declare cast: (dtype: DType) => Tensor;
  /** Reverse-mode autograd from this (scalar) tensor into the `.grad` of every leaf that requires grad. */
  declare backward: (options?: BackwardOptions) => void;

  constructor(
    storage: Storage,
    shape: readonly number[],
    dtype: DType,
    strides?: readonly number[],
    offset = 0,
  ) {
    this._storage = storage;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    this.dtype = dtype;
    trackTensor(this);
  }

  get storage(): Storage {
    if (!this._storage) throw new DisposedError(`tensor ${fmtShape(this.shape)} ${this.dtype} was disposed`);
    return this._storage;
  }

  get device(): Device {
    return this.storage.device;
  }

  get isDisposed(): boolean {
    return this._storage === null;
  }

  get rank(): number {
    return this.shape.length;
  }

  get size(): number {
    return numel(this.shape);
  }

  get byteLength(): number {
    return this.size * bytesPerElement(this.dtype);
  }

  isContiguous(): boolean {
    let s = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== s) return false;
      s *= this.shape[i]!;
    }
    return true;
  }

  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype})`;
  }

  /** Frees this handle; the storage goes back to the pool when no view or saved copy uses it. */
  dispose(): void {
    if (!this._storage) return;
    this._storage.releaseRef();
    this._storage = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
    // gradFn stays: a graph recorded through this tensor may still run backward after a tidy scope.
  }

  /** A new handle on the same view that keeps the storage alive on its own (used to save tensors for backward). */
  retainHandle(): Tensor {
    this.storage.retain();
    const t = new Tensor(this.storage, this.shape, this.dtype, this.strides, this.offset);
    t.kept = true;
    return t;
  }

  /** Makes this tensor survive the `tidy` scopes around it. */
  keep(): this {
    this.kept = true;
    return this;
  }

  // ---- creation --------------------------------------------------------------------------------

  static empty(shape: readonly number[], options: TensorOptions = {}): Tensor {
    checkShape("empty", shape);
    const dtype = options.dtype ?? "f32";
    const device = options.device ?? currentDevice();
    const bytes = numel(shape) * bytesPerElement(dtype);
    const { buffer, size } = device.allocate(bytes);
    const t = new Tensor(new Storage(device, buffer, size), shape, dtype);
    if (options.requiresGrad) t.requiresGrad = true;
    return t;
  }

  /**
   * Uploads host data. Plain number arrays and Float32Array are converted to the dtype;
   * for f16, a Uint16Array is taken as raw half bits.
   */
  static from(
    data: ArrayLike<number> | HostArray,
    shape: readonly number[],
    options: TensorOptions = {},
  ): Tensor {
    checkShape("from", shape);
    const dtype =
      options.dtype ?? (data instanceof Int32Array ? "i32" : data instanceof Uint32Array ? "u32" : "f32");
    const n = numel(shape);
    if (data.length !== n) {
      throw new ShapeError(
        `from: ${data.length} values do not fill shape ${fmtShape(shape)} (${n} elements)`,
      );
    }
    const host = toHost(data, dtype);
    const t = Tensor.empty(shape, { ...options, dtype });
    if (n > 0) t.device.write(t.storage.buffer, 0, host);
    return t;
  }

  static scalar(value: number, options: TensorOptions = {}): Tensor {
    return Tensor.from([value], [], options);
  }

  // ---- readback ------------------------------------------------------------------------------

  /** Reads the tensor's elements in row-major order. f16 comes back as raw bits (Uint16Array). */
  async data(): Promise<HostArray> {
    const src = this.isContiguous() ? this : contiguousCopy(this);
    const bpe = bytesPerElement(this.dtype);
    const bytes = await src.device.read(src.storage.buffer, src.offset * bpe, src.size * bpe);
    if (src !== this) src.dispose();
    const out = hostArrayFor(this.dtype, this.size);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }

  /** Elements as float32 whatever the dtype (f16 decoded). */
  async toFloat32(): Promise<Float32Array> {
    const d = await this.data();
    if (this.dtype === "f16") return f16ArrayToF32(d as Uint16Array);
    return d instanceof Float32Array ? d : Float32Array.from(d);
  }

  /** Nested JS arrays, for printing and small tests. */
  async toArray(): Promise<unknown> {
    const flat = Array.from(await this.toFloat32());
    const build = (dim: number, start: number): unknown => {
      if (dim === this.shape.length) return flat[start];
      const stride = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, start + i * stride));
    };
    return build(0, 0);
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1)
      throw new ShapeError(`item: tensor ${fmtShape(this.shape)} has ${this.size} elements, not 1`);
    return (await this.toFloat32())[0]!;
  }

  // ---- views (no copy) -------------------------------------------------------------------------

  /** A view with another shape; copies first only when the strides cannot express it. One dim may be -1. */
  reshape(shape: readonly number[]): Tensor {
    return reshapeOp(this, shape);
  }

  view(shape: readonly number[]): Tensor {
    return this.reshape(shape);
  }

  permute(dims: readonly number[]): Tensor {
    return permuteOp(this, dims);
  }

  transpose(dim0 = -2, dim1 = -1): Tensor {
    const d0 = normAxis("transpose", dim0, this.rank);
    const d1 = normAxis("transpose", dim1, this.rank);
    const dims = [...this.shape.keys()];
    dims[d0] = d1;
    dims[d1] = d0;
    return this.permute(dims);
  }

  /** Broadcast size-1 dims (stride 0); -1 keeps a dim. New leading dims may be added. */
  expand(shape: readonly number[]): Tensor {
    return expandOp(this, shape);
  }

  unsqueeze(dim: number): Tensor {
    const d = normAxis("unsqueeze", dim, this.rank + 1);
    const shape = [...this.shape];
    shape.splice(d, 0, 1);
    return this.reshape(shape);
  }

  squeeze(dim?: number): Tensor {
    if (dim === undefined) return this.reshape(this.shape.filter((d) => d !== 1));
    const d = normAxis("squeeze", dim, this.rank);
    if (this.shape[d] !== 1) return this;
    const shape = [...this.shape];
    shape.splice(d, 1);
    return this.reshape(shape);
  }

  /** Elements [start, end) of one axis, as a view. */
  narrow(dim: number, start: number, length: number): Tensor {
    return narrowOp(this, dim, start, length);
  }

  /** A contiguous tensor with the same values (this one if already contiguous and offset-free). */
  contiguous(): Tensor {
    return this.isContiguous() ? this : contiguousCopy(this);
  }
}

export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= Math.max(rank, 1)) {
    throw new ShapeError(`${op}: axis ${axis} is out of range for rank ${rank}`);
  }
  return a;
}

function toHost(data: ArrayLike<number> | HostArray, dtype: DType): HostArray {
  switch (dtype) {
    case "f32":
      return data instanceof Float32Array ? data : Float32Array.from(data);
    case "f16":
      if (data instanceof Uint16Array) return data;
      return f32ArrayToF16(data);
    case "i32":
      if (data instanceof Float32Array) throw new DTypeError("from: float data given for an i32 tensor");
      return data instanceof Int32Array ? data : Int32Array.from(data);
    case "u32":
      if (data instanceof Float32Array) throw new DTypeError("from: float data given for a u32 tensor");
      return data instanceof Uint32Array ? data : Uint32Array.from(data);
  }
}

// Late-bound so that tensor.ts does not import the op modules at load time (they import Tensor).
export interface ViewOps {
  reshape: (t: Tensor, shape: readonly number[]) => Tensor;
  permute: (t: Tensor, dims: readonly number[]) => Tensor;
  expand: (t: Tensor, shape: readonly number[]) => Tensor;
  narrow: (t: Tensor, dim: number, start: number, length: number) => Tensor;
  contiguous: (t: Tensor) => Tensor;
}
let viewOps: ViewOps | null = null;
export function registerViewOps(ops: ViewOps): void {
  viewOps = ops;
}
function ops(): ViewOps {
  if (!viewOps) throw new Error("internal: view ops not registered (import from '@webvlm/tensor')");
  return viewOps;
}
const reshapeOp = (t: Tensor, s: readonly number[]) => ops().reshape(t, s);
const permuteOp = (t: Tensor, d: readonly number[]) => ops().permute(t, d);
const expandOp = (t: Tensor, s: readonly number[]) => ops().expand(t, s);
const narrowOp = (t: Tensor, d: number, s: number, l: number) => ops().narrow(t, d, s, l);
const contiguousCopy = (t: Tensor) => ops().contiguous(t);

export { isGradEnabled };
