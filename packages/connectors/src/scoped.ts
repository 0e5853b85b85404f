import type { Tensor } from "@webvlm/tensor";
import { isGradEnabled, tidy } from "@webvlm/tensor";

/**
 * Runs a forward step in a `tidy` scope when no gradient is being recorded, so inference frees
 * each step's temporaries at once. Under autograd the tape holds what backward needs and the
 * caller's own scope frees the rest after backward.
 */
export function scoped(fn: () => Tensor): Tensor {
  return isGradEnabled() ? fn() : tidy(fn);
}
