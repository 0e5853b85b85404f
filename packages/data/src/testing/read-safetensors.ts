// Test-only reader for the fixtures (F32 / I32 / I64). The real reader lives in @webvlm/tensor;
// this one exists so @webvlm/data stays free of the tensor engine.
import { readFileSync } from "node:fs";

export interface FixtureTensor {
  dtype: "F32" | "I32" | "I64";
  shape: number[];
  /** F32 → Float32Array; I32 and I64 → Int32Array (I64 values are range-checked). */
  data: Float32Array | Int32Array;
}

export function readSafetensors(path: string): Map<string, FixtureTensor> {
  const file = readFileSync(path);
  const headerLen = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLen).toString("utf8")) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLen;
  const out = new Map<string, FixtureTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [begin, end] = entry.data_offsets;
    // Copy so the typed array is aligned regardless of the header length.
    const bytes = new Uint8Array(file.subarray(base + begin, base + end));
    const view = new DataView(bytes.buffer);
    if (entry.dtype === "F32") {
      out.set(name, { dtype: "F32", shape: entry.shape, data: new Float32Array(bytes.buffer) });
    } else if (entry.dtype === "I32") {
      out.set(name, { dtype: "I32", shape: entry.shape, data: new Int32Array(bytes.buffer) });
    } else if (entry.dtype === "I64") {
      const n = bytes.length / 8;
      const data = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = view.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n)
          throw new Error(`${path}: ${name}[${i}] = ${v} exceeds int32`);
        data[i] = Number(v);
      }
      out.set(name, { dtype: "I64", shape: entry.shape, data });
    } else {
      throw new Error(
        `${path}: tensor ${name} has dtype ${entry.dtype}; this test reader handles F32, I32, I64`,
      );
    }
  }
  return out;
}
