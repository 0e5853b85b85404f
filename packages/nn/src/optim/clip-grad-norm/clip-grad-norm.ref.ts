// torch.nn.utils.clip_grad_norm_ (norm_type=2) in plain f64 loops.

/** Returns the total norm (before clipping) and the gradients as torch leaves them. */
export function clipGradNormRef(
  grads: readonly ArrayLike<number>[],
  maxNorm: number,
): { norm: number; grads: Float64Array[] } {
  // total_norm = ||[||g_0||, ||g_1||, ...]||: the norm of the per-tensor norms, i.e. of all elements
  let sumSq = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sumSq += g[i]! * g[i]!;
  const norm = Math.sqrt(sumSq);
  // clip_coef = max_norm / (total_norm + 1e-6), clamped to at most 1
  const coef = Math.min(maxNorm / (norm + 1e-6), 1);
  // every gradient is multiplied, by 1.0 when no clipping is needed
  return { norm, grads: grads.map((g) => Float64Array.from(g, (x) => x * coef)) };
}
