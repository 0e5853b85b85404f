// Normalizers over a code-point sequence that remembers, per code point, which span of the
// original string (UTF-16 units) it came from, so token offsets point into the caller's text.
// Alignment rules follow `tokenizers`' NormalizedString: a prepended character takes the
// alignment of the first character; a replacement takes the alignment of the last replaced one.

import type { NormalizerSpec } from "./spec.js";

/** A growable code-point sequence with source spans; reused between calls to avoid allocation. */
export class Normalized {
  /** code points */
  cps: Int32Array;
  /** per code point: start and end of its source span in the original string (UTF-16 units) */
  starts: Int32Array;
  ends: Int32Array;
  length = 0;

  constructor(capacity = 64) {
    this.cps = new Int32Array(capacity);
    this.starts = new Int32Array(capacity);
    this.ends = new Int32Array(capacity);
  }

  get capacity(): number {
    return this.cps.length;
  }

  /** Make room for `n` code points; contents are not kept. */
  reset(n: number): void {
    if (n > this.cps.length) {
      const cap = Math.max(n, this.cps.length * 2);
      this.cps = new Int32Array(cap);
      this.starts = new Int32Array(cap);
      this.ends = new Int32Array(cap);
    }
    this.length = 0;
  }

  /** Append one code point, growing if needed (for steps whose output length is not known). */
  push(cp: number, start: number, end: number): void {
    const k = this.length;
    if (k === this.cps.length) {
      const cap = k * 2 + 16;
      for (const key of ["cps", "starts", "ends"] as const) {
        const next = new Int32Array(cap);
        next.set(this[key]);
        this[key] = next;
      }
    }
    this.cps[k] = cp;
    this.starts[k] = start;
    this.ends[k] = end;
    this.length = k + 1;
  }
}

/**
 * One normalization step: reads `src`, writes either `src` itself (in place) or `spare`, and
 * returns the one holding the result.
 */
export type NormalizeStep = (src: Normalized, spare: Normalized) => Normalized;

function codePoints(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) out.push(ch.codePointAt(0)!);
  return out;
}

/**
 * Fill `out` with the code points of `text[from, to)` and their source spans. A lone surrogate
 * (JS strings allow them, Rust strings do not) becomes U+FFFD, as TextEncoder would encode it.
 */
export function toNormalized(
  text: string,
  from: number,
  to: number,
  out: Normalized = new Normalized(0),
): Normalized {
  out.reset(to - from);
  const { cps, starts, ends } = out;
  let k = 0;
  for (let i = from; i < to; ) {
    let c = text.charCodeAt(i);
    let w = 1;
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < to ? text.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
        w = 2;
      } else {
        c = 0xfffd;
      }
    }
    cps[k] = c;
    starts[k] = i;
    ends[k] = i + w;
    k++;
    i += w;
  }
  out.length = k;
  return out;
}

function prepend(prefix: number[]): NormalizeStep {
  return (src, spare) => {
    // tokenizers: Prepend does nothing to an empty string.
    if (src.length === 0 || prefix.length === 0) return src;
    const n = src.length + prefix.length;
    spare.reset(n);
    const s0 = src.starts[0]!;
    const e0 = src.ends[0]!;
    for (let i = 0; i < prefix.length; i++) {
      spare.cps[i] = prefix[i]!;
      spare.starts[i] = s0;
      spare.ends[i] = e0;
    }
    spare.cps.set(src.cps.subarray(0, src.length), prefix.length);
    spare.starts.set(src.starts.subarray(0, src.length), prefix.length);
    spare.ends.set(src.ends.subarray(0, src.length), prefix.length);
    spare.length = n;
    return spare;
  };
}

function replace(pattern: number[], content: number[]): NormalizeStep {
  if (pattern.length === 1 && content.length === 1) {
    // The common case (" " -> "▁"): same length, alignments unchanged, done in place.
    const from = pattern[0]!;
    const to = content[0]!;
    return (src) => {
      const cps = src.cps;
      for (let i = 0; i < src.length; i++) if (cps[i] === from) cps[i] = to;
      return src;
    };
  }
  return (src, spare) => {
    spare.reset(src.length);
    const m = pattern.length;
    let i = 0;
    while (i < src.length) {
      let hit = i + m <= src.length;
      for (let j = 0; hit && j < m; j++) if (src.cps[i + j] !== pattern[j]) hit = false;
      if (hit) {
        // Every inserted character shares the alignment of the last replaced one.
        const s = src.starts[i + m - 1]!;
        const e = src.ends[i + m - 1]!;
        for (const c of content) spare.push(c, s, e);
        i += m;
      } else {
        spare.push(src.cps[i]!, src.starts[i]!, src.ends[i]!);
        i++;
      }
    }
    return spare;
  };
}

export function buildNormalizer(spec: NormalizerSpec | null): NormalizeStep | null {
  if (spec === null) return null;
  switch (spec.type) {
    case "Sequence": {
      const steps = spec.normalizers.map(buildNormalizer).filter((f): f is NormalizeStep => f !== null);
      return (src, spare) => {
        let cur = src;
        let other = spare;
        for (const step of steps) {
          const res = step(cur, other);
          if (res !== cur) {
            other = cur;
            cur = res;
          }
        }
        return cur;
      };
    }
    case "Prepend":
      return prepend(codePoints(spec.prepend));
    case "Replace":
      return replace(codePoints(spec.pattern), codePoints(spec.content));
  }
}
