import { describe, expect, it } from "vitest";
import { constantWithWarmup, warmupCosine, warmupLinear } from "./schedule.js";

/** transformers' tests/optimization/test_optimization.py: lr 10, 10 steps, values to 1e-2. */
const LR = 10;
const run = (f: (s: number) => number) => Array.from({ length: 10 }, (_, s) => LR * f(s));
function expectList(got: number[], want: number[], tol: number): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => {
    expect(Math.abs(g - want[i]!), `step ${i}: ${g} vs ${want[i]}`).toBeLessThanOrEqual(tol);
  });
}

describe("schedules", () => {
  it("match transformers' known values", () => {
    expectList(
      run(constantWithWarmup({ warmupSteps: 4 })),
      [0.0, 2.5, 5.0, 7.5, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0],
      1e-2,
    );
    expectList(
      run(warmupLinear({ warmupSteps: 2, totalSteps: 10 })),
      [0.0, 5.0, 10.0, 8.75, 7.5, 6.25, 5.0, 3.75, 2.5, 1.25],
      1e-2,
    );
    expectList(
      run(warmupCosine({ warmupSteps: 2, totalSteps: 10 })),
      [0.0, 5.0, 10.0, 9.61, 8.53, 6.91, 5.0, 3.08, 1.46, 0.38],
      1e-2,
    );
  });

  it("equal the closed forms exactly", () => {
    const cos = warmupCosine({ warmupSteps: 2, totalSteps: 10 });
    expect(cos(5)).toBe(0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * (3 / 8))));
    expect(cos(10)).toBe(0);
    // Past totalSteps the half-cosine turns up again, as in transformers (num_cycles 0.5, progress > 1).
    expect(cos(12)).toBeCloseTo(0.5 * (1 + Math.cos(Math.PI * (10 / 8))), 15);
    const lin = warmupLinear({ warmupSteps: 2, totalSteps: 10 });
    expect(lin(1)).toBe(0.5);
    expect(lin(10)).toBe(0);
    expect(lin(15)).toBe(0);
    // get_cosine_with_min_lr_schedule_with_warmup(min_lr_rate=0.1): factor·0.9 + 0.1.
    const floor = warmupCosine({ warmupSteps: 2, totalSteps: 10, minLrRatio: 0.1 });
    expect(floor(0)).toBe(0);
    expect(floor(6)).toBeCloseTo(0.55, 15);
    expect(floor(10)).toBeCloseTo(0.1, 15);
    expect(warmupLinear({ warmupSteps: 0, totalSteps: 4, minLrRatio: 0.2 })(4)).toBeCloseTo(0.2, 15);
    // warmupSteps 0: no warmup, full value at step 0 (max(1, 0) guards the division).
    expect(warmupCosine({ warmupSteps: 0, totalSteps: 4 })(0)).toBe(1);
    expect(constantWithWarmup({ warmupSteps: 0 })(0)).toBe(1);
  });

  it("reject bad arguments", () => {
    expect(() => warmupCosine({ warmupSteps: -1, totalSteps: 10 })).toThrow(
      /warmupSteps must be an integer >= 0/,
    );
    expect(() => warmupCosine({ warmupSteps: 1, totalSteps: 10, minLrRatio: 2 })).toThrow(
      /minLrRatio must be in \[0, 1\]/,
    );
    expect(() => warmupLinear({ warmupSteps: 1, totalSteps: 1.5 })).toThrow(/totalSteps/);
    expect(() => constantWithWarmup({ warmupSteps: 3 })(-1)).toThrow(/step must be an integer >= 0/);
  });
});
