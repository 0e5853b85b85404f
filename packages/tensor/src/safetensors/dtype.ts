/** Dtype names exactly as they appear in safetensors headers. */
export type SafetensorsDtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL";

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

export const SAFETENSORS_DTYPES: readonly SafetensorsDtype[] = Object.keys(DTYPE_SIZE) as SafetensorsDtype[];

export function isSafetensorsDtype(x: unknown): x is SafetensorsDtype {
  return typeof x === "string" && Object.hasOwn(DTYPE_SIZE, x);
}

/** A tensor as stored: raw little-endian bytes plus dtype and shape. */
export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Raw little-endian bytes, exactly numel × dtype size long. */
  data: Uint8Array;
  /** Set on tensors read from a file, so conversion errors can name them. */
  name?: string;
  file?: string;
}

/** Product of the dims; [] is a scalar with one element. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Data in typed arrays is in host byte order while safetensors is little-endian; every
 * machine Node runs on today is little-endian, so we check once instead of swapping bytes.
 */
export const HOST_IS_LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
