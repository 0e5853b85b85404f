import { OptimizerError } from "../errors.js";
import {
  type HyperRow,
  Optimizer,
  type OptimizerOptionsBase,
  type ParamGroup,
  type ParamsInput,
} from "../optimizer.js";
import code from "./adamw.wgsl";

export interface AdamWOptions {
  /** Learning rate (default 1e-3). */
  lr: number;
  /** Decay rates of the first and second moment averages (default [0.9, 0.999]). */
  betas: readonly [number, number];
  /** Added to the bias-corrected sqrt of the second moment (default 1e-8). */
  eps: number;
  /** Decoupled weight decay: p ← p·(1 − lr·weightDecay) before the Adam step (default 1e-2, as torch). */
  weightDecay: number;
}

export const ADAMW_DEFAULTS: Readonly<AdamWOptions> = Object.freeze({
  lr: 1e-3,
  betas: [0.9, 0.999] as const,
  eps: 1e-8,
  weightDecay: 1e-2,
});

/**
 * torch.optim.AdamW (amsgrad=False, maximize=False): per parameter with a gradient,
 *   step += 1;  p ← p·(1 − lr·wd);  m ← lerp(m, g, 1 − β1);  v ← β2·v + (1 − β2)·g²;
 *   p ← p − lr/(1 − β1^step) · m / (sqrt(v)/sqrt(1 − β2^step) + eps).
 * Every chunk of a FlatParams is updated by one dispatch, across parameter groups; a parameter
 * that is a separate tensor costs one dispatch of the same kernel.
 */
export class AdamW extends Optimizer<AdamWOptions> {
  protected readonly kind = "AdamW";
  protected readonly stateNames = ["exp_avg", "exp_avg_sq"] as const;
  protected readonly shader = code;

  constructor(params: ParamsInput<AdamWOptions>, options: Partial<AdamWOptions> & OptimizerOptionsBase = {}) {
    const { maxBindingBytes, ...rest } = options;
    super(params, { ...ADAMW_DEFAULTS, ...stripUndef(rest) }, { maxBindingBytes }, "AdamW");
    this.initState();
  }

  protected fillHyper({ f32, at }: HyperRow, g: ParamGroup<AdamWOptions>, step: number): void {
    const [beta1, beta2] = g.betas;
    // Scalars in f64 as torch's single-tensor path computes them in Python, then rounded once to f32.
    const bc1 = 1 - beta1 ** step;
    const bc2 = 1 - beta2 ** step;
    f32[at] = 1 - g.lr * g.weightDecay;
    f32[at + 1] = 1 - beta1;
    f32[at + 2] = beta2;
    f32[at + 3] = 1 - beta2;
    f32[at + 4] = -(g.lr / bc1);
    f32[at + 5] = Math.sqrt(bc2);
    f32[at + 6] = g.eps;
  }

  protected validateGroup(g: ParamGroup<AdamWOptions>, i: number): void {
    const bad = (what: string) => {
      throw new OptimizerError(`AdamW: group ${i}: ${what}`);
    };
    if (!(Number.isFinite(g.lr) && g.lr >= 0)) bad(`lr must be a finite number >= 0, got ${g.lr}`);
    if (!(Number.isFinite(g.eps) && g.eps >= 0)) bad(`eps must be >= 0, got ${g.eps}`);
    if (!(Number.isFinite(g.weightDecay) && g.weightDecay >= 0))
      bad(`weightDecay must be >= 0, got ${g.weightDecay}`);
    if (!Array.isArray(g.betas) || g.betas.length !== 2)
      bad(`betas must be [beta1, beta2], got ${JSON.stringify(g.betas)}`);
    g.betas.forEach((b, k) => {
      if (!(b >= 0 && b < 1)) bad(`betas[${k}] must be in [0, 1), got ${b}`);
    });
  }
}

function stripUndef<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
