import { getDevice, Tensor } from "@webvlm/tensor";
import { beforeAll, describe, expect, it } from "vitest";
import { FlatParams } from "./flat-params.js";

beforeAll(async () => {
  await getDevice();
});

describe("FlatParams", () => {
  it("lays parameters out as aligned views of one storage, with a twin grad storage", async () => {
    const flat = FlatParams.create([[2, 3], [5], [], [0], [4, 4]]);
    expect(flat.chunks.length).toBe(1);
    expect(flat.slots.map((s) => s.offset)).toEqual([0, 64, 128, 192, 192]);
    expect(flat.numel).toBe(6 + 5 + 1 + 0 + 16);
    const storage = flat.chunks[0]!.data.storage;
    for (const p of flat.params) {
      // The tensor core's reshape copies a zero-element view into a storage of its own: nothing to update there.
      if (p.size > 0) expect(p.storage).toBe(storage);
      expect(p.isContiguous()).toBe(true);
      expect(p.requiresGrad).toBe(true);
      expect(FlatParams.of(p)?.flat).toBe(flat);
    }
    expect(flat.params.map((p) => p.shape)).toEqual([[2, 3], [5], [], [0], [4, 4]]);
    flat.set(1, [1, 2, 3, 4, 5]);
    flat.set(2, [9]);
    expect(Array.from(await flat.params[1]!.toFloat32())).toEqual([1, 2, 3, 4, 5]);
    expect(await flat.params[2]!.item()).toBe(9);
    expect(Array.from(await flat.params[0]!.toFloat32())).toEqual([0, 0, 0, 0, 0, 0]);
    expect(() => flat.set(1, [1])).toThrow(/param 1 \[5\] needs 5 values, got 1/);
    flat.dispose();
  });

  it("splits into chunks no bigger than maxChunkBytes; a larger parameter gets its own", () => {
    const flat = FlatParams.create([[100], [100], [300], [10]], { maxChunkBytes: 1024, align: 1 });
    expect(flat.slots.map((s) => [s.chunk, s.offset])).toEqual([
      [0, 0],
      [0, 100],
      [1, 0],
      [2, 0],
    ]);
    expect(flat.chunks.map((c) => c.length)).toEqual([200, 300, 10]);
    flat.dispose();
  });

  it("copies tensors in, and gathers gradients into the grad storage once", async () => {
    const a = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]).keep();
    const flat = FlatParams.fromTensors([a.transpose(), Tensor.from([7], [1])]);
    expect(Array.from(await flat.params[0]!.toFloat32())).toEqual([1, 4, 2, 5, 3, 6]);
    const p = flat.params[0]!;
    p.grad = Tensor.from([1, 1, 2, 2, 3, 3], [3, 2]).keep();
    flat.gatherGrads();
    const view = p.grad;
    expect(view.storage).toBe(flat.chunks[0]!.grad.storage);
    expect(Array.from(await view.toFloat32())).toEqual([1, 1, 2, 2, 3, 3]);
    flat.gatherGrads();
    expect(p.grad).toBe(view); // already in place: no copy, same view
    expect(flat.params[1]!.grad).toBeNull();
    // A gradient that is a view of another slot of the same grad storage is staged (no copy within one buffer).
    const q = flat.params[1]!;
    q.grad = flat.chunks[0]!.grad.narrow(0, 2, 1).keep(); // element 2 of param 0's gradient: 2
    flat.gatherGrads([1]);
    expect(q.grad.offset).toBe(flat.slots[1]!.offset);
    expect(await q.grad.item()).toBe(2);
    p.grad = Tensor.from([1, 2, 3], [3]).keep();
    expect(() => flat.gatherGrads()).toThrow(/param 0: gradient \[3\] does not match the parameter \[3, 2\]/);
    flat.zeroGrad();
    expect(p.grad).toBeNull();
    flat.dispose();
    a.dispose();
  });
});
