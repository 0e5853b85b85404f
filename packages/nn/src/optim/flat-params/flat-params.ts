import {
  currentDevice,
  type Device,
  DTypeError,
  fmtShape,
  full,
  numel,
  ShapeError,
  Tensor,
} from "@webvlm/tensor";
import { OptimizerError } from "../errors.js";

export interface FlatParamsOptions {
  device?: Device;
  /** Names for error messages, one per shape (e.g. checkpoint paths). */
  names?: readonly string[];
  /**
   * Bytes per storage chunk. Default: the device's maxStorageBufferBindingSize, so every
   * parameter view stays bindable by ordinary kernels (they bind whole storages). A parameter
   * larger than this gets a chunk of its own.
   */
  maxChunkBytes?: number;
  /** Each parameter starts at a multiple of this many elements (default 64 = 256 bytes, the binding-offset alignment). */
  align?: number;
}

/** One storage of parameters and the grad storage that mirrors it element for element. */
export interface FlatChunk {
  /** 1-D f32 tensor holding the parameters of this chunk. */
  readonly data: Tensor;
  /** 1-D f32 tensor with the same layout, holding their gradients. */
  readonly grad: Tensor;
  /** Elements in use (the end of the last parameter). */
  readonly length: number;
}

export interface FlatSlot {
  chunk: number;
  /** First element of the parameter inside its chunk. */
  offset: number;
  size: number;
  shape: readonly number[];
}

const registry = new WeakMap<Tensor, { flat: FlatParams; index: number }>();

/**
 * Parameters stored back to back in a few large buffers ("flat parameter storage"): each
 * parameter is a contiguous view into a chunk, and its gradient is gathered into the same place of
 * a twin grad chunk. Optimizers then update every parameter of a chunk with one dispatch, and
 * clipGradNorm reduces a chunk in one pass.
 *
 * Backward still writes each leaf's gradient to a fresh tensor (autograd owns `.grad`):
 * `gatherGrads()` copies those into the grad chunk and points `.grad` at the views. Optimizers
 * and clipGradNorm call it for you.
 */
export class FlatParams {
  readonly params: readonly Tensor[];
  readonly slots: readonly FlatSlot[];
  readonly chunks: readonly FlatChunk[];
  readonly names: readonly string[];
  readonly device: Device;
  private disposed = false;

  private constructor(
    device: Device,
    params: Tensor[],
    slots: FlatSlot[],
    chunks: FlatChunk[],
    names: string[],
  ) {
    this.device = device;
    this.params = params;
    this.slots = slots;
    this.chunks = chunks;
    this.names = names;
  }

