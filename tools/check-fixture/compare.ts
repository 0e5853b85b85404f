/** One line of the report: a tensor, how far we are from the reference, and the verdict. */
export interface Row {
  name: string;
  /** Max |actual − expected| over the compared elements; null when nothing could be compared. */
  diff: number | null;
  tol: number;
  status: "pass" | "fail" | "not checked";
  /** Where the worst element sits, what was compared, or why it was not checked. */
  note?: string;
}

/** Host values with a shape. */
export interface Values {
  data: ArrayLike<number>;
  shape: readonly number[];
}

const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}

/**
 * Compares every element (or, with `rowMask`, only rows whose mask entry is non-zero: the leading
 * dims flattened, one entry per row of the last `rowDims` dims). A NaN or a shape mismatch fails.
 */
export function compare(
  name: string,
  actual: Values,
  expected: Values,
  tol: number,
  options: { rowMask?: ArrayLike<number>; maskNote?: string } = {},
): Row {
  const sameShape =
    actual.shape.length === expected.shape.length && actual.shape.every((d, i) => d === expected.shape[i]);
  if (!sameShape) {
    return {
      name,
      diff: null,
      tol,
      status: "fail",
      note: `shape ${fmt(actual.shape)}, expected ${fmt(expected.shape)}`,
    };
  }
  const n = expected.data.length;
  if (actual.data.length !== n) {
    return { name, diff: null, tol, status: "fail", note: `${actual.data.length} values, expected ${n}` };
  }
  const mask = options.rowMask;
  const rowSize = mask ? n / mask.length : 1;
  if (mask && !Number.isInteger(rowSize))
    throw new Error(`internal: row mask of ${mask.length} entries for ${name} ${fmt(expected.shape)}`);
  let worst = -1;
  let worstDiff = 0;
  let compared = 0;
  for (let i = 0; i < n; i++) {
    if (mask && mask[Math.floor(i / rowSize)] === 0) continue;
    compared++;
    const a = Number(actual.data[i]);
    const e = Number(expected.data[i]);
    const d =
      Number.isNaN(a) || Number.isNaN(e)
        ? Number.isNaN(a) && Number.isNaN(e)
          ? 0
          : Number.POSITIVE_INFINITY
        : Math.abs(a - e);
    if (d > worstDiff || worst < 0) {
      worstDiff = d;
      worst = i;
    }
  }
  if (compared === 0)
    return { name, diff: null, tol, status: "fail", note: "no element to compare (mask is empty)" };
  const ok = worstDiff <= tol;
  const notes: string[] = [];
  if (mask) notes.push(options.maskNote ?? `${compared}/${n} elements`);
  if (!ok) {
    const at = unravel(worst, expected.shape);
    notes.push(
      `worst at [${at.join(", ")}]: ${Number(actual.data[worst])} vs ${Number(expected.data[worst])}`,
    );
  }
  return {
    name,
    diff: worstDiff,
    tol,
    status: ok ? "pass" : "fail",
    ...(notes.length ? { note: notes.join("; ") } : {}),
  };
}

export function formatRow(r: Row, width: number): string {
  const diff = r.diff === null ? "-" : r.diff === 0 ? "0" : r.diff.toExponential(2);
  const status = r.status === "pass" ? "PASS" : r.status === "fail" ? "FAIL" : "NOT YET CHECKED";
  const tol = r.tol === 0 ? "exact" : r.tol.toExponential(0);
  return `${r.name.padEnd(width)}  ${diff.padStart(9)}  ${tol.padStart(6)}  ${status}${r.note ? `  (${r.note})` : ""}`;
}

export function header(width: number): string {
  return `${"tensor".padEnd(width)}  ${"max |diff|".padStart(9)}  ${"tol".padStart(6)}  result`;
}
