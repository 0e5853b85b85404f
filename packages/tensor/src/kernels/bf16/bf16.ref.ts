// Host reference for bf16 unpacking: the safetensors reader's bit-level conversions.
import { bf16BitsToF32Bits, f32BitsToF16Bits } from "../../safetensors/half.js";

/** Expected output bit patterns: f32 words, or f16 halves. */
export function bf16UnpackRef(bits: Uint16Array, dtype: "f32" | "f16"): Uint32Array | Uint16Array {
  if (dtype === "f32") return Uint32Array.from(bits, (b) => bf16BitsToF32Bits(b));
  // bf16 -> f32 is exact; then one round-to-nearest-even to f16.
  return Uint16Array.from(bits, (b) => f32BitsToF16Bits(bf16BitsToF32Bits(b)));
}
