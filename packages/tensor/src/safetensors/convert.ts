import { DTYPE_SIZE, HOST_IS_LITTLE_ENDIAN, numel, type SafetensorsTensor } from "./dtype.js";
import { SafetensorsError } from "./errors.js";
import { bf16BytesToFloat32, f16BytesToFloat32, float32ToHalfBytes } from "./half.js";

function fail(t: SafetensorsTensor, problem: string): never {
  throw new SafetensorsError(t.file ?? "", problem, { tensor: t.name ?? "(unnamed)" });
}

function checkRecord(t: SafetensorsTensor, op: string): number {
  if (!HOST_IS_LITTLE_ENDIAN) fail(t, `${op}: big-endian hosts are not supported`);
  const n = numel(t.shape);
  const size = DTYPE_SIZE[t.dtype];
  if (size === undefined) fail(t, `${op}: unknown dtype ${String(t.dtype)}`);
  if (t.data.byteLength !== n * size) {
    fail(
      t,
      `${op}: ${t.dtype} [${t.shape.join(", ")}] needs ${n * size} bytes, data has ${t.data.byteLength}`,
    );
  }
  return n;
}

/** A typed view when the bytes are aligned for it, else an aligned copy. */
function aligned(data: Uint8Array, align: number): { buffer: ArrayBufferLike; byteOffset: number } {
  if (data.byteOffset % align === 0) return { buffer: data.buffer, byteOffset: data.byteOffset };
  return { buffer: data.slice().buffer, byteOffset: 0 };
}

/**
 * Values as f32. F32 data is returned as a view sharing memory with `t.data` when aligned (no copy
 * of big weights); every other dtype is converted into a new array. I64/U64/I32/U32 beyond 2^24
 * round to the nearest f32, as any cast would. F16, BF16 are exact, including subnormals, inf, NaN.
 */
export function toFloat32(t: SafetensorsTensor): Float32Array {
  const n = checkRecord(t, "toFloat32");
  const d = t.data;
  switch (t.dtype) {
    case "F32": {
      const a = aligned(d, 4);
      return new Float32Array(a.buffer, a.byteOffset, n);
    }
    case "F16": {
      const out = new Float32Array(n);
      f16BytesToFloat32(d, out);
      return out;
    }
    case "BF16": {
      const out = new Float32Array(n);
      bf16BytesToFloat32(d, out);
      return out;
    }
    case "BOOL":
      checkBool(t);
      return Float32Array.from(d);
    case "I64":
    case "U64": {
      // Two 32-bit halves per element: far cheaper than a BigInt per element.
      const w = words(t, n);
      const out = new Float32Array(n);
      const signedHi = t.dtype === "I64";
      for (let i = 0; i < n; i++) {
        const hi = signedHi ? w[2 * i + 1] | 0 : w[2 * i + 1];
        out[i] = hi * 4294967296 + w[2 * i];
      }
      return out;
    }
    default: {
      const out = new Float32Array(n);
      out.set(numberView(t, n)); // typed-array set() converts element-wise
      return out;
    }
  }
}

/**
 * Values as i32, for token ids, masks and index tables. Only integer and BOOL dtypes; a value
 * outside int32 (e.g. an I64 of 2^31) is an error naming the tensor and index, never a wrap.
 */
export function toInt32(t: SafetensorsTensor): Int32Array {
  const n = checkRecord(t, "toInt32");
  const d = t.data;
  switch (t.dtype) {
    case "I32": {
      const a = aligned(d, 4);
      return new Int32Array(a.buffer, a.byteOffset, n);
    }
    case "I16":
    case "I8":
    case "U16":
    case "U8": {
      const out = new Int32Array(n);
      out.set(numberView(t, n));
      return out;
    }
    case "BOOL":
      checkBool(t);
      return Int32Array.from(d);
    case "U32": {
      const src = numberView(t, n);
      for (let i = 0; i < n; i++) {
        if (src[i] > 2147483647) fail(t, `toInt32: element ${i} is ${src[i]}, outside int32 range`);
      }
      return new Int32Array(src.buffer, src.byteOffset, n).slice();
    }
    case "I64":
    case "U64": {
      // In int32 range iff the high word is the sign extension of the low word (zero for U64).
      const w = words(t, n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = w[2 * i] | 0;
        const hi = w[2 * i + 1] | 0;
        const ok = t.dtype === "I64" ? hi === lo >> 31 : hi === 0 && lo >= 0;
        if (!ok) fail(t, `toInt32: element ${i} is ${readInt64(t, i)}, outside int32 range`);
        out[i] = lo;
      }
      return out;
    }
    default:
      return fail(t, `toInt32: dtype ${t.dtype} is not an integer dtype; use toFloat32`);
  }
}

/** Encode f32 values as a tensor record of dtype F32, F16 or BF16 (round to nearest even). */
export function fromFloat32(
  values: Float32Array,
  shape: number[],
  dtype: "F32" | "F16" | "BF16",
): SafetensorsTensor {
  if (!HOST_IS_LITTLE_ENDIAN)
    throw new SafetensorsError("", "fromFloat32: big-endian hosts are not supported");
  if (numel(shape) !== values.length) {
    throw new SafetensorsError(
      "",
      `fromFloat32: shape [${shape.join(", ")}] has ${numel(shape)} elements, values ${values.length}`,
    );
  }
  const data =
    dtype === "F32"
      ? new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
      : float32ToHalfBytes(values, dtype);
  return { dtype, shape: [...shape], data };
}

type NumberView = Float64Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array;

function numberView(t: SafetensorsTensor, n: number): NumberView {
  const d = t.data;
  const view = <T>(ctor: new (b: ArrayBufferLike, o: number, n: number) => T, align: number): T => {
    const a = aligned(d, align);
    return new ctor(a.buffer, a.byteOffset, n);
  };
  switch (t.dtype) {
    case "F64":
      return view(Float64Array, 8);
    case "I32":
      return view(Int32Array, 4);
    case "U32":
      return view(Uint32Array, 4);
    case "I16":
      return view(Int16Array, 2);
    case "U16":
      return view(Uint16Array, 2);
    case "I8":
      return new Int8Array(d.buffer, d.byteOffset, n);
    case "U8":
      return d;
    default:
      return fail(t, `internal: no number view for ${t.dtype}`);
  }
}

/** Little-endian 64-bit elements as [lo, hi] u32 pairs. */
function words(t: SafetensorsTensor, n: number): Uint32Array {
  const a = aligned(t.data, 4);
  return new Uint32Array(a.buffer, a.byteOffset, 2 * n);
}

function readInt64(t: SafetensorsTensor, i: number): string {
  const v = new DataView(t.data.buffer, t.data.byteOffset + 8 * i, 8);
  return (t.dtype === "I64" ? v.getBigInt64(0, true) : v.getBigUint64(0, true)).toString();
}

/** A BOOL byte other than 0/1 means the file is not what it claims; refuse rather than guess. */
function checkBool(t: SafetensorsTensor): void {
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    if (d[i] > 1) fail(t, `BOOL element ${i} is byte ${d[i]}, expected 0 or 1`);
  }
}
