// torch.optim.SGD's single-tensor algorithm (maximize=False) in plain f64 loops.

export interface SGDRefHyper {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
}

export interface SGDRefState {
  param: Float64Array;
  /** null until the first step with momentum, as torch's momentum_buffer. */
  buf: Float64Array | null;
}

/** One SGD step of one parameter, in place. */
export function sgdRefStep(s: SGDRefState, gradIn: ArrayLike<number>, h: SGDRefHyper): void {
  const n = s.param.length;
  // grad = grad.add(param, alpha=weight_decay)
  let grad = Float64Array.from(gradIn);
  if (h.weightDecay !== 0) for (let i = 0; i < n; i++) grad[i] = grad[i]! + h.weightDecay * s.param[i]!;
  if (h.momentum !== 0) {
    if (s.buf === null) {
      // buf = torch.clone(grad).detach()
      s.buf = Float64Array.from(grad);
    } else {
      // buf.mul_(momentum).add_(grad, alpha=1 - dampening)
      for (let i = 0; i < n; i++) s.buf[i] = s.buf[i]! * h.momentum + (1 - h.dampening) * grad[i]!;
    }
    if (h.nesterov) {
      // grad = grad.add(buf, alpha=momentum)
      const next = new Float64Array(n);
      for (let i = 0; i < n; i++) next[i] = grad[i]! + h.momentum * s.buf[i]!;
      grad = next;
    } else {
      grad = Float64Array.from(s.buf);
    }
  }
  // param.add_(grad, alpha=-lr)
  for (let i = 0; i < n; i++) s.param[i] = s.param[i]! - h.lr * grad[i]!;
}
