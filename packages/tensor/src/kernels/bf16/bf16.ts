import type { Device } from "../../device.js";
import { currentDevice } from "../../device.js";
import { DTypeError, fmtShape, ShapeError } from "../../errors.js";
import { numel, Tensor } from "../../tensor.js";
import { grid1d } from "../elementwise/elementwise.js";
import code from "./bf16.wgsl";

export interface Bf16Options {
  /** Element type of the result; default f32 (exact). f16 rounds to nearest even (overflow → inf). */
  dtype?: "f32" | "f16";
  device?: Device;
  /** Elements per dispatch (a multiple of 256); default: what one storage binding can hold. For tests. */
  chunkElements?: number;
}

/**
 * A tensor from raw bf16 checkpoint data: 16-bit patterns (Uint16Array, or little-endian bytes)
 * are uploaded as they are — half the bytes of an f32 upload — and widened on the GPU.
 * Large tensors are converted in chunks that fit one storage binding.
 */
export function tensorFromBf16(
  bits: Uint16Array | Uint8Array,
  shape: readonly number[],
  options: Bf16Options = {},
): Tensor {
  const dtype = options.dtype ?? "f32";
  if (dtype !== "f32" && dtype !== "f16")
    throw new DTypeError(`tensorFromBf16: dtype must be f32 or f16, got ${String(dtype)}`);
  const n = numel(shape);
  const count = bits instanceof Uint8Array ? bits.byteLength / 2 : bits.length;
  if (count !== n || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ShapeError(
      `tensorFromBf16: ${bits instanceof Uint8Array ? `${bits.byteLength} bytes` : `${bits.length} values`} do not fill shape ${fmtShape(shape)} (${n} bf16 elements)`,
    );
  }
  const device = options.device ?? currentDevice();
  const y = Tensor.empty(shape, { dtype, device });
  if (n === 0) return y;
  const words = Tensor.empty([Math.ceil(n / 2)], { dtype: "u32", device });
  device.write(words.storage.buffer, 0, bits);
  const outBytes = dtype === "f32" ? 4 : 2;
  // Chunk starts are multiples of 256 elements, so both bindings start 256-byte aligned.
  const maxChunk = Math.floor(device.maxBindingBytes / 4 / 256) * 256;
  const chunk = Math.min(options.chunkElements ?? maxChunk, maxChunk);
  if (chunk <= 0 || chunk % 256 !== 0)
    throw new ShapeError(`tensorFromBf16: chunkElements ${chunk} must be a positive multiple of 256`);
  for (let start = 0; start < n; start += chunk) {
    const m = Math.min(chunk, n - start);
    const inBytes = Math.ceil(m / 2) * 4;
    const dstBytes = Math.ceil((m * outBytes) / 4) * 4;
    device.dispatch({
      op: "bf16_unpack",
      code,
      buffers: [
        { buffer: words.storage.buffer, offset: start * 2, size: inBytes },
        { buffer: y.storage.buffer, offset: start * outBytes, size: dstBytes },
      ],
      uniforms: new Uint32Array([m, dtype === "f16" ? 1 : 0]),
      workgroups: grid1d(device, dtype === "f16" ? Math.ceil(m / 2) : m),
    });
  }
  words.dispose();
  return y;
}