  /** Zero-filled f32 parameters of the given shapes, with `requiresGrad` set. */
  static create(shapes: readonly (readonly number[])[], options: FlatParamsOptions = {}): FlatParams {
    const device = options.device ?? currentDevice();
    const align = options.align ?? 64;
    if (!Number.isInteger(align) || align < 1)
      throw new OptimizerError(`FlatParams: align must be a positive integer, got ${align}`);
    const capBytes =
      options.maxChunkBytes ?? Math.min(device.maxBindingBytes, device.gpu.limits.maxBufferSize);
    const cap = Math.floor(capBytes / 4);
    if (options.names && options.names.length !== shapes.length) {
      throw new OptimizerError(`FlatParams: ${options.names.length} names for ${shapes.length} shapes`);
    }
    const names = shapes.map((_, i) => options.names?.[i] ?? `param ${i}`);
    // Pack greedily in order; a chunk closes when the next parameter would overflow it.
    const slots: FlatSlot[] = [];
    const lengths: number[] = [];
    let chunk = -1;
    let cursor = 0;
    shapes.forEach((shape, i) => {
      if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
        throw new ShapeError(`FlatParams: ${names[i]} has invalid shape ${JSON.stringify(shape)}`);
      }
      const size = numel(shape);
      let start = Math.ceil(cursor / align) * align;
      if (chunk < 0 || (start + size > cap && cursor > 0)) {
        chunk++;
        lengths.push(0);
        start = 0;
      }
      slots.push({ chunk, offset: start, size, shape: [...shape] });
      cursor = start + size;
      lengths[chunk] = cursor;
    });
    const chunks: FlatChunk[] = lengths.map((length) => ({
      data: full([Math.max(length, 1)], 0, { dtype: "f32", device }).keep(),
      grad: full([Math.max(length, 1)], 0, { dtype: "f32", device }).keep(),
      length,
    }));
    const params = slots.map((s) => {
      const p = viewOf(chunks[s.chunk]!.data, s);
      p.requiresGrad = true;
      return p;
    });
    const flat = new FlatParams(device, params, slots, chunks, names);
    params.forEach((p, index) => {
      registry.set(p, { flat, index });
    });
    return flat;
  }

  /** Flat parameters holding copies of `tensors` (any layout; f32). The originals are left alone. */
  static fromTensors(tensors: readonly Tensor[], options: FlatParamsOptions = {}): FlatParams {
    tensors.forEach((t, i) => {
      if (t.dtype !== "f32")
        throw new DTypeError(
          `FlatParams.fromTensors: tensor ${i} ${fmtShape(t.shape)} is ${t.dtype}; only f32 is supported`,
        );
    });
    const flat = FlatParams.create(
      tensors.map((t) => t.shape),
      { device: tensors[0]?.device, ...options },
    );
    tensors.forEach((t, i) => {
      flat.copyInto(flat.chunks[flat.slots[i]!.chunk]!.data, i, t);
    });
    return flat;
  }

  /** The flat storage and index of a parameter created here, or undefined. */
  static of(param: Tensor): { flat: FlatParams; index: number } | undefined {
    return registry.get(param);
  }

  get length(): number {
    return this.params.length;
  }

  /** Total parameter elements (without alignment padding). */
  get numel(): number {
    return this.slots.reduce((s, x) => s + x.size, 0);
  }

  /** Uploads values into parameter `i`. */
  set(i: number, values: ArrayLike<number>): void {
    const slot = this.slot(i);
    if (values.length !== slot.size) {
      throw new ShapeError(
        `FlatParams.set: ${this.names[i]} ${fmtShape(slot.shape)} needs ${slot.size} values, got ${values.length}`,
      );
    }
    if (slot.size === 0) return;
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    this.device.write(this.chunks[slot.chunk]!.data.storage.buffer, slot.offset * 4, data);
  }

  /**
   * Moves the gradients of parameters `indices` (default all) into the grad chunks and points
   * each `.grad` at its view there. Parameters without a gradient are left with `.grad === null`.
   */
  gatherGrads(indices?: Iterable<number>): void {
    this.assertLive();
    for (const i of indices ?? this.params.keys()) {
      const p = this.params[i]!;
      const g = p.grad;
      if (!g) continue;
      const slot = this.slots[i]!;
      const chunk = this.chunks[slot.chunk]!;
      if (g.dtype !== "f32") throw new DTypeError(`${this.names[i]}: gradient is ${g.dtype}, expected f32`);
      if (!sameShape(g.shape, slot.shape)) {
        throw new ShapeError(
          `${this.names[i]}: gradient ${fmtShape(g.shape)} does not match the parameter ${fmtShape(slot.shape)}`,
        );
      }
      if (g.storage === chunk.grad.storage && g.offset === slot.offset && g.isContiguous()) continue;
      this.copyInto(chunk.grad, i, g);
      g.dispose();
      p.grad = viewOf(chunk.grad, slot).keep();
    }
  }

  /** Drops every gradient (`.grad = null`), like torch's `zero_grad(set_to_none=True)`. */
  zeroGrad(): void {
    for (const p of this.params) {
      if (p.grad) {
        p.grad.dispose();
        p.grad = null;
      }
    }
  }

  /** Frees the chunks; the parameter views and their gradients become unusable. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.params) p.dispose();
    for (const c of this.chunks) {
      c.data.dispose();
      c.grad.dispose();
    }
  }

  private slot(i: number): FlatSlot {
    this.assertLive();
    const slot = this.slots[i];
    if (!slot) throw new RangeError(`FlatParams: no parameter ${i} (have ${this.slots.length})`);
    return slot;
  }

  private assertLive(): void {
    if (this.disposed) throw new OptimizerError("FlatParams: used after dispose()");
  }

  private copyInto(dst: Tensor, i: number, src: Tensor): void {
    const slot = this.slots[i]!;
    if (!sameShape(src.shape, slot.shape)) {
      throw new ShapeError(
        `FlatParams: ${this.names[i]} is ${fmtShape(slot.shape)}, got a tensor ${fmtShape(src.shape)}`,
      );
    }
    if (slot.size === 0) return;
    let c = src.isContiguous() ? src : src.contiguous();
    if (c.storage.buffer === dst.storage.buffer) {
      // copyBufferToBuffer cannot copy within one buffer (a gradient pointing at another slot): stage it.
      const staged = Tensor.empty(c.shape, { device: this.device });
      this.device.copyBuffer(c.storage.buffer, c.offset * 4, staged.storage.buffer, 0, slot.size * 4);
      if (c !== src) c.dispose();
      c = staged;
    }
    this.device.copyBuffer(
      c.storage.buffer,
      c.offset * 4,
      dst.storage.buffer,
      slot.offset * 4,
      slot.size * 4,
    );
    if (c !== src) c.dispose();
  }
}

function viewOf(flat: Tensor, slot: FlatSlot): Tensor {
  const window = flat.narrow(0, slot.offset, slot.size);
  const view = window.reshape(slot.shape);
  if (view !== window) window.dispose();
  view.kept = true;
  return view;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
