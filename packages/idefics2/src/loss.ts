/**
 * Targets of the causal-LM loss, one per position of `logits[:, :-1]` ([B·(T-1)], row-major):
 * `labels[:, 1:]`, with -100 (ignored) wherever `attention_mask[:, 1:] == 0`. HF's
 * Idefics2ForConditionalGeneration drops those positions before a mean cross-entropy with
 * ignore_index -100; marking them ignored gives the same mean.
 */
export function shiftedTargets(
  labels: Int32Array,
  mask: Int32Array | null,
  B: number,
  T: number,
): Int32Array {
  const out = new Int32Array(B * (T - 1));
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T - 1; t++) {
      const keep = mask === null || mask[b * T + t + 1] !== 0;
      out[b * (T - 1) + t] = keep ? labels[b * T + t + 1]! : -100;
    }
  }
  return out;
}
