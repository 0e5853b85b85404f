// SentencePiece-style BPE over code points, as `tokenizers`' BPE model does it with
// byte_fallback. The model has no pre-tokenizer, so a whole document is one word: merging uses a
// binary min-heap of candidate merges over a doubly linked list of symbols (O(n log n), never a
// rescan per merge), with `tokenizers`' ordering (rank, then position) and its lazy check for
// stale heap entries. Where the merge list proves no token can cross a "x|▁" boundary, each
// stretch between such boundaries gets its own small heap (see `merge`).

import type { BpeSpec } from "./spec.js";

/** Result of one `tokenize` call. The arrays are scratch buffers reused by the next call. */
export interface BpeOutput {
  ids: Int32Array;
  /** per token: first code point (index into the normalized sequence) */
  cpStart: Int32Array;
  /** per token: one past its last code point */
  cpEnd: Int32Array;
  count: number;
}

const TWO32 = 4294967296;

/** Open-addressing map (left id, right id) -> merge rank; later duplicates overwrite, like a HashMap collect. */
class PairTable {
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly rank: Int32Array;
  private readonly shift: number;
  private readonly mask: number;

  constructor(entries: number) {
    let bits = 4;
    while (1 << bits < entries * 2) bits++;
    const cap = 1 << bits;
    this.left = new Int32Array(cap).fill(-1);
    this.right = new Int32Array(cap);
    this.rank = new Int32Array(cap);
    this.shift = 32 - bits;
    this.mask = cap - 1;
  }

  set(a: number, b: number, rank: number): void {
    let h = Math.imul((Math.imul(a, 65599) + b) | 0, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const l = this.left[h]!;
      if (l === -1) {
        this.left[h] = a;
        this.right[h] = b;
        this.rank[h] = rank;
        return;
      }
      if (l === a && this.right[h] === b) {
        this.rank[h] = rank;
        return;
      }
      h = (h + 1) & this.mask;
    }
  }

  /** rank of the merge (a, b), or -1 */
  get(a: number, b: number): number {
    const left = this.left;
    let h = Math.imul((Math.imul(a, 65599) + b) | 0, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const l = left[h]!;
      if (l === a && this.right[h] === b) return this.rank[h]!;
      if (l === -1) return -1;
      h = (h + 1) & this.mask;
    }
  }
}

export class BpeModel {
  /** piece -> id */
  readonly vocab: Map<string, number>;
  /** id -> piece (holes for ids not in the vocabulary) */
  readonly idToPiece: string[];
  readonly unkId: number;
  private readonly unkToken: string | null;
  private readonly fuseUnk: boolean;
  private readonly byteFallback: boolean;
  private readonly ignoreMerges: boolean;
  /** single-code-point pieces: BMP in a dense table, the rest in a map; -1 = not a piece */
  private readonly bmpIds = new Int32Array(0x10000).fill(-1);
  private readonly astralIds = new Map<number, number>();
  /** `<0xXX>` piece ids, -1 where the vocabulary lacks one */
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly pairs: PairTable;
  private readonly newIdByRank: Int32Array;
  /** id of "▁" when no merge joins a left part not ending in ▁ to a right part starting with ▁; else -1 */
  private readonly splitBeforeId: number;

  // Scratch buffers for short inputs, reused across calls; long inputs get their own so a
  // one-off 4 MB document does not pin hundreds of MB.
  private scratch: Scratch = newScratch(256);

