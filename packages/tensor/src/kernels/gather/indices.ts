import { DTypeError, fmtShape, ShapeError } from "../../errors.js";
import { numel, Tensor } from "../../tensor.js";

/**
 * Indices as host data (the common case: token ids and image-token positions come from the
 * tokenizer/processor). Host indices are range-checked (and, where an op needs it, checked for
 * duplicates) before upload, so a bad id fails naming its position instead of reading garbage.
 */
export interface HostIndices {
  data: ArrayLike<number>;
  shape: readonly number[];
}

/** A device tensor of i32 indices, a flat host array, or host data with a shape. */
export type IndexInput = Tensor | Int32Array | readonly number[] | HostIndices;

export interface ResolvedIndices {
  /** i32 tensor, owned by the caller iff `owned`. */
  tensor: Tensor;
  owned: boolean;
  /** The values when they came from the host. */
  host: Int32Array | null;
}

function isHostIndices(x: unknown): x is HostIndices {
  return typeof x === "object" && x !== null && "data" in x && "shape" in x && !(x instanceof Tensor);
}

/** Index shape without uploading anything. */
export function indexShape(index: IndexInput): readonly number[] {
  if (index instanceof Tensor) return index.shape;
  if (isHostIndices(index)) return index.shape;
  return [index.length];
}

/**
 * Checks host indices lie in [0, bound) (and are distinct when `unique`), naming the op, the
 * offending position and value; then uploads them. Device tensors are only checked for dtype.
 */
export function resolveIndices(
  op: string,
  what: string,
  index: IndexInput,
  bound: number,
  context: string,
  options: { unique?: boolean } = {},
): ResolvedIndices {
  if (index instanceof Tensor) {
    if (index.dtype !== "i32")
      throw new DTypeError(`${op}: ${what} must be i32, got ${index.dtype} ${fmtShape(index.shape)}`);
    return { tensor: index, owned: false, host: null };
  }
  const shape = isHostIndices(index) ? index.shape : [index.length];
  const raw = isHostIndices(index) ? index.data : index;
  if (raw.length !== numel(shape)) {
    throw new ShapeError(`${op}: ${what} has ${raw.length} values for shape ${fmtShape(shape)}`);
  }
  const host = raw instanceof Int32Array ? raw : Int32Array.from(raw as ArrayLike<number>);
  checkHostIndices(op, what, host, raw, bound, context, options.unique ?? false);
  return { tensor: Tensor.from(host, shape, { dtype: "i32" }), owned: true, host };
}

export function checkHostIndices(
  op: string,
  what: string,
  host: Int32Array,
  raw: ArrayLike<number>,
  bound: number,
  context: string,
  unique: boolean,
): void {
  const seen = unique ? new Map<number, number>() : null;
  for (let i = 0; i < host.length; i++) {
    const v = host[i]!;
    // Compare the original value too: Int32Array.from wraps 2^32 + 3 to 3.
    if (raw[i] !== v || v < 0 || v >= bound) {
      throw new ShapeError(`${op}: ${what}[${i}] = ${raw[i]} is out of range [0, ${bound}) for ${context}`);
    }
    if (seen) {
      const prev = seen.get(v);
      if (prev !== undefined) {
        throw new ShapeError(
          `${op}: ${what}[${i}] = ${v} repeats ${what}[${prev}]; each row may be written once (${context})`,
        );
      }
      seen.set(v, i);
    }
  }
}

/**
 * Reads device indices back and checks them like host ones (an explicit sync point: use it in
 * tests and data pipelines, not inside a training step).
 */
export async function validateIndices(
  index: Tensor,
  bound: number,
  options: { unique?: boolean; op?: string } = {},
): Promise<void> {
  const op = options.op ?? "validateIndices";
  if (index.dtype !== "i32") throw new DTypeError(`${op}: index must be i32, got ${index.dtype}`);
  const host = (await index.data()) as Int32Array;
  checkHostIndices(op, "index", host, host, bound, `bound ${bound}`, options.unique ?? false);
}

/**
 * The duplicate-index chains the deterministic scatter-add walks: for each position n, the next
 * position with the same index (or -1) and whether n is the first one ("head"). Out-of-range
 * indices are never heads, so they contribute nothing. Layout: [next_0, head_0, next_1, head_1, ...].
 */
export function hostLinks(index: Int32Array, bound: number): Int32Array {
  const links = new Int32Array(2 * index.length);
  const last = new Map<number, number>();
  for (let n = 0; n < index.length; n++) {
    const v = index[n]!;
    links[2 * n] = -1;
    if (v < 0 || v >= bound) continue;
    const prev = last.get(v);
    if (prev === undefined) links[2 * n + 1] = 1;
    else links[2 * prev] = n;
    last.set(v, n);
  }
  return links;
}
