// torch.optim.AdamW's single-tensor algorithm (amsgrad=False, maximize=False) in plain f64 loops.

export interface AdamWRefHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface AdamWRefState {
  param: Float64Array;
  expAvg: Float64Array;
  expAvgSq: Float64Array;
  step: number;
}

export function adamwRefState(param: ArrayLike<number>): AdamWRefState {
  return {
    param: Float64Array.from(param),
    expAvg: new Float64Array(param.length),
    expAvgSq: new Float64Array(param.length),
    step: 0,
  };
}

/** One AdamW step of one parameter, in place. */
export function adamwRefStep(s: AdamWRefState, grad: ArrayLike<number>, h: AdamWRefHyper): void {
  // step_t += 1
  s.step += 1;
  const bc1 = 1 - h.beta1 ** s.step;
  const bc2 = 1 - h.beta2 ** s.step;
  const stepSize = h.lr / bc1;
  const bc2Sqrt = Math.sqrt(bc2);
  for (let i = 0; i < s.param.length; i++) {
    const g = grad[i]!;
    // param.mul_(1 - lr * weight_decay): decoupled decay, before the moments
    s.param[i] = s.param[i]! * (1 - h.lr * h.weightDecay);
    // exp_avg.lerp_(grad, 1 - beta1)
    s.expAvg[i] = s.expAvg[i]! + (1 - h.beta1) * (g - s.expAvg[i]!);
    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    s.expAvgSq[i] = s.expAvgSq[i]! * h.beta2 + (1 - h.beta2) * g * g;
    // denom = sqrt(exp_avg_sq) / sqrt(bias_correction2) + eps: eps after the bias correction
    const denom = Math.sqrt(s.expAvgSq[i]!) / bc2Sqrt + h.eps;
    // param.addcdiv_(exp_avg, denom, value=-step_size)
    s.param[i] = s.param[i]! - stepSize * (s.expAvg[i]! / denom);
  }
}
