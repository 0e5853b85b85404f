import { beforeAll, describe, expect, it } from "vitest";
import { getDevice, ShapeError, Tensor } from "../../index.js";
import { assertClose, checkGradients, Rng } from "../../testing.js";
import { stridedRead } from "../gather/gather.ref.js";
import { pad } from "./pad.js";
import { padRef } from "./pad.ref.js";

beforeAll(async () => {
  await getDevice();
});

const rng = new Rng(41);
const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);

describe("pad", () => {
  const cases: [number[], [number, number][], number][] = [
    [
      [3, 5],
      [
        [1, 2],
        [0, 3],
      ],
      0,
    ],
    [[7], [[4, 0]], -1.5],
    [
      [2, 1, 3],
      [
        [0, 0],
        [2, 2],
        [1, 1],
      ],
      7,
    ],
    [
      [4, 6],
      [
        [-1, 0],
        [2, -3],
      ],
      0,
    ], // crop + pad
    [
      [0, 3],
      [
        [1, 1],
        [0, 0],
      ],
      2,
    ],
    [
      [3, 4],
      [
        [-2, -1],
        [0, 0],
      ],
      0,
    ], // crop to empty
  ];
  for (const [shape, widths, value] of cases) {
    it(`pads [${shape}] by ${JSON.stringify(widths)} with ${value}`, async () => {
      const x = rng.uniform(size(shape));
      const want = padRef(x, shape, widths, value);
      const y = pad(Tensor.from(x, shape), widths, value);
      expect(y.shape).toEqual(want.shape);
      assertClose(await y.toFloat32(), want.data, { atol: 0 });
    });
  }

  it("pads only trailing dims when fewer pairs are given; reads views; f16 and i32", async () => {
    const x = rng.uniform(5 * 4);
    const v = Tensor.from(x, [5, 4]).transpose(); // [4, 5]
    const dense = stridedRead(x, [4, 5], [1, 4], 0);
    assertClose(
      await pad(v, [[1, 1]]).toFloat32(),
      padRef(
        dense,
        [4, 5],
        [
          [0, 0],
          [1, 1],
        ],
        0,
      ).data,
      { atol: 0 },
    );
    const h = Tensor.from(x, [5, 4], { dtype: "f16" });
    const got = pad(
      h,
      [
        [0, 1],
        [2, 0],
      ],
      0.1,
    );
    expect(got.dtype).toBe("f16");
    const h32 = await h.toFloat32();
    const want = padRef(
      h32,
      [5, 4],
      [
        [0, 1],
        [2, 0],
      ],
      Math.fround(0.0999755859375),
    ).data;
    assertClose(await got.toFloat32(), want, { atol: 0 });
    const ints = Tensor.from(Int32Array.from([5, -6]), [2]);
    expect(Array.from(await pad(ints, [[1, 2]], -2147483648).data())).toEqual([
      -2147483648, 5, -6, -2147483648, -2147483648,
    ]);
  });

  it("rejects bad widths with the shapes", () => {
    const x = Tensor.from(new Float32Array(6), [2, 3]);
    expect(() =>
      pad(x, [
        [0, 0],
        [0, 0],
        [1, 1],
      ]),
    ).toThrow("pad: 3 [before, after] pairs for x [2, 3] of rank 2");
    expect(pad(x, [[-2, -1]]).shape).toEqual([2, 0]);
    expect(() => pad(x, [[-2, -2]])).toThrow(ShapeError);
    expect(() => pad(x, [[-2, -2]])).toThrow("pad: widths [[-2, -2]] crop x [2, 3] below zero size");
  });

  it("gradient is the crop of g (and zero where x was cropped away)", async () => {
    const shape = [3, 4, 2];
    const widths: [number, number][] = [
      [1, 0],
      [-1, 2],
      [0, -1],
    ];
    await checkGradients({
      what: "pad",
      inputs: [{ shape, data: rng.uniform(size(shape)) }],
      gpu: ([x]) => pad(x!, widths, 0.5),
      reference: ([x]) => padRef(x!, shape, widths, 0.5).data,
    });
  });
});
