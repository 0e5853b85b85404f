import { describe, expect, it } from "vitest";
import { planTiles, TILE_ELEMENTS } from "./tiles.js";

function rows(t: Uint32Array): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < t.length; i += 4) out.push([t[i]!, t[i + 1]!, t[i + 2]!]);
  return out;
}

describe("planTiles", () => {
  it("cuts segments at tile and window edges, skips gaps and empty segments", () => {
    const plan = planTiles(
      [
        { id: 7, start: 1000, length: 5 },
        { id: 3, start: 10, length: 300 },
        { id: 4, start: 400, length: 0 },
      ],
      256,
      5,
    );
    // Window [10, 266): segment 3's first 256; [266, 522): its last 44; the gap to 1000 is jumped.
    expect(plan.windows).toEqual([
      { start: 10, length: 256, tileBase: 5, tileCount: 1 },
      { start: 266, length: 256, tileBase: 6, tileCount: 1 },
      { start: 1000, length: 5, tileBase: 7, tileCount: 1 },
    ]);
    expect(rows(plan.tiles)).toEqual([
      [3, 0, 256],
      [3, 0, 44],
      [7, 0, 5],
    ]);
  });

  it("splits a long segment into tiles of TILE_ELEMENTS", () => {
    const plan = planTiles([{ id: 0, start: 0, length: 2 * TILE_ELEMENTS + 1 }], 1 << 20);
    expect(rows(plan.tiles)).toEqual([
      [0, 0, TILE_ELEMENTS],
      [0, TILE_ELEMENTS, TILE_ELEMENTS],
      [0, 2 * TILE_ELEMENTS, 1],
    ]);
    expect(planTiles([], 64).windows).toEqual([]);
  });
});
