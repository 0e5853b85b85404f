import { beforeAll, describe, expect, it } from "vitest";
import { getDevice, ShapeError, type Tensor } from "../../index.js";
import { Rng } from "../../testing.js";
import { tensorFromBf16 } from "./bf16.js";
import { bf16UnpackRef } from "./bf16.ref.js";

beforeAll(async () => {
  await getDevice();
});

const rng = new Rng(71);

async function bitsOf(t: Tensor): Promise<Uint32Array | Uint16Array> {
  const d = await t.data();
  return t.dtype === "f16" ? (d as Uint16Array) : new Uint32Array(d.buffer, d.byteOffset, d.length);
}

function firstMismatch(got: ArrayLike<number>, want: ArrayLike<number>, input: Uint16Array): string {
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i])
      return `element ${i}: bf16 0x${input[i]!.toString(16)} -> 0x${got[i]!.toString(16)}, expected 0x${want[i]!.toString(16)}`;
  }
  return got.length === want.length ? "" : `length ${got.length} vs ${want.length}`;
}

describe("tensorFromBf16", () => {
  // Every one of the 65536 patterns (NaNs, ±inf, subnormals, ±0, f16 overflow and ties), minus
  // one so the element count is odd and the last u32 word is half used.
  const all = Uint16Array.from({ length: 65535 }, (_, i) => (i * 40503) & 0xffff);
  for (const dtype of ["f32", "f16"] as const) {
    it(`widens every bf16 bit pattern to ${dtype} exactly like the host conversion`, async () => {
      const t = tensorFromBf16(all, [65535], { dtype });
      expect(t.dtype).toBe(dtype);
      expect(firstMismatch(await bitsOf(t), bf16UnpackRef(all, dtype), all)).toBe("");
    });

    it(`converts in chunks that fit one binding (${dtype}, forced small chunks, odd sizes)`, async () => {
      const bits = Uint16Array.from({ length: 3 * 7 * 331 }, () => Math.floor(rng.next() * 65536));
      bits[0] = 0x7fc1; // NaN with payload
      bits[1] = 0x0001; // smallest subnormal
      bits[bits.length - 1] = 0xff80; // -inf
      const t = tensorFromBf16(bits, [3, 7, 331], { dtype, chunkElements: 1024 });
      expect(t.shape).toEqual([3, 7, 331]);
      expect(firstMismatch(await bitsOf(t), bf16UnpackRef(bits, dtype), bits)).toBe("");
    });
  }

  it("takes little-endian bytes straight from a safetensors buffer, and size-1/empty shapes", async () => {
    const values = Uint16Array.from([0x3f80, 0xc040, 0x0000]); // 1, -3, 0
    const bytes = new Uint8Array(values.buffer);
    expect(Array.from(await tensorFromBf16(bytes, [3, 1]).toFloat32())).toEqual([1, -3, 0]);
    expect(
      Array.from(await tensorFromBf16(Uint16Array.of(0x4049), [1], { dtype: "f16" }).toFloat32()),
    ).toEqual([3.140625]);
    expect(tensorFromBf16(new Uint16Array(0), [0, 5]).shape).toEqual([0, 5]);
  });

  it("names the shape when the data does not fill it", () => {
    expect(() => tensorFromBf16(new Uint16Array(5), [2, 3])).toThrow(ShapeError);
    expect(() => tensorFromBf16(new Uint16Array(5), [2, 3])).toThrow(
      "tensorFromBf16: 5 values do not fill shape [2, 3] (6 bf16 elements)",
    );
    expect(() => tensorFromBf16(new Uint8Array(7), [4])).toThrow("7 bytes do not fill shape [4]");
  });
});
