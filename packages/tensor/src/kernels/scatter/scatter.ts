import { record } from "../../autograd.js";
import { isFloat } from "../../dtype.js";
import { DTypeError, fmtShape, ShapeError } from "../../errors.js";
import { Tensor } from "../../tensor.js";
import { assign, grid1d } from "../elementwise/elementwise.js";
import { gatherForward, typed } from "../gather/gather.js";
import { type IndexInput, indexShape, resolveIndices } from "../gather/indices.js";
import code from "./scatter.wgsl";

/** Writes rows (or zeros) into y [N, D] in place at the given row indices. */
function scatterInto(y: Tensor, index: Tensor, rows: Tensor | null): void {
  const [n, d] = y.shape as [number, number];
  const m = index.shape[0]!;
  const total = m * d;
  if (total === 0) return;
  // In zero mode rows is bound but never read: any buffer satisfies the layout.
  const src = rows ?? index;
  const u = new Uint32Array([
    total,
    d,
    n,
    rows ? 0 : 1,
    rows?.offset ?? 0,
    rows?.strides[0] ?? 0,
    rows?.strides[1] ?? 0,
    index.offset,
    index.strides[0]!,
  ]);
  y.device.dispatch({
    op: rows ? "scatter_rows" : "scatter_rows_zero",
    code: typed(code, y.dtype),
    buffers: [{ buffer: src.storage.buffer }, { buffer: index.storage.buffer }, { buffer: y.storage.buffer }],
    uniforms: u,
    workgroups: grid1d(y.device, total),
  });
}

/**
 * A copy of base [N, D] with base[index[i]] = rows[i] for each i: how image features replace the
 * `<image>` token embeddings of a sequence. Host indices are checked for range and duplicates
 * (a repeated row would be a race); device indices outside [0, N) are skipped and duplicates are
 * not detected (use `validateIndices(index, N, { unique: true })` where that matters).
 * Gradients: base gets g with the overwritten rows zeroed, rows get g gathered at index.
 */
export function scatterRows(base: Tensor, index: IndexInput, rows: Tensor): Tensor {
  const op = "scatter_rows";
  const shapes = `base ${fmtShape(base.shape)}, index ${fmtShape(indexShape(index))}, rows ${fmtShape(rows.shape)}`;
  if (base.rank !== 2 || rows.rank !== 2)
    throw new ShapeError(`${op}: base and rows must be 2-D [rows, dim]: ${shapes}`);
  const ishape = indexShape(index);
  if (ishape.length !== 1 || ishape[0] !== rows.shape[0]) {
    throw new ShapeError(`${op}: index must be 1-D with one entry per row of rows: ${shapes}`);
  }
  if (rows.shape[1] !== base.shape[1]) throw new ShapeError(`${op}: rows and base differ in dim: ${shapes}`);
  if (rows.dtype !== base.dtype)
    throw new DTypeError(`${op}: dtypes differ: base ${base.dtype}, rows ${rows.dtype}`);
  if (rows.device !== base.device) throw new ShapeError(`${op}: base and rows live on different devices`);
  const idx = resolveIndices(op, "index", index, base.shape[0]!, shapes, { unique: true });
  const y = Tensor.empty(base.shape, { dtype: base.dtype, device: base.device });
  if (y.size > 0) assign(y, base);
  scatterInto(y, idx.tensor, rows);
  if (isFloat(base.dtype)) {
    record(
      op,
      y,
      [base, rows],
      (g, [saved]) => {
        const gBase = Tensor.empty(g.shape, { dtype: g.dtype, device: g.device });
        if (g.size > 0) assign(gBase, g);
        scatterInto(gBase, saved!, null);
        return [gBase, gatherForward(`${op}_backward`, g, 0, saved!)];
      },
      [idx.tensor],
    );
  }
  if (idx.owned) idx.tensor.dispose();
  return y;
}
