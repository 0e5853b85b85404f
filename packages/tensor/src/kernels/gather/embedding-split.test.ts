import { beforeAll, describe, expect, it } from "vitest";
import { type Device, requestDevice, setCurrentDevice } from "../../device.js";
import { f16ArrayToF32, f32ArrayToF16 } from "../../dtype.js";
import { Tensor } from "../../index.js";
import { assertClose, Rng } from "../../testing.js";
import { embedding } from "./gather.js";
import { embeddingRef, scatterAddRef } from "./gather.ref.js";

// Storage bindings of at most 1 KiB: the [53, 13] tables below (2756 / 1378 bytes) are read and
// their gradients written in row chunks.
const LIMIT = 1024;
let small: Device;
beforeAll(async () => {
  small = await requestDevice({ maxBindingBytes: LIMIT });
  setCurrentDevice(small);
});

function countDispatches<T>(op: string, fn: () => T): [T, number] {
  const orig = small.dispatch.bind(small);
  let n = 0;
  small.dispatch = (spec) => {
    if (spec.op === op) n++;
    orig(spec);
  };
  try {
    return [fn(), n];
  } finally {
    small.dispatch = orig;
  }
}

describe("embedding with a table over the binding limit", () => {
  const [V, D] = [53, 13];
  // Every chunk is hit, with duplicates (0, 52, 27 twice) and neighbours of chunk edges.
  const ids = [0, 52, 27, 13, 14, 27, 0, 40, 41, 52, 1, 26, 39, 0, 51];
  for (const dtype of ["f32", "f16"] as const) {
    for (const onDevice of [false, true]) {
      it(`${dtype}, ${onDevice ? "device" : "host"} ids: forward and dWeight match the references`, async () => {
        const rng = new Rng(dtype === "f32" ? 1 : 2);
        let w = rng.normal(V * D);
        if (dtype === "f16") w = f16ArrayToF32(f32ArrayToF16(w));
        const weight = Tensor.from(w, [V, D], { dtype, requiresGrad: true });
        expect(V * D * (dtype === "f16" ? 2 : 4)).toBeGreaterThan(LIMIT);
        const idsIn = onDevice
          ? Tensor.from(ids, [3, 5], { dtype: "i32" })
          : { data: ids, shape: [3, 5] as const };
        const [y, n] = countDispatches("embedding", () => embedding(idsIn, weight));
        expect(n).toBeGreaterThan(1);
        expect(y.shape).toEqual([3, 5, D]);
        assertClose(await y.toFloat32(), embeddingRef(ids, w, D), { atol: 0, what: "rows" });
        let g = rng.uniform(ids.length * D);
        if (dtype === "f16") g = f16ArrayToF32(f32ArrayToF16(g));
        const [, nb] = countDispatches("embedding_backward", () =>
          y.backward({ gradient: Tensor.from(g, [3, 5, D], { dtype }) }),
        );
        expect(nb).toBeGreaterThan(1);
        const tol = dtype === "f16" ? 5e-3 : 1e-6;
        assertClose(await weight.grad!.toFloat32(), scatterAddRef(g, [V, D], 0, ids), {
          atol: tol,
          rtol: tol,
          what: "dWeight",
        });
      });
    }
  }
});
