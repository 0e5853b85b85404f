import { record } from "./autograd.js";
import { fmtShape, ShapeError } from "./errors.js";
import { assign, contiguousCopy, full, sumTo } from "./kernels/elementwise/elementwise.js";
import { normAxis, numel, registerViewOps, Tensor } from "./tensor.js";

function shareView(x: Tensor, shape: readonly number[], strides: readonly number[], offset: number): Tensor {
  x.storage.retain();
  return new Tensor(x.storage, shape, x.dtype, strides, offset);
}

/** Strides for `shape` over the same memory as x, or null when x's layout cannot express it without a copy. */
function viewStrides(x: Tensor, shape: readonly number[]): number[] | null {
  // Walk x's dims in groups whose memory is contiguous among themselves; each new dim must split one group.
  const oldShape = x.shape.filter((d) => d !== 1);
  const oldStrides = x.strides.filter((_, i) => x.shape[i] !== 1);
  const newStrides = new Array<number>(shape.length).fill(0);
  let oi = 0;
  let ni = 0;
  while (ni < shape.length && shape[ni] === 1) newStrides[ni++] = 1;
  while (oi < oldShape.length) {
    // Collect a contiguous chunk of old dims.
    let chunk = oldShape[oi]!;
    let chunkEnd = oi;
    while (
      chunkEnd + 1 < oldShape.length &&
      oldStrides[chunkEnd] === oldStrides[chunkEnd + 1]! * oldShape[chunkEnd + 1]!
    ) {
      chunkEnd++;
      chunk *= oldShape[chunkEnd]!;
    }
    // Consume new dims whose product equals the chunk.
    let stride = oldStrides[chunkEnd]!;
    let prod = 1;
    const start = ni;
    while (ni < shape.length && prod < chunk) {
      prod *= shape[ni]!;
      ni++;
    }
    if (prod !== chunk) return null;
    for (let k = ni - 1; k >= start; k--) {
      newStrides[k] = stride;
      stride *= shape[k]!;
    }
    while (ni < shape.length && shape[ni] === 1) newStrides[ni++] = 1;
    oi = chunkEnd + 1;
  }
  if (ni !== shape.length) return null;
  return newStrides;
}

function reshape(x: Tensor, shapeIn: readonly number[]): Tensor {
  const shape = [...shapeIn];
  const free = shape.indexOf(-1);
  if (free >= 0) {
    const known = shape.reduce((p, d, i) => (i === free ? p : p * d), 1);
    if (known === 0 || x.size % known !== 0) {
      throw new ShapeError(`reshape: cannot infer -1 in ${fmtShape(shapeIn)} for ${fmtShape(x.shape)}`);
    }
    shape[free] = x.size / known;
  }
  if (numel(shape) !== x.size || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ShapeError(
      `reshape: ${fmtShape(x.shape)} (${x.size} elements) cannot become ${fmtShape(shapeIn)}`,
    );
  }
  const strides = x.size === 0 ? null : viewStrides(x, shape);
  let out: Tensor;
  if (strides) out = shareView(x, shape, strides, x.offset);
  else {
    const c = contiguousCopy(x);
    out = shareView(
      c,
      shape,
      shape.map((_, i) => numel(shape.slice(i + 1))),
      c.offset,
    );
    c.dispose();
  }
  const inShape = x.shape;
  return record("reshape", out, [x], (g) => [g.reshape(inShape)]);
}

function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== x.rank) throw new ShapeError(`permute: ${dims.length} dims given for rank ${x.rank}`);
  const d = dims.map((a) => normAxis("permute", a, x.rank));
  if (new Set(d).size !== d.length) throw new ShapeError(`permute: repeated dims in [${dims.join(", ")}]`);
  const out = shareView(
    x,
    d.map((i) => x.shape[i]!),
    d.map((i) => x.strides[i]!),
    x.offset,
  );
  const inverse = new Array<number>(d.length);
  d.forEach((src, dst) => {
    inverse[src] = dst;
  });
  return record("permute", out, [x], (g) => [g.permute(inverse)]);
}

function expand(x: Tensor, shapeIn: readonly number[]): Tensor {
  if (shapeIn.length < x.rank)
    throw new ShapeError(`expand: ${fmtShape(x.shape)} to fewer dims ${fmtShape(shapeIn)}`);
  const lead = shapeIn.length - x.rank;
  const shape: number[] = [];
  const strides: number[] = [];
  for (let i = 0; i < shapeIn.length; i++) {
    const src = i - lead;
    const want = shapeIn[i]!;
    if (src < 0) {
      if (want < 0) throw new ShapeError(`expand: -1 for a new leading dim in ${fmtShape(shapeIn)}`);
      shape.push(want);
      strides.push(0);
      continue;
    }
    const have = x.shape[src]!;
    if (want === -1 || want === have) {
      shape.push(have);
      strides.push(x.strides[src]!);
    } else if (have === 1) {
      shape.push(want);
      strides.push(0);
    } else {
      throw new ShapeError(
        `expand: ${fmtShape(x.shape)} cannot expand to ${fmtShape(shapeIn)} (dim ${i}: ${have} → ${want})`,
      );
    }
  }
  const out = shareView(x, shape, strides, x.offset);
  const inShape = x.shape;
  return record("expand", out, [x], (g) => [sumTo(g, inShape)]);
}

function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const a = normAxis("narrow", dim, x.rank);
  const extent = x.shape[a]!;
  if (
    !Number.isInteger(start) ||
    !Number.isInteger(length) ||
    start < 0 ||
    length < 0 ||
    start + length > extent
  ) {
    throw new ShapeError(`narrow: [${start}, ${start + length}) is outside dim ${a} of ${fmtShape(x.shape)}`);
  }
  const shape = [...x.shape];
  shape[a] = length;
  const out = shareView(x, shape, x.strides, x.offset + start * x.strides[a]!);
  const inShape = x.shape;
  const dtype = x.dtype;
  const device = x.device;
  return record("narrow", out, [x], (g) => {
    const gx = full(inShape, 0, { dtype, device });
    const window = gx.narrow(a, start, length);
    assign(window, g);
    window.dispose();
    return [gx];
  });
}

registerViewOps({ reshape, permute, expand, narrow, contiguous: contiguousCopy });

export { expand, narrow, permute, reshape };