  /** `chunked: false` turns the boundary optimisation off (tests compare both paths). */
  constructor(spec: BpeSpec, options: { chunked?: boolean } = {}) {
    this.vocab = spec.vocab;
    this.idToPiece = [];
    for (const [piece, id] of spec.vocab) {
      this.idToPiece[id] = piece;
      const first = piece.codePointAt(0)!;
      if (piece.length === (first > 0xffff ? 2 : 1)) {
        if (first <= 0xffff) this.bmpIds[first] = id;
        else this.astralIds.set(first, id);
      }
    }
    for (let b = 0; b < 256; b++) {
      const id = spec.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
      if (id !== undefined) this.byteIds[b] = id;
    }
    this.unkToken = spec.unkToken;
    this.unkId = spec.unkToken === null ? -1 : (spec.vocab.get(spec.unkToken) ?? -1);
    this.fuseUnk = spec.fuseUnk;
    this.byteFallback = spec.byteFallback;
    this.ignoreMerges = spec.ignoreMerges;
    this.pairs = new PairTable(spec.merges.length);
    this.newIdByRank = new Int32Array(spec.merges.length);
    spec.merges.forEach(([a, b], rank) => {
      // spec.ts has checked that a, b and a+b are pieces.
      this.pairs.set(spec.vocab.get(a)!, spec.vocab.get(b)!, rank);
      this.newIdByRank[rank] = spec.vocab.get(a + b)!;
    });
    const space = spec.vocab.get("\u2581");
    const crosses = spec.merges.some(([a, b]) => b.startsWith("\u2581") && !a.endsWith("\u2581"));
    this.splitBeforeId = space === undefined || crosses || options.chunked === false ? -1 : space;
  }

  private unkIdOrThrow(): number {
    if (this.unkId < 0)
      throw new Error(`BPE: unk_token ${JSON.stringify(this.unkToken)} is not in the vocabulary`);
    return this.unkId;
  }

  /** Upper bound on the initial symbols of `cps[0, n)`: one per piece, up to four bytes otherwise. */
  private countSymbols(cps: Int32Array, n: number): number {
    let m = 0;
    for (let i = 0; i < n; i++) {
      const c = cps[i]!;
      const id = c <= 0xffff ? this.bmpIds[c]! : (this.astralIds.get(c) ?? -1);
      m += id >= 0 || !this.byteFallback ? 1 : c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    }
    return m;
  }

