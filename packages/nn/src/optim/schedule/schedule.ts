// Learning-rate multipliers as pure functions of the step, matching transformers' LambdaLR
// schedules: at training step t (0-based) the learning rate is base_lr × schedule(t).

export type LrSchedule = (step: number) => number;

export interface WarmupOptions {
  /** Steps of linear warmup from 0 to 1 (transformers' num_warmup_steps). */
  warmupSteps: number;
}

export interface WarmupDecayOptions extends WarmupOptions {
  /** Total training steps (num_training_steps): the multiplier reaches its floor here. */
  totalSteps: number;
  /** Floor of the decay as a fraction of the peak (transformers' min_lr_rate; default 0). */
  minLrRatio?: number;
}

export interface WarmupCosineOptions extends WarmupDecayOptions {
  /** Cosine waves over the decay (default 0.5: one half-cosine from 1 down to the floor). */
  numCycles?: number;
}

function checkInt(fn: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`${fn}: ${name} must be an integer >= 0, got ${v}`);
}

function checkRatio(fn: string, r: number): void {
  if (!(r >= 0 && r <= 1)) throw new RangeError(`${fn}: minLrRatio must be in [0, 1], got ${r}`);
}

function checkStep(fn: string, step: number): void {
  if (!Number.isInteger(step) || step < 0)
    throw new RangeError(`${fn}: step must be an integer >= 0, got ${step}`);
}

/** The warmup ramp shared by every schedule: step / max(1, warmupSteps). */
function warmup(step: number, warmupSteps: number): number {
  return step / Math.max(1, warmupSteps);
}

/**
 * get_cosine_schedule_with_warmup (minLrRatio 0) or get_cosine_with_min_lr_schedule_with_warmup:
 * linear warmup, then 0.5·(1 + cos(π·numCycles·2·progress)), rescaled to [minLrRatio, 1], never below 0.
 */
export function warmupCosine(options: WarmupCosineOptions): LrSchedule {
  const { warmupSteps, totalSteps, minLrRatio = 0, numCycles = 0.5 } = options;
  checkInt("warmupCosine", "warmupSteps", warmupSteps);
  checkInt("warmupCosine", "totalSteps", totalSteps);
  checkRatio("warmupCosine", minLrRatio);
  if (!Number.isFinite(numCycles))
    throw new RangeError(`warmupCosine: numCycles must be finite, got ${numCycles}`);
  return (step) => {
    checkStep("warmupCosine", step);
    if (step < warmupSteps) return warmup(step, warmupSteps);
    const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
    const factor = 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress));
    return Math.max(0, factor * (1 - minLrRatio) + minLrRatio);
  };
}

/**
 * get_linear_schedule_with_warmup: linear warmup, then a straight line from 1 at warmupSteps to 0
 * at totalSteps, max(0, (total − step) / max(1, total − warmup)). With minLrRatio r the line ends
 * at r instead (r = 0 is transformers' formula exactly).
 */
export function warmupLinear(options: WarmupDecayOptions): LrSchedule {
  const { warmupSteps, totalSteps, minLrRatio = 0 } = options;
  checkInt("warmupLinear", "warmupSteps", warmupSteps);
  checkInt("warmupLinear", "totalSteps", totalSteps);
  checkRatio("warmupLinear", minLrRatio);
  return (step) => {
    checkStep("warmupLinear", step);
    if (step < warmupSteps) return warmup(step, warmupSteps);
    const factor = Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
    return factor * (1 - minLrRatio) + minLrRatio;
  };
}

/** get_constant_schedule_with_warmup: linear warmup, then 1. */
export function constantWithWarmup(options: WarmupOptions): LrSchedule {
  const { warmupSteps } = options;
  checkInt("constantWithWarmup", "warmupSteps", warmupSteps);
  return (step) => {
    checkStep("constantWithWarmup", step);
    return step < warmupSteps ? warmup(step, warmupSteps) : 1;
  };
}
