// Plain-loop reference for constant padding / cropping, in f64.

/** Pads contiguous x (shape) by widths[d] = [before, after] per dim (all dims given). */
export function padRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  widths: readonly (readonly [number, number])[],
  value: number,
): { data: Float64Array; shape: number[] } {
  const out = shape.map((s, d) => s + widths[d]![0] + widths[d]![1]);
  const n = out.reduce((p, d) => p * d, 1);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // Output coordinates, innermost last.
    let rest = i;
    let src = 0;
    let stride = 1;
    let inside = true;
    for (let d = out.length - 1; d >= 0; d--) {
      const c = (rest % out[d]!) - widths[d]![0];
      rest = Math.floor(rest / out[d]!);
      // Shift back into x; outside x means padding.
      if (c < 0 || c >= shape[d]!) inside = false;
      src += c * stride;
      stride *= shape[d]!;
    }
    data[i] = inside ? x[src]! : value;
  }
  return { data, shape: out };
}