  /** Tokenize `cps[0, n)` (one normalized segment). */
  tokenize(cps: Int32Array, n: number): BpeOutput {
    let sc = n <= SMALL_INPUT ? this.scratch : newScratch(this.countSymbols(cps, n) + 8);
    if (sc.cap < n + 4) sc = newScratch(Math.max(n + 4, sc.cap * 2));
    if (n === 0) {
      sc.out.count = 0;
      return sc.out;
    }
    if (this.ignoreMerges) {
      let s = "";
      for (let i = 0; i < n; i++) s += String.fromCodePoint(cps[i]!);
      const id = this.vocab.get(s);
      if (id !== undefined) {
        sc.out.ids[0] = id;
        sc.out.cpStart[0] = 0;
        sc.out.cpEnd[0] = n;
        sc.out.count = 1;
        return sc.out;
      }
    }
    const { bmpIds, byteIds } = this;
    let { sid, sStart, sEnd } = sc;
    let m = 0;
    // Pending <unk> (tokenizers' `unk`): start code point, or -1.
    let unkStart = -1;
    let unkEnd = 0;
    for (let i = 0; i < n; i++) {
      if (m + 5 > sc.cap) {
        // Byte fallback made more symbols than code points.
        sc = growScratch(sc, m, sc.cap * 2);
        ({ sid, sStart, sEnd } = sc);
      }
      const c = cps[i]!;
      const id = c <= 0xffff ? bmpIds[c]! : (this.astralIds.get(c) ?? -1);
      if (id >= 0) {
        if (unkStart >= 0) {
          sid[m] = this.unkId;
          sStart[m] = unkStart;
          sEnd[m++] = unkEnd;
          unkStart = -1;
        }
        sid[m] = id;
        sStart[m] = i;
        sEnd[m++] = i + 1;
        continue;
      }
      if (this.byteFallback) {
        // UTF-8 bytes of c; all of them must be pieces, else fall through to <unk>.
        let b0: number;
        let b1 = -1;
        let b2 = -1;
        let b3 = -1;
        if (c < 0x80) b0 = c;
        else if (c < 0x800) {
          b0 = 0xc0 | (c >> 6);
          b1 = 0x80 | (c & 63);
        } else if (c < 0x10000) {
          b0 = 0xe0 | (c >> 12);
          b1 = 0x80 | ((c >> 6) & 63);
          b2 = 0x80 | (c & 63);
        } else {
          b0 = 0xf0 | (c >> 18);
          b1 = 0x80 | ((c >> 12) & 63);
          b2 = 0x80 | ((c >> 6) & 63);
          b3 = 0x80 | (c & 63);
        }
        const i0 = byteIds[b0]!;
        const i1 = b1 < 0 ? 0 : byteIds[b1]!;
        const i2 = b2 < 0 ? 0 : byteIds[b2]!;
        const i3 = b3 < 0 ? 0 : byteIds[b3]!;
        if (i0 >= 0 && i1 >= 0 && i2 >= 0 && i3 >= 0) {
          // tokenizers adds the byte tokens without flushing a pending <unk> first; keep that order.
          sid[m] = i0;
          sStart[m] = i;
          sEnd[m++] = i + 1;
          if (b1 >= 0) {
            sid[m] = i1;
            sStart[m] = i;
            sEnd[m++] = i + 1;
          }
          if (b2 >= 0) {
            sid[m] = i2;
            sStart[m] = i;
            sEnd[m++] = i + 1;
          }
          if (b3 >= 0) {
            sid[m] = i3;
            sStart[m] = i;
            sEnd[m++] = i + 1;
          }
          continue;
        }
      }
      if (this.unkToken !== null) {
        const unk = this.unkIdOrThrow();
        if (unkStart >= 0 && this.fuseUnk) {
          unkEnd = i + 1;
        } else {
          if (unkStart >= 0) {
            sid[m] = unk;
            sStart[m] = unkStart;
            sEnd[m++] = unkEnd;
          }
          unkStart = i;
          unkEnd = i + 1;
        }
      }
      // No unk token: tokenizers drops the character.
    }
    if (unkStart >= 0) {
      sid[m] = this.unkId;
      sStart[m] = unkStart;
      sEnd[m++] = unkEnd;
    }
    if (n <= SMALL_INPUT && sc.cap <= 4 * SMALL_INPUT + 8) this.scratch = sc;
    return this.merge(sc, m);
  }

  /**
   * Merge all `m` symbols. When no merge can join a symbol to a following `▁` (checked on the
   * merge list at load), every boundary "non-▁ symbol | ▁" is final and the stretches between
   * them are merged one at a time: the same merges in the same order as one heap over the whole
   * text, but with small heaps that stay in cache.
   */
  private merge(sc: Scratch, m: number): BpeOutput {
    const { sid } = sc;
    const split = this.splitBeforeId;
    let k = 0;
    let start = 0;
    if (split >= 0) {
      for (let i = 1; i < m; i++) {
        if (sid[i] === split && sid[i - 1] !== split) {
          k = this.mergeRange(sc, start, i, k);
          start = i;
        }
      }
    }
    if (m > 0) k = this.mergeRange(sc, start, m, k);
    sc.out.count = k;
    return sc.out;
  }

  /** Merge symbols [a, b) as one word; append the result to the output at `k`; return the new count. */
  private mergeRange(sc: Scratch, a: number, b: number, k: number): number {
    // Initial pairs plus at most two pushes per merge.
    if (sc.heap.length < 3 * (b - a)) sc.heap = new Float64Array(Math.max(3 * (b - a), 2 * sc.heap.length));
    const { sid, sStart, sEnd, sPrev, sNext, heap } = sc;
    const { pairs, newIdByRank } = this;
    for (let i = a; i < b; i++) {
      sPrev[i] = i - 1;
      sNext[i] = i + 1;
    }
    sPrev[a] = -1;
    sNext[b - 1] = -1;
    // Heap keys: rank * 2^32 + position of the left symbol; smaller = earlier (rank, then leftmost).
    let size = 0;
    for (let i = a; i + 1 < b; i++) {
      const r = pairs.get(sid[i]!, sid[i + 1]!);
      if (r >= 0) heap[size++] = r * TWO32 + i;
    }
    // Bottom-up heapify.
    for (let start = (size >> 1) - 1; start >= 0; start--) {
      const key = heap[start]!;
      let i = start;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= size) break;
        if (c + 1 < size && heap[c + 1]! < heap[c]!) c++;
        if (heap[c]! >= key) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = key;
    }

