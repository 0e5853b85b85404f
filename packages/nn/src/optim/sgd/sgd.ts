import { OptimizerError } from "../errors.js";
import {
  type HyperRow,
  Optimizer,
  type OptimizerOptionsBase,
  type ParamGroup,
  type ParamsInput,
} from "../optimizer.js";
import template from "./sgd.wgsl";

export interface SGDOptions {
  /** Learning rate (default 1e-3, as torch). */
  lr: number;
  /** Momentum factor (default 0: no momentum buffer). */
  momentum: number;
  /** Dampening for momentum (default 0). */
  dampening: number;
  /** Nesterov momentum; needs momentum > 0 and dampening 0 (default false). */
  nesterov: boolean;
  /** L2 penalty added to the gradient: g ← g + weightDecay·p (default 0). */
  weightDecay: number;
}

export const SGD_DEFAULTS: Readonly<SGDOptions> = Object.freeze({
  lr: 1e-3,
  momentum: 0,
  dampening: 0,
  nesterov: false,
  weightDecay: 0,
});

const MOMENTUM_STEP = `
    // buf = clone(grad) on the first step, else buf.mul_(momentum).add_(grad, alpha=1 - dampening)
    if (h.momentum != 0.0) {
      var b: f32;
      if (h.first_step == 1u) { b = g; } else { b = momentum_buffer[dims.s_off + e] * h.momentum + h.one_minus_dampening * g; }
      momentum_buffer[dims.s_off + e] = b;
      // nesterov: grad = grad.add(buf, alpha=momentum); else grad = buf
      if (h.nesterov == 1u) { g = g + h.momentum * b; } else { g = b; }
    }`;

function shader(withMomentum: boolean): string {
  const b = withMomentum ? 3 : 2;
  return template
    .replace(
      "{{BUFFER_BINDING}}",
      withMomentum ? "@group(0) @binding(2) var<storage, read_write> momentum_buffer: array<f32>;" : "",
    )
    .replace("{{B}}", String(b))
    .replace("{{B1}}", String(b + 1))
    .replace("{{B2}}", String(b + 2))
    .replace("{{MOMENTUM_STEP}}", withMomentum ? MOMENTUM_STEP : "");
}

/**
 * torch.optim.SGD (maximize=False): per parameter with a gradient,
 *   g ← g + wd·p;  with momentum: buf ← g on the first step, else momentum·buf + (1 − dampening)·g,
 *   g ← g + momentum·buf (nesterov) or buf;  p ← p − lr·g.
 * The momentum buffer exists when some group has momentum ≠ 0 at construction.
 */
export class SGD extends Optimizer<SGDOptions> {
  protected readonly kind = "SGD";
  protected readonly stateNames: readonly string[];
  protected readonly shader: string;

  constructor(params: ParamsInput<SGDOptions>, options: Partial<SGDOptions> & OptimizerOptionsBase = {}) {
    const { maxBindingBytes, ...rest } = options;
    const defaults = {
      ...SGD_DEFAULTS,
      ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)),
    } as SGDOptions;
    super(params, defaults, { maxBindingBytes }, "SGD");
    const withMomentum = this.paramGroups.some((g) => g.momentum !== 0);
    this.stateNames = withMomentum ? ["momentum_buffer"] : [];
    this.shader = shader(withMomentum);
    this.initState();
  }

  protected fillHyper({ f32, u32, at }: HyperRow, g: ParamGroup<SGDOptions>, step: number): void {
    if (g.momentum !== 0 && this.stateNames.length === 0) {
      throw new OptimizerError(
        "SGD: momentum was set after construction, when every group had momentum 0 and no buffer was made",
      );
    }
    f32[at] = -g.lr;
    f32[at + 1] = g.weightDecay;
    f32[at + 2] = g.momentum;
    f32[at + 3] = 1 - g.dampening;
    u32[at + 4] = g.nesterov ? 1 : 0;
    u32[at + 5] = step === 1 ? 1 : 0;
  }

  protected validateGroup(g: ParamGroup<SGDOptions>, i: number): void {
    const bad = (what: string) => {
      throw new OptimizerError(`SGD: group ${i}: ${what}`);
    };
    if (!(Number.isFinite(g.lr) && g.lr >= 0)) bad(`lr must be a finite number >= 0, got ${g.lr}`);
    if (!(Number.isFinite(g.momentum) && g.momentum >= 0)) bad(`momentum must be >= 0, got ${g.momentum}`);
    if (!Number.isFinite(g.dampening)) bad(`dampening must be a number, got ${g.dampening}`);
    if (!(Number.isFinite(g.weightDecay) && g.weightDecay >= 0))
      bad(`weightDecay must be >= 0, got ${g.weightDecay}`);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0))
      bad("nesterov momentum requires a momentum and zero dampening");
  }
}
