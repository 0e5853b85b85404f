import { beforeAll, describe, expect, it } from "vitest";
import { DTypeError, getDevice, ShapeError, Tensor } from "../../index.js";
import { assertClose, checkGradients, Rng } from "../../testing.js";
import { stridedRead } from "../gather/gather.ref.js";
import { concat } from "./concat.js";
import { concatRef } from "./concat.ref.js";

beforeAll(async () => {
  await getDevice();
});

const rng = new Rng(31);
const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);

describe("concat", () => {
  const cases: [number[][], number][] = [
    [
      [
        [3, 5],
        [3, 2],
      ],
      1,
    ],
    [
      [
        [3, 5],
        [1, 5],
        [4, 5],
      ],
      0,
    ],
    [
      [
        [2, 3, 7],
        [2, 1, 7],
        [2, 0, 7],
        [2, 5, 7],
        [2, 2, 7],
        [2, 3, 7],
      ],
      1,
    ], // 6 inputs: two dispatches
    [
      [
        [2, 3, 1],
        [2, 3, 4],
      ],
      -1,
    ],
    [[[1], [1], [1], [1], [1], [1], [1], [1], [1]], 0],
    [
      [
        [0, 3],
        [0, 3],
      ],
      0,
    ],
  ];
  for (const [shapes, dim] of cases) {
    it(`joins ${shapes.map((s) => `[${s}]`).join(" + ")} along ${dim}`, async () => {
      const data = shapes.map((s) => rng.uniform(size(s)));
      const want = concatRef(
        data.map((d, k) => ({ data: d, shape: shapes[k]! })),
        dim < 0 ? dim + shapes[0]!.length : dim,
      );
      const y = concat(
        data.map((d, k) => Tensor.from(d, shapes[k]!)),
        dim,
      );
      expect(y.shape).toEqual(want.shape);
      assertClose(await y.toFloat32(), want.data, { atol: 0 });
    });
  }

  it("reads transposed/narrowed views and f16/i32 storage", async () => {
    const a = rng.uniform(4 * 6);
    const b = rng.uniform(3 * 5);
    const av = Tensor.from(a, [6, 4]).transpose(); // [4, 6]
    const bv = Tensor.from(b, [5, 3]).transpose().narrow(1, 1, 3).narrow(0, 1, 2); // [2, 3] view
    const cv = Tensor.from(rng.uniform(4 * 2), [4, 2]);
    const aD = stridedRead(a, [4, 6], [1, 4], 0);
    const cD = await cv.toFloat32();
    const want = concatRef(
      [
        { data: aD, shape: [4, 6] },
        { data: cD, shape: [4, 2] },
      ],
      1,
    );
    assertClose(await concat([av, cv], 1).toFloat32(), want.data, { atol: 0 });
    const bD = stridedRead(b, bv.shape, bv.strides, bv.offset);
    const want2 = concatRef(
      [
        { data: bD, shape: [2, 3] },
        { data: bD, shape: [2, 3] },
      ],
      0,
    );
    assertClose(await concat([bv, bv], 0).toFloat32(), want2.data, { atol: 0 });
    const h = Tensor.from(a, [4, 6], { dtype: "f16" });
    const hD = await h.toFloat32();
    const want3 = concatRef(
      [
        { data: hD, shape: [4, 6] },
        { data: hD, shape: [4, 6] },
      ],
      0,
    );
    const y16 = concat([h, h], 0);
    expect(y16.dtype).toBe("f16");
    assertClose(await y16.toFloat32(), want3.data, { atol: 0 });
    const ints = Tensor.from(Int32Array.from([1, 2, 3]), [3]);
    expect(Array.from(await concat([ints, ints.narrow(0, 1, 2)], 0).data())).toEqual([1, 2, 3, 2, 3]);
  });

  it("names the mismatching input", () => {
    const a = Tensor.from(new Float32Array(6), [2, 3]);
    expect(() => concat([a, Tensor.from(new Float32Array(8), [2, 4])], 0)).toThrow(
      "concat: tensor 1 [2, 4] does not match tensor 0 outside dim 0 (shapes [2, 3], [2, 4])",
    );
    expect(() => concat([a, Tensor.from(new Float32Array(6), [2, 3], { dtype: "f16" })], 0)).toThrow(
      DTypeError,
    );
    expect(() => concat([], 0)).toThrow(ShapeError);
    expect(() => concat([a], 2)).toThrow("axis 2 is out of range");
  });

  it("gradient is the narrow of g for each input", async () => {
    const shapes = [
      [2, 3, 2],
      [2, 1, 2],
      [2, 4, 2],
      [2, 2, 2],
      [2, 1, 2],
    ];
    await checkGradients({
      what: "concat",
      inputs: shapes.map((s) => ({ shape: s, data: rng.uniform(size(s)) })),
      gpu: (ts) => concat(ts, 1),
      reference: (xs) =>
        concatRef(
          xs.map((d, k) => ({ data: d, shape: shapes[k]! })),
          1,
        ).data,
    });
  });
});