    while (size > 0) {
      const top = heap[0]!;
      // Pop: move the last key to the root and sift it down.
      size--;
      if (size > 0) {
        const key = heap[size]!;
        let i = 0;
        for (;;) {
          let c = 2 * i + 1;
          if (c >= size) break;
          if (c + 1 < size && heap[c + 1]! < heap[c]!) c++;
          if (heap[c]! >= key) break;
          heap[i] = heap[c]!;
          i = c;
        }
        heap[i] = key;
      }

      const rank = Math.floor(top / TWO32);
      const pos = top - rank * TWO32;
      const left = sid[pos]!;
      if (left < 0) continue; // merged away into its left neighbour
      const right = sNext[pos]!;
      if (right < 0) continue;
      const newId = newIdByRank[rank]!;
      // Stale entry check as in tokenizers: the pair now at `pos` must produce the same piece.
      const curRank = pairs.get(left, sid[right]!);
      if (curRank < 0 || newIdByRank[curRank] !== newId) continue;

      sid[pos] = newId;
      sEnd[pos] = sEnd[right]!;
      sid[right] = -1;
      const after = sNext[right]!;
      sNext[pos] = after;
      if (after >= 0) sPrev[after] = pos;

      const prev = sPrev[pos]!;
      if (prev >= 0) {
        const r = pairs.get(sid[prev]!, newId);
        if (r >= 0) size = heapPush(heap, size, r * TWO32 + prev);
      }
      if (after >= 0) {
        const r = pairs.get(newId, sid[after]!);
        if (r >= 0) size = heapPush(heap, size, r * TWO32 + pos);
      }
    }

    const out = sc.out;
    for (let i = a; i >= 0; i = sNext[i]!) {
      out.ids[k] = sid[i]!;
      out.cpStart[k] = sStart[i]!;
      out.cpEnd[k] = sEnd[i]!;
      k++;
    }
    return k;
  }
}

/** Inputs up to this many code points reuse the model's scratch buffers. */
const SMALL_INPUT = 1 << 16;

interface Scratch {
  cap: number;
  sid: Int32Array;
  sStart: Int32Array;
  sEnd: Int32Array;
  sPrev: Int32Array;
  sNext: Int32Array;
  heap: Float64Array;
  out: BpeOutput;
}

function newScratch(cap: number): Scratch {
  return {
    cap,
    sid: new Int32Array(cap),
    sStart: new Int32Array(cap),
    sEnd: new Int32Array(cap),
    sPrev: new Int32Array(cap),
    sNext: new Int32Array(cap),
    heap: new Float64Array(0),
    out: { ids: new Int32Array(cap), cpStart: new Int32Array(cap), cpEnd: new Int32Array(cap), count: 0 },
  };
}

/** A larger scratch keeping the first `m` symbols. */
function growScratch(sc: Scratch, m: number, cap: number): Scratch {
  const next = newScratch(cap);
  next.sid.set(sc.sid.subarray(0, m));
  next.sStart.set(sc.sStart.subarray(0, m));
  next.sEnd.set(sc.sEnd.subarray(0, m));
  return next;
}

function heapPush(heap: Float64Array, size: number, key: number): number {
  let i = size;
  while (i > 0) {
    const p = (i - 1) >> 1;
    const pk = heap[p]!;
    if (pk <= key) break;
    heap[i] = pk;
    i = p;
  }
  heap[i] = key;
  return size + 1;
}
