/** A tensor's shape does not fit the op: the message names the op and every shape involved. */
export class ShapeError extends Error {
  override name = "ShapeError";
}

/** An op got a dtype it does not support, or operands of different dtypes. */
export class DTypeError extends Error {
  override name = "DTypeError";
}

/** Dawn reported a problem: WGSL validation, out of memory, device loss. Names the op when known. */
export class GpuError extends Error {
  override name = "GpuError";
}

/** Use of a tensor after `dispose()`, or of a graph after it was released. */
export class DisposedError extends Error {
  override name = "DisposedError";
}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}
