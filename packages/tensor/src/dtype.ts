import { DTypeError } from "./errors.js";

/** Element types a tensor can hold on the device. bf16 checkpoint data is unpacked to f32/f16 on load. */
export type DType = "f32" | "f16" | "i32" | "u32";

export const DTYPES: readonly DType[] = ["f32", "f16", "i32", "u32"];

export function bytesPerElement(dtype: DType): number {
  return dtype === "f16" ? 2 : 4;
}

export function isFloat(dtype: DType): boolean {
  return dtype === "f32" || dtype === "f16";
}

/** The WGSL scalar type that stores this dtype. */
export function wgslType(dtype: DType): string {
  return dtype;
}

export type HostArray = Float32Array | Uint16Array | Int32Array | Uint32Array;

/** Host data for a dtype: f16 travels as raw bits in a Uint16Array (Node 20 has no Float16Array). */
export function hostArrayFor(dtype: DType, length: number): HostArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(length);
    case "f16":
      return new Uint16Array(length);
    case "i32":
      return new Int32Array(length);
    case "u32":
      return new Uint32Array(length);
  }
}

export function assertDType(op: string, what: string, got: DType, allowed: readonly DType[]): void {
  if (!allowed.includes(got)) {
    throw new DTypeError(`${op}: ${what} has dtype ${got}; expected one of ${allowed.join(", ")}`);
  }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE binary16 bits → number, subnormals, infinities and NaN included. */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** number → IEEE binary16 bits, rounding to nearest even like the GPU's conversion. */
export function numberToF16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  e = half >>> 10;
  return sign | half;
}

export function f16ArrayToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16BitsToNumber(bits[i]!);
  return out;
}

export function f32ArrayToF16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = numberToF16Bits(values[i]!);
  return out;
}
