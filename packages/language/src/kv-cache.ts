import {
  assign,
  currentDevice,
  type Device,
  type DType,
  fmtShape,
  full,
  ShapeError,
  Tensor,
} from "@webvlm/tensor";
import type { MistralConfig } from "./config.js";

export interface KVCacheOptions {
  numLayers: number;
  batch: number;
  numKeyValueHeads: number;
  headDim: number;
  /** Slots per row: prompt plus every token to be generated. */
  maxLength: number;
  /** Dtype of K/V (the model's activation dtype). Default f32. */
  dtype?: DType;
  device?: Device;
}

/**
 * Preallocated key/value cache: per layer K and V of [B, Hkv, maxLength, D], plus the attention
 * mask of every filled slot ([B, maxLength], i32, on the device for the attention kernel and on
 * the host for position ids). New tokens are written in place into a narrowed view; attention
 * reads the filled prefix through views, so decoding never reallocates.
 *
 * Slot j holds the j-th token fed to the model (padding included), so causal order and the
 * sliding window are measured in slots, as HF's DynamicCache does.
 */
export class KVCache {
  readonly keys: Tensor[];
  readonly values: Tensor[];
  /** i32 [B, maxLength]; only the first `length` columns are meaningful. */
  readonly mask: Tensor;
  readonly batch: number;
  readonly maxLength: number;
  private readonly hostMask: Int32Array;
  private _length = 0;
  private padded = false;
  private disposed = false;

  constructor(readonly options: KVCacheOptions) {
    const { numLayers, batch, numKeyValueHeads, headDim, maxLength } = options;
    for (const [name, v] of Object.entries({ numLayers, batch, numKeyValueHeads, headDim, maxLength })) {
      if (!Number.isInteger(v) || v <= 0)
        throw new ShapeError(`KVCache: ${name} must be a positive integer, got ${v}`);
    }
    const device = options.device ?? currentDevice();
    const dtype = options.dtype ?? "f32";
    const shape = [batch, numKeyValueHeads, maxLength, headDim];
    // Kept: the cache outlives the tidy scope of the step that creates it.
    this.keys = Array.from({ length: numLayers }, () => Tensor.empty(shape, { dtype, device }).keep());
    this.values = Array.from({ length: numLayers }, () => Tensor.empty(shape, { dtype, device }).keep());
    this.mask = full([batch, maxLength], 0, { dtype: "i32", device }).keep();
    this.hostMask = new Int32Array(batch * maxLength);
    this.batch = batch;
    this.maxLength = maxLength;
  }

  /** A cache shaped for `config`'s layers and heads. */
  static forConfig(
    config: MistralConfig,
    batch: number,
    maxLength: number,
    options: { dtype?: DType; device?: Device } = {},
  ): KVCache {
    return new KVCache({
      numLayers: config.num_hidden_layers,
      batch,
      numKeyValueHeads: config.num_key_value_heads,
      headDim: config.head_dim,
      maxLength,
      ...options,
    });
  }

  /** Slots filled so far (tokens already seen by every layer). */
  get length(): number {
    return this._length;
  }

  /** Bytes held on the device. */
  get byteLength(): number {
    return this.keys.reduce((n, k) => n + k.byteLength, 0) * 2 + this.mask.byteLength;
  }

  /** The host copy of the mask over the filled slots plus `extra` pending ones: [B, length + extra]. */
  hostMaskPrefix(extra = 0): Int32Array {
    const w = this._length + extra;
    const out = new Int32Array(this.batch * w);
    for (let b = 0; b < this.batch; b++)
      out.set(this.hostMask.subarray(b * this.maxLength, b * this.maxLength + w), b * w);
    return out;
  }

  /**
   * Starts a step of T tokens: checks capacity, records their mask [B, T] in slots
   * [length, length + T) and returns the key mask view over [0, length + T), or null when no
   * filled slot is padding (the kernel then skips the mask).
   */
  begin(T: number, newMask: Int32Array): Tensor | null {
    this.checkLive();
    if (this._length + T > this.maxLength) {
      throw new ShapeError(
        `KVCache: ${T} new tokens after ${this._length} cached ones exceed maxLength ${this.maxLength}; allocate a larger cache`,
      );
    }
    if (newMask.length !== this.batch * T)
      throw new ShapeError(`KVCache: mask of ${newMask.length} values for [${this.batch}, ${T}]`);
    for (let b = 0; b < this.batch; b++) {
      for (let t = 0; t < T; t++) {
        const m = newMask[b * T + t]!;
        this.hostMask[b * this.maxLength + this._length + t] = m;
        if (m === 0) this.padded = true;
      }
    }
    const chunk = Tensor.from(newMask, [this.batch, T], { dtype: "i32", device: this.mask.device });
    const dst = this.mask.narrow(1, this._length, T);
    assign(dst, chunk);
    dst.dispose();
    chunk.dispose();
    return this.padded ? this.mask.narrow(1, 0, this._length + T) : null;
  }

  /**
   * Writes layer `layer`'s new keys and values [B, Hkv, T, D] into slots [length, length + T)
   * and returns views of the filled prefix [B, Hkv, length + T, D].
   */
  update(layer: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    this.checkLive();
    const K = this.keys[layer];
    const V = this.values[layer];
    if (!K || !V) throw new ShapeError(`KVCache: layer ${layer} is outside 0..${this.keys.length - 1}`);
    const [B, H, , D] = K.shape;
    const T = k.shape[2]!;
    const ok = (t: Tensor) =>
      t.rank === 4 && t.shape[0] === B && t.shape[1] === H && t.shape[2] === T && t.shape[3] === D;
    if (!ok(k) || !ok(v)) {
      throw new ShapeError(
        `KVCache: layer ${layer} expects k/v [${B}, ${H}, T, ${D}], got k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`,
      );
    }
    if (this._length + T > this.maxLength) {
      throw new ShapeError(
        `KVCache: ${T} new tokens after ${this._length} exceed maxLength ${this.maxLength}`,
      );
    }
    for (const [cache, x] of [
      [K, k],
      [V, v],
    ] as const) {
      const dst = cache.narrow(2, this._length, T);
      assign(dst, x);
      dst.dispose();
    }
    const n = this._length + T;
    return { k: K.narrow(2, 0, n), v: V.narrow(2, 0, n) };
  }

  /** Ends a step: the T tokens written by every layer count as cached. */
  commit(T: number): void {
    this._length += T;
  }

  /** Forgets every token (the buffers are reused). */
  reset(): void {
    this._length = 0;
    this.padded = false;
    this.hostMask.fill(0);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of [...this.keys, ...this.values, this.mask]) t.dispose();
  }

  private checkLive(): void {
    if (this.disposed) throw new ShapeError("KVCache: used after dispose()");
  }
}
