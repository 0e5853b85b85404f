import { DisposedError, fmtShape, ShapeError } from "./errors.js";
import { tidy, trackNode } from "./scope.js";
import type { Tensor } from "./tensor.js";

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording ops for autograd (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Whether a gradient must flow into `t`: a leaf that asks for one, or the output of a recorded op. */
export function needsGrad(t: Tensor): boolean {
  return t.requiresGrad || t.gradFn !== null;
}

export type BackwardFn = (
  gradOutput: Tensor,
  saved: readonly Tensor[],
) => readonly (Tensor | null | undefined)[];

/** One recorded op: how to turn the gradient of its output into gradients of its inputs. */
export class GradNode {
  /** Producer nodes of the inputs (null for leaves and inputs without grad). */
  readonly parents: (GradNode | null)[];
  private saved: Tensor[] | null;
  private inputs: (Tensor | null)[] | null;

  constructor(
    readonly op: string,
    inputs: readonly Tensor[],
    saved: readonly Tensor[],
    private readonly backwardFn: BackwardFn,
    readonly outputShape: readonly number[],
  ) {
    // Inputs that need no gradient are not kept; leaves are kept by handle to receive .grad.
    this.inputs = inputs.map((t) => (needsGrad(t) ? t : null));
    this.parents = inputs.map((t) => t.gradFn);
    this.saved = saved.map((t) => t.retainHandle());
    trackNode(this);
  }

  get inputTensors(): readonly (Tensor | null)[] {
    if (!this.inputs) throw new DisposedError(`backward through '${this.op}' after its graph was released`);
    return this.inputs;
  }

  runBackward(gradOutput: Tensor): readonly (Tensor | null | undefined)[] {
    if (!this.saved)
      throw new DisposedError(
        `backward through '${this.op}' after its graph was released (call backward once, or pass retainGraph)`,
      );
    return this.backwardFn(gradOutput, this.saved);
  }

  /** Drops the tensors saved for backward. */
  release(): void {
    if (this.saved) for (const t of this.saved) t.dispose();
    this.saved = null;
    this.inputs = null;
  }
}

/**
 * Records `output = op(inputs)` on the tape when grad mode is on and some input needs a gradient.
 * `saved` are the tensors the backward reads; they stay alive until the graph is released.
 */
export function record(
  op: string,
  output: Tensor,
  inputs: readonly Tensor[],
  backward: BackwardFn,
  saved: readonly Tensor[] = [],
): Tensor {
  if (!gradEnabled) return output;
  if (!inputs.some(needsGrad)) return output;
  output.gradFn = new GradNode(op, inputs, saved, backward, output.shape);
  return output;
}

// Filled in by ops/index: add for accumulation, ones-like for the seed gradient.
export interface GradHelpers {
  add: (a: Tensor, b: Tensor) => Tensor;
  onesLike: (t: Tensor) => Tensor;
}
let helpers: GradHelpers | null = null;
export function registerGradHelpers(h: GradHelpers): void {
  helpers = h;
}

export interface BackwardOptions {
  /** Gradient of the output; default 1 for a one-element output. */
  gradient?: Tensor;
  /** Keep the saved tensors so backward can run again through this graph. */
  retainGraph?: boolean;
}

/**
 * Reverse-mode sweep from `output`: gradients accumulate into `.grad` of every leaf tensor with
 * `requiresGrad`. Intermediate gradients are freed as soon as they are consumed.
 */
export function backward(output: Tensor, options: BackwardOptions = {}): void {
  if (!helpers) throw new Error("internal: autograd helpers not registered");
  const h = helpers;
  if (!output.gradFn) {
    if (output.requiresGrad) {
      accumulate(output, options.gradient ? options.gradient.retainHandle() : h.onesLike(output), h);
      return;
    }
    throw new ShapeError(`backward: ${output} does not require grad (no op on the tape produced it)`);
  }
  if (!options.gradient && output.size !== 1) {
    throw new ShapeError(`backward: output ${fmtShape(output.shape)} is not a scalar; pass { gradient }`);
  }
  const root = output.gradFn;
  // Topological order by DFS post-order over parents.
  const order: GradNode[] = [];
  const seen = new Set<GradNode>();
  const stack: [GradNode, boolean][] = [[root, false]];
  while (stack.length) {
    const [n, done] = stack.pop()!;
    if (done) {
      order.push(n);
      continue;
    }
    if (seen.has(n)) continue;
    seen.add(n);
    stack.push([n, true]);
    for (const p of n.parents) if (p && !seen.has(p)) stack.push([p, false]);
  }
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    const grads = new Map<GradNode, Tensor>();
    grads.set(root, options.gradient ?? h.onesLike(output));
    for (let i = order.length - 1; i >= 0; i--) {
      const node = order[i]!;
      const g = grads.get(node);
      if (!g) continue;
      grads.delete(node);
      // A backward's own temporaries (e.g. silu's derivative) die here; only the gradients it returns live on.
      const inputGrads = tidy(() => [...node.runBackward(g)]);
      const inputs = node.inputTensors;
      const handedOut = new Set<Tensor>();
      for (let k = 0; k < inputs.length; k++) {
        const input = inputs[k];
        let gi = inputGrads[k];
        if (!gi) continue;
        if (!input) {
          if (gi !== g && !handedOut.has(gi)) gi.dispose();
          continue;
        }
        if (gi.shape.length !== input.shape.length || gi.shape.some((d, j) => d !== input.shape[j])) {
          throw new ShapeError(
            `backward of '${node.op}': gradient ${fmtShape(gi.shape)} for input ${k} of shape ${fmtShape(input.shape)}`,
          );
        }
        // A backward may pass its incoming gradient (or one tensor twice) straight through: own a handle each.
        if (gi === g || handedOut.has(gi)) gi = gi.retainHandle();
        handedOut.add(gi);
        const parent = node.parents[k];
        if (parent) {
          const acc = grads.get(parent);
          if (acc) {
            grads.set(parent, h.add(acc, gi));
            acc.dispose();
            gi.dispose();
          } else {
            grads.set(parent, gi);
          }
        } else if (input.requiresGrad) {
          accumulate(input, gi, h);
        } else {
          gi.dispose();
        }
      }
      if (g !== options.gradient) g.dispose();
      if (!options.retainGraph) node.release();
    }
  } finally {
    gradEnabled = prev;
  }
}

function accumulate(leaf: Tensor, g: Tensor, h: GradHelpers): void {
  let grad = g;
  if (leaf.grad) {
    grad = h.add(leaf.grad, g);
    leaf.grad.dispose();
    g.dispose();
  }
  // Gradients outlive the tidy scope of the step that made them.
  grad.kept = true;
  leaf.grad = grad;
}
