import { fmtShape, ShapeError } from "@webvlm/tensor";

/** Host data with a shape: what processors produce and tensors read back as. */
export interface HostTensor<T extends ArrayLike<number> = ArrayLike<number>> {
  data: T;
  shape: readonly number[];
}

/** A [B, T] integer matrix on the host: data + shape, or nested rows. */
export type HostInts = HostTensor | readonly (readonly number[])[];

/** Reads a [B, T] integer matrix, naming `what` when it is ragged, mis-sized or not integer. */
export function readInts(what: string, x: HostInts): { data: Int32Array; shape: [number, number] } {
  let data: ArrayLike<number>;
  let shape: readonly number[];
  if (Array.isArray(x)) {
    const rows = x as readonly (readonly number[])[];
    const w = rows[0]?.length ?? 0;
    rows.forEach((r, b) => {
      if (!Array.isArray(r) || r.length !== w)
        throw new ShapeError(`${what}: row ${b} has ${r?.length} values, row 0 has ${w}`);
    });
    data = rows.flat();
    shape = [rows.length, w];
  } else {
    const h = x as HostTensor;
    if (!h || h.data === undefined || !Array.isArray(h.shape))
      throw new ShapeError(`${what}: expected { data, shape } or nested rows`);
    data = h.data;
    shape = h.shape;
  }
  if (shape.length !== 2) throw new ShapeError(`${what}: must be [batch, seq], got ${fmtShape(shape)}`);
  if (data.length !== shape[0]! * shape[1]!)
    throw new ShapeError(`${what}: ${data.length} values for shape ${fmtShape(shape)}`);
  if (data instanceof Int32Array) return { data, shape: [shape[0]!, shape[1]!] };
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = Number(data[i]);
    if (!Number.isInteger(v))
      throw new ShapeError(
        `${what}: value ${data[i]} at [${Math.floor(i / shape[1]!)}, ${i % shape[1]!}] is not an integer`,
      );
    out[i] = v;
  }
  return { data: out, shape: [shape[0]!, shape[1]!] };
}
