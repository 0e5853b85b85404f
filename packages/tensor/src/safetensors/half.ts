// IEEE binary16 and bfloat16 <-> binary32 on raw bits. Node 20 has no Float16Array, and
// Math.fround-style tricks get subnormals, ties and NaN payloads wrong, so these work on bits.

let f16ToF32Table: Uint32Array | undefined;

/** f32 bit pattern of one f16 bit pattern; exact (every f16 is representable in f32). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, NaN (payload kept)
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // rebias 15 -> 127
  if (mant === 0) return sign >>> 0; // ±0
  // Subnormal: mant × 2^-24. Shift the mantissa up until its leading 1 becomes implicit.
  let e = 113; // f32 biased exponent of 2^-14, the f16 subnormal scale before normalising
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** f16 bit pattern nearest to an f32 bit pattern: round to nearest, ties to even; NaN stays NaN. */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13); // keep NaN quiet
  const he = exp - 112; // f16 biased exponent
  if (he >= 0x1f) return sign | 0x7c00; // |x| >= 65536: overflow to inf
  if (he <= 0) {
    // Result is subnormal (or zero): value = m × 2^(exp-150); in units of 2^-24 that is m >> (14 - he).
    if (he < -10) return sign; // |x| < 2^-25 rounds to zero
    const m = mant | 0x800000;
    const shift = 14 - he;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++; // a carry into bit 10 gives the smallest normal
    return sign | h;
  }
  let h = sign | (he << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // carry may roll into exponent / inf: correct
  return h;
}

/** bf16 is the top half of an f32, so widening is a shift: exact, NaN payload kept. */
export function bf16BitsToF32Bits(b: number): number {
  return (b << 16) >>> 0;
}

/** Nearest bf16 bit pattern (ties to even); NaN stays NaN (quiet bit set so truncation cannot make inf). */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Decode little-endian f16 bytes into f32 values (via a 256 KiB lookup table built once). */
export function f16BytesToFloat32(bytes: Uint8Array, out: Float32Array): void {
  if (f16ToF32Table === undefined) {
    f16ToF32Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16ToF32Table[h] = f16BitsToF32Bits(h);
  }
  const table = f16ToF32Table;
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  const src = halfWords(bytes, out.length);
  for (let i = 0; i < src.length; i++) outBits[i] = table[src[i]];
}

/** The bytes as u16 words (callers have checked the host is little-endian); copies if misaligned. */
function halfWords(bytes: Uint8Array, n: number): Uint16Array {
  const b = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(b.buffer, b.byteOffset, n);
}

export function bf16BytesToFloat32(bytes: Uint8Array, out: Float32Array): void {
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  const src = halfWords(bytes, out.length);
  for (let i = 0; i < src.length; i++) outBits[i] = src[i] << 16;
}

/** Encode f32 values as little-endian f16 (or bf16) bytes. */
export function float32ToHalfBytes(values: Float32Array, dtype: "F16" | "BF16"): Uint8Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  if (dtype === "F16") for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
  else for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16Bits(bits[i]);
  return new Uint8Array(out.buffer);
}
