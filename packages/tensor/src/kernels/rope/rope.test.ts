import { beforeAll, describe, expect, it } from "vitest";
import { DTypeError, getDevice, ShapeError, Tensor } from "../../index.js";
import { assertClose, checkGradients, compare, Rng } from "../../testing.js";
import { stridedRead } from "../gather/gather.ref.js";
import { rope, ropeInvFreq } from "./rope.js";
import { ropeRef } from "./rope.ref.js";

beforeAll(async () => {
  await getDevice();
});

const rng = new Rng(61);
type Shape4 = [number, number, number, number];
const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);

describe("rope", () => {
  const cases: [Shape4, number | undefined, "bt" | "t"][] = [
    [[2, 3, 5, 8], undefined, "bt"],
    [[1, 1, 1, 2], undefined, "t"],
    [[3, 2, 7, 10], 6, "t"], // partial rotary: dims 6..9 pass through
    [[2, 1, 0, 4], undefined, "bt"],
    [[1, 4, 9, 64], undefined, "bt"],
  ];
  for (const [shape, rotaryDim, posKind] of cases) {
    it(`matches the reference for x [${shape}], rotaryDim ${rotaryDim ?? "D"}, positions ${posKind}`, async () => {
      const [B, , T] = shape;
      const x = rng.uniform(size(shape));
      const positions = rng.int(posKind === "bt" ? B * T : T, 0, 300);
      const pShape = posKind === "bt" ? [B, T] : [T];
      const want = ropeRef(x, shape, positions, { theta: 10000, rotaryDim });
      const y = rope(Tensor.from(x, shape), Tensor.from(positions, pShape, { dtype: "i32" }), {
        theta: 10000,
        rotaryDim,
      });
      expect(y.shape).toEqual(shape);
      assertClose(await y.toFloat32(), want, { atol: 1e-6, what: "rope" });
      const yh = rope(Tensor.from(x, shape), { data: positions, shape: pShape }, { theta: 10000, rotaryDim });
      assertClose(await yh.toFloat32(), want, { atol: 1e-6, what: "rope, host positions" });
    });
  }

  it("reads x as a permuted [B, T, H, D] view and broadcasts [1, T] positions", async () => {
    const [B, T, H, D] = [2, 6, 3, 8];
    const data = rng.uniform(B * T * H * D);
    const x = Tensor.from(data, [B, T, H, D]).permute([0, 2, 1, 3]); // [B, H, T, D], non-contiguous
    expect(x.isContiguous()).toBe(false);
    const dense = stridedRead(data, x.shape, x.strides, x.offset);
    const pos = rng.int(T, 0, 100);
    const want = ropeRef(
      dense,
      [B, H, T, D],
      Array.from({ length: B * T }, (_, i) => pos[i % T]!),
      { theta: 500 },
    );
    assertClose(await rope(x, { data: pos, shape: [1, T] }, { theta: 500 }).toFloat32(), want, {
      atol: 1e-6,
    });
  });

  it("reproduces HF's f32 angle rounding at large positions (4000, 32000)", async () => {
    const shape: Shape4 = [1, 2, 8, 128];
    const x = rng.uniform(size(shape));
    const pos = Int32Array.from([4000, 4001, 4093, 4095, 12345, 31999, 32000, 32767]);
    const hf = ropeRef(x, shape, pos, { theta: 10000, f32Angles: true });
    const exact = ropeRef(x, shape, pos, { theta: 10000, f32Angles: false });
    const got = await rope(Tensor.from(x, shape), pos, { theta: 10000 }).toFloat32();
    // Our angles are HF's f32 angles: cos/sin of them to ~1 f32 ulp.
    assertClose(got, hf, { atol: 1e-6, what: "rope vs f32-emulated HF angles" });
    // ...which differ visibly from exact f64 angles: the check above has teeth.
    expect(compare(hf, exact).maxAbs).toBeGreaterThan(1e-4);
  });

  it("inv_freq is rounded like torch f32 (1 / base ** (arange(0, D, 2) / D))", () => {
    const f = ropeInvFreq(10000, 128);
    expect(f[0]).toBe(1);
    // Independent emulation: f32 at each torch step.
    for (let i = 0; i < 64; i++)
      expect(f[i]).toBe(Math.fround(1 / Math.fround(10000 ** Math.fround(i / 64))));
  });

  it("keeps f16 storage (rotated in f32, rounded once)", async () => {
    const shape: Shape4 = [1, 2, 5, 16];
    const x = Tensor.from(rng.uniform(size(shape), -2, 2), shape, { dtype: "f16" });
    const pos = rng.int(5, 0, 2000);
    const y = rope(x, pos, { theta: 10000 });
    expect(y.dtype).toBe("f16");
    const want = ropeRef(await x.toFloat32(), shape, pos, { theta: 10000 });
    assertClose(await y.toFloat32(), want, { atol: 2e-3, rtol: 1e-3 });
  });

  it("names shapes on bad input", () => {
    const x = Tensor.from(new Float32Array(2 * 3 * 4 * 6), [2, 3, 4, 6]);
    expect(() => rope(x, [0, 1, 2], { theta: 1e4 })).toThrow(
      "rope: positions [3] must be [B, T] or [T] for x [2, 3, 4, 6] (B 2, T 4)",
    );
    expect(() => rope(x, [0, 1, 2, 3], { theta: 1e4, rotaryDim: 5 })).toThrow(
      "rotaryDim 5 must be even and in (0, 6]",
    );
    expect(() => rope(x.reshape([6, 4, 6]), [0], { theta: 1e4 })).toThrow(ShapeError);
    expect(() => rope(x, Tensor.from([0, 1, 2, 3], [4]), { theta: 1e4 })).toThrow(DTypeError);
    expect(() => rope(x, [0, 1, 2.5, 3], { theta: 1e4 })).toThrow("positions[2] = 2.5");
  });

  it("backward is the inverse rotation (finite differences), through a permuted view", async () => {
    const [B, T, H, D] = [2, 3, 2, 6];
    const pos = Int32Array.from([5, 0, 17, 2, 9, 1000]);
    await checkGradients({
      what: "rope",
      inputs: [{ shape: [B, T, H, D], data: rng.uniform(B * T * H * D) }],
      gpu: ([x]) =>
        rope(x!.permute([0, 2, 1, 3]), { data: pos, shape: [B, T] }, { theta: 100, rotaryDim: 4 }),
      reference: ([x]) => {
        // The reference takes contiguous [B, H, T, D]: permute by hand.
        const p = new Float64Array(x!.length);
        for (let b = 0; b < B; b++)
          for (let t = 0; t < T; t++)
            for (let h = 0; h < H; h++)
              for (let d = 0; d < D; d++)
                p[((b * H + h) * T + t) * D + d] = x![((b * T + t) * H + h) * D + d]!;
        return ropeRef(p, [B, H, T, D], pos, { theta: 100, rotaryDim: 4 });
      },
    });
  });
});
