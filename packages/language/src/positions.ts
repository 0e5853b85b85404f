import { fmtShape, ShapeError } from "@webvlm/tensor";

/** Host data with a shape ([B, T] masks, position ids). Flat arrays are taken as row-major. */
export interface HostMatrix {
  data: ArrayLike<number>;
  shape: readonly number[];
}

/** A [B, T] 0/1 mask or integer matrix on the host: flat row-major data, nested rows, or data + shape. */
export type HostIntInput = ArrayLike<number> | readonly (readonly number[])[] | HostMatrix;

function isHostMatrix(x: unknown): x is HostMatrix {
  return typeof x === "object" && x !== null && "data" in x && "shape" in x;
}

/**
 * Reads a [B, width] integer matrix given as flat data, nested rows or {data, shape}; `widths`
 * lists the widths accepted (e.g. T, or past + T). Returns the data and the width found.
 */
export function readHostMatrix(
  what: string,
  input: HostIntInput,
  batch: number,
  widths: readonly number[],
): { data: Int32Array; width: number } {
  let flat: ArrayLike<number>;
  let shape: readonly number[] | null = null;
  if (isHostMatrix(input)) {
    flat = input.data;
    shape = input.shape;
  } else if (Array.isArray(input) && input.length > 0 && Array.isArray(input[0])) {
    const rows = input as readonly (readonly number[])[];
    const w = rows[0]!.length;
    rows.forEach((row, b) => {
      if (row.length !== w)
        throw new ShapeError(`${what}: row ${b} has ${row.length} values, row 0 has ${w}`);
    });
    flat = rows.flat();
    shape = [rows.length, w];
  } else flat = input as ArrayLike<number>;
  let width: number;
  if (shape) {
    if (shape.length !== 2 || shape[0] !== batch || !widths.includes(shape[1]!)) {
      throw new ShapeError(`${what}: expected [${batch}, ${widths.join(" or ")}], got ${fmtShape(shape)}`);
    }
    width = shape[1]!;
  } else {
    const w = widths.find((w) => w * batch === flat.length);
    if (w === undefined) {
      throw new ShapeError(`${what}: ${flat.length} values do not form [${batch}, ${widths.join(" or ")}]`);
    }
    width = w;
  }
  if (flat.length !== batch * width) {
    throw new ShapeError(`${what}: ${flat.length} values for shape [${batch}, ${width}]`);
  }
  const data = new Int32Array(flat.length);
  for (let i = 0; i < flat.length; i++) {
    const v = Number(flat[i]);
    if (!Number.isInteger(v)) {
      throw new ShapeError(
        `${what}: value ${flat[i]} at [${Math.floor(i / width)}, ${i % width}] is not an integer`,
      );
    }
    data[i] = v;
  }
  return { data, width };
}

/** Checks a 0/1 attention mask, naming the first bad element. */
export function checkMask(what: string, data: Int32Array, width: number): void {
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== 0 && data[i] !== 1) {
      throw new ShapeError(
        `${what}: value ${data[i]} at [${Math.floor(i / width)}, ${i % width}] is not 0 or 1`,
      );
    }
  }
}

/**
 * Position ids as HF `generate()` derives them from an attention mask [B, W]:
 * `cumsum(mask) - 1`, with padding slots set to 1; returns the last `T` columns [B, T].
 * On a left-padded row this numbers the real tokens 0, 1, 2, … from the first real token.
 */
export function positionsFromMask(mask: Int32Array, batch: number, width: number, T: number): Int32Array {
  const out = new Int32Array(batch * T);
  for (let b = 0; b < batch; b++) {
    let count = 0;
    for (let j = 0; j < width; j++) {
      const m = mask[b * width + j]!;
      count += m;
      const t = j - (width - T);
      if (t >= 0) out[b * T + t] = m === 0 ? 1 : count - 1;
    }
  }
  return out;
}
