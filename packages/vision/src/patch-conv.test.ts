import { getDevice, Tensor } from "@webvlm/tensor";
import { assertClose, checkGradients, Rng } from "@webvlm/tensor/testing";
import { beforeAll, describe, it } from "vitest";
import { PatchConv2d } from "./vision-transformer.js";

/** Conv2d, kernel = stride = p, no padding, in f64 loops: out[n, r·cols + c, o]. */
function convRef(
  x: Float64Array,
  w: Float64Array,
  b: Float64Array,
  [N, C, H, W]: number[],
  O: number,
  p: number,
): Float64Array {
  const rows = Math.floor(H! / p);
  const cols = Math.floor(W! / p);
  const out = new Float64Array(N! * rows * cols * O);
  for (let n = 0; n < N!; n++)
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++)
        for (let o = 0; o < O; o++) {
          // bias plus the kernel's dot product with the patch's pixels
          let s = b[o]!;
          for (let ch = 0; ch < C!; ch++)
            for (let y = 0; y < p; y++)
              for (let xx = 0; xx < p; xx++)
                s +=
                  w[((o * C! + ch) * p + y) * p + xx]! *
                  x[((n * C! + ch) * H! + r * p + y) * W! + c * p + xx]!;
          out[((n * rows + r) * cols + c) * O + o] = s;
        }
  return out;
}

beforeAll(async () => {
  await getDevice();
});

describe("PatchConv2d (im2col + matmul)", () => {
  const [N, C, H, W, O, p] = [2, 2, 5, 7, 3, 2]; // 5×7 crops to 4×6: trailing row/column dropped
  const rng = new Rng(3);
  const x = rng.normal(N * C * H * W);
  const w = rng.normal(O * C * p * p);
  const b = rng.normal(O);

  it("matches a direct convolution", async () => {
    const conv = new PatchConv2d(C, O, p);
    conv.weight.set(Tensor.from(w, [O, C, p, p]));
    conv.bias.set(Tensor.from(b, [O]));
    const y = conv.forward(Tensor.from(x, [N, C, H, W]));
    const want = convRef(
      Float64Array.from(x),
      Float64Array.from(w),
      Float64Array.from(b),
      [N, C, H, W],
      O,
      p,
    );
    assertClose(await y.toFloat32(), want, { atol: 1e-5, what: "patch conv" });
    conv.dispose();
  });

  it("gradients w.r.t. pixels, kernel and bias match finite differences", async () => {
    const conv = new PatchConv2d(C, O, p);
    await checkGradients({
      inputs: [
        { shape: [N, C, H, W], data: x },
        { shape: [O, C, p, p], data: w },
        { shape: [O], data: b },
      ],
      gpu: ([xt, wt, bt]) => {
        conv.weight.set(wt!);
        conv.bias.set(bt!);
        return conv.forward(xt!);
      },
      reference: ([xr, wr, br]) => convRef(xr!, wr!, br!, [N, C, H, W], O, p),
      what: "patch conv",
    });
  });
});
