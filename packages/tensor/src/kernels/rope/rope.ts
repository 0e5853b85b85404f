import { record } from "../../autograd.js";
import type { Device } from "../../device.js";
import { isFloat } from "../../dtype.js";
import { DTypeError, fmtShape, ShapeError } from "../../errors.js";
import { numel, Tensor } from "../../tensor.js";
import { grid1d } from "../elementwise/elementwise.js";
import { typed } from "../gather/gather.js";
import type { HostIndices } from "../gather/indices.js";
import code from "./rope.wgsl";

export interface RopeOptions {
  /** Base of the frequencies (`rope_theta`); Mistral-7B: 10000. */
  theta: number;
  /** Leading dims that rotate (partial rotary); default D. Must be even. */
  rotaryDim?: number;
}

/**
 * inv_freq[i] = 1 / theta^(2i / rot), rounded as HF computes it in torch f32:
 * `1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))`, each step rounded to f32.
 */
export function ropeInvFreq(theta: number, rot: number): Float32Array {
  const out = new Float32Array(rot / 2);
  for (let i = 0; i < rot / 2; i++) {
    const exponent = Math.fround((2 * i) / rot);
    out[i] = Math.fround(1 / Math.fround(theta ** exponent));
  }
  return out;
}

const invFreqCache = new WeakMap<Device, Map<string, Tensor>>();

function invFreqTensor(device: Device, theta: number, rot: number): Tensor {
  let byKey = invFreqCache.get(device);
  if (!byKey) {
    byKey = new Map();
    invFreqCache.set(device, byKey);
  }
  const key = `${theta}/${rot}`;
  let t = byKey.get(key);
  if (!t || t.isDisposed) {
    // Tiny and reused by every layer: cached for the device's life, outside any tidy scope.
    t = Tensor.from(ropeInvFreq(theta, rot), [rot / 2], { device }).keep();
    byKey.set(key, t);
  }
  return t;
}

function launch(x: Tensor, pos: Tensor, theta: number, rot: number, sign: number): Tensor {
  const [B, H, T, D] = x.shape as [number, number, number, number];
  const y = Tensor.empty([B, H, T, D], { dtype: x.dtype, device: x.device });
  const half = rot / 2;
  const n = B * H * T * (half + D - rot);
  if (n === 0) return y;
  const invFreq = invFreqTensor(x.device, theta, rot);
  const u = new Uint32Array(16);
  const [psB, psT] =
    pos.rank === 1 ? [0, pos.strides[0]!] : [pos.shape[0] === 1 ? 0 : pos.strides[0]!, pos.strides[1]!];
  u.set([n, H, T, D, half, rot, x.offset, pos.offset, ...x.strides, psB, psT]);
  new Float32Array(u.buffer)[14] = sign;
  x.device.dispatch({
    op: sign > 0 ? "rope" : "rope_backward",
    code: typed(code, x.dtype),
    buffers: [
      { buffer: x.storage.buffer },
      { buffer: pos.storage.buffer },
      { buffer: invFreq.storage.buffer },
      { buffer: y.storage.buffer },
    ],
    uniforms: u,
    workgroups: grid1d(x.device, n),
  });
  return y;
}

/**
 * Rotary embedding of x [B, H, T, D] (any strided view, e.g. a permuted [B, T, H, D]) at integer
 * positions [B, T] or [T] (device i32 tensor or host data), HF `rotate_half` layout. The angles
 * are formed in f32 exactly like HF (see rope.wgsl); f16 x is rotated in f32 and rounded once
 * (HF rounds cos/sin to f16 first: results may differ by an f16 ulp). Output is contiguous
 * [B, H, T, D]. Backward: the inverse rotation of g.
 */
export function rope(
  x: Tensor,
  positions: Tensor | Int32Array | readonly number[] | HostIndices,
  options: RopeOptions,
): Tensor {
  if (x.rank !== 4) throw new ShapeError(`rope: x must be [B, H, T, D], got ${fmtShape(x.shape)}`);
  if (!isFloat(x.dtype)) throw new DTypeError(`rope: x must be f32 or f16, got ${x.dtype}`);
  const [B, , T, D] = x.shape as [number, number, number, number];
  const rot = options.rotaryDim ?? D;
  if (!Number.isInteger(rot) || rot <= 0 || rot % 2 !== 0 || rot > D) {
    throw new ShapeError(`rope: rotaryDim ${rot} must be even and in (0, ${D}] for x ${fmtShape(x.shape)}`);
  }
  if (!(options.theta > 0)) throw new ShapeError(`rope: theta must be positive, got ${options.theta}`);
  let pos: Tensor;
  if (positions instanceof Tensor) {
    if (positions.dtype !== "i32")
      throw new DTypeError(
        `rope: positions must be i32, got ${positions.dtype} ${fmtShape(positions.shape)}`,
      );
    pos = positions;
  } else {
    const isHost = !(positions instanceof Int32Array) && !Array.isArray(positions);
    const data = isHost ? (positions as HostIndices).data : (positions as ArrayLike<number>);
    const shape = isHost ? (positions as HostIndices).shape : [data.length];
    if (data.length !== numel(shape))
      throw new ShapeError(`rope: ${data.length} positions for shape ${fmtShape(shape)}`);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isInteger(data[i]) || Math.abs(data[i]!) >= 2 ** 24) {
        throw new ShapeError(
          `rope: positions[${i}] = ${data[i]} is not an integer below 2^24 (exact in f32)`,
        );
      }
    }
    pos = Tensor.from(Int32Array.from(data), shape, { dtype: "i32", device: x.device });
  }
  const okShape =
    (pos.rank === 1 && pos.shape[0] === T) ||
    (pos.rank === 2 && pos.shape[1] === T && (pos.shape[0] === B || pos.shape[0] === 1));
  if (!okShape) {
    if (pos !== positions) pos.dispose();
    throw new ShapeError(
      `rope: positions ${fmtShape(pos.shape)} must be [B, T] or [T] for x ${fmtShape(x.shape)} (B ${B}, T ${T})`,
    );
  }
  const y = launch(x, pos, options.theta, rot, 1);
  record("rope", y, [x], (g, [p]) => [launch(g, p!, options.theta, rot, -1)], [pos]);
  if (pos !== positions) pos.dispose();
  return y;
}
