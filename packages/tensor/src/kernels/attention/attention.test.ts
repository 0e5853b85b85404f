import { beforeAll, describe, expect, it } from "vitest";
import { DTypeError, getDevice, ShapeError, Tensor } from "../../index.js";
import { assertClose, checkGradients, finiteDifferences, Rng } from "../../testing.js";
import {
  type AttentionOptions,
  type AttentionVariant,
  attention,
  attentionBackward,
  attentionForward,
} from "./attention.js";
import {
  type AttentionRefOptions,
  type AttentionRefShape,
  attentionBackwardRef,
  attentionRef,
} from "./attention.ref.js";

beforeAll(async () => {
  await getDevice();
});

const rng = new Rng(11);
// Every variant has its own backward kernels (the delta step is shared).
const variants: AttentionVariant[] = ["rows", "subgroup", "tiled"];
const forwardVariants: AttentionVariant[] = ["rows", "subgroup", "tiled"];

/** Whether this adapter can run a variant ("subgroup" needs a fixed subgroup size). */
async function runs(variant: AttentionVariant): Promise<boolean> {
  const d = await getDevice();
  if (variant !== "subgroup") return true;
  const ok =
    d.hasSubgroups &&
    d.info.subgroupMinSize !== undefined &&
    d.info.subgroupMinSize === d.info.subgroupMaxSize;
  if (!ok) console.warn("attention: adapter has no fixed-size subgroups, subgroup variant skipped");
  return ok;
}

/** How q, k, v sit in memory: contiguous, or views that a kernel must read through strides. */
type Layout = "contiguous" | "strided";

interface Case {
  name: string;
  s: AttentionRefShape;
  causal?: boolean;
  window?: number;
  /** Key padding mask [B, Tk] (1 = keep), built per case. */
  keyPad?: (b: number, j: number) => number;
  keyPadDtype?: "f32" | "i32";
  /** Full mask: additive f32 [B, 1, Tq, Tk] or boolean i32 [B, Hq, Tq, Tk]. */
  mask?: "additive" | "boolean";
  layout?: Layout;
  scale?: number;
}

const cases: Case[] = [
  { name: "Tq != Tk, D=8", s: { B: 2, Hq: 2, Hkv: 2, Tq: 5, Tk: 7, D: 8 } },
  { name: "T=1, D=16", s: { B: 1, Hq: 1, Hkv: 1, Tq: 1, Tk: 1, D: 16 } },
  { name: "decode step, GQA 4:1, causal", s: { B: 2, Hq: 4, Hkv: 1, Tq: 1, Tk: 37, D: 16 }, causal: true },
  {
    name: "vision head dim 72, T=70, GQA 2:1, causal",
    s: { B: 1, Hq: 4, Hkv: 2, Tq: 70, Tk: 70, D: 72 },
    causal: true,
  },
  {
    name: "D=128 strided q/k/v, scale 0.3",
    s: { B: 2, Hq: 2, Hkv: 1, Tq: 33, Tk: 45, D: 128 },
    layout: "strided",
    scale: 0.3,
  },
  {
    name: "causal + padding + window 4, GQA 4:1, fully masked rows",
    s: { B: 2, Hq: 4, Hkv: 1, Tq: 19, Tk: 23, D: 16 },
    causal: true,
    window: 4,
    // Batch 1 drops keys 0..9: its early queries see no key through the window.
    keyPad: (b, j) => (b === 1 && j < 10 ? 0 : 1),
  },
  {
    name: "additive mask with -inf + float key padding, strided",
    s: { B: 2, Hq: 2, Hkv: 1, Tq: 6, Tk: 9, D: 8 },
    mask: "additive",
    keyPad: (b, j) => (b === 0 && j === 3 ? 0 : 1),
    keyPadDtype: "f32",
    layout: "strided",
  },
  { name: "boolean mask per head, D=13", s: { B: 1, Hq: 3, Hkv: 3, Tq: 11, Tk: 10, D: 13 }, mask: "boolean" },
  {
    name: "Tq > Tk causal: leading rows see nothing",
    s: { B: 1, Hq: 2, Hkv: 1, Tq: 9, Tk: 4, D: 8 },
    causal: true,
  },
  {
    name: "D=64, T=130, window 50 without causal",
    s: { B: 1, Hq: 2, Hkv: 2, Tq: 130, Tk: 130, D: 64 },
    window: 50,
  },
];

interface Built {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  /** Logical contiguous [B, H, T, D] values, for the reference. */
  qh: Float32Array;
  kh: Float32Array;
  vh: Float32Array;
  opts: AttentionOptions;
  refOpts: AttentionRefOptions;
}

/** Logical values of a view, walking its strides over the storage's host copy. */
function readView(phys: Float32Array, t: Tensor): Float32Array {
  const out = new Float32Array(t.size);
  const idx = new Array<number>(t.rank).fill(0);
  for (let n = 0; n < t.size; n++) {
    let at = t.offset;
    for (let a = 0; a < t.rank; a++) at += idx[a]! * t.strides[a]!;
    out[n] = phys[at]!;
    for (let a = t.rank - 1; a >= 0; a--) {
      if (++idx[a]! < t.shape[a]!) break;
      idx[a] = 0;
    }
  }
  return out;
}

/**
 * A [B, H, T, D] view that is not contiguous: heads interleaved as in a projection output
 * [B, T, 3, H, D] (q, k, v fused), of which the view picks slot `slot`.
 */
function stridedView(
  B: number,
  H: number,
  T: number,
  D: number,
  slot: number,
): { t: Tensor; logical: Float32Array } {
  const phys = rng.uniform(B * T * 3 * H * D);
  const fused = Tensor.from(phys, [B, T, 3, H, D]);
  const t = fused.permute([2, 0, 3, 1, 4]).narrow(0, slot, 1).squeeze(0); // [B, H, T, D]
  fused.dispose();
  expect(t.isContiguous()).toBe(false);
  return { t, logical: readView(phys, t) };
}

function build(c: Case): Built {
  const { B, Hq, Hkv, Tq, Tk, D } = c.s;
  let q: Tensor;
  let k: Tensor;
  let v: Tensor;
  let qh: Float32Array;
  let kh: Float32Array;
  let vh: Float32Array;
  if (c.layout === "strided") {
    ({ t: q, logical: qh } = stridedView(B, Hq, Tq, D, 0));
    ({ t: k, logical: kh } = stridedView(B, Hkv, Tk, D, 1));
    ({ t: v, logical: vh } = stridedView(B, Hkv, Tk, D, 2));
  } else {
    qh = rng.uniform(B * Hq * Tq * D, -2, 2);
    kh = rng.uniform(B * Hkv * Tk * D, -2, 2);
    vh = rng.uniform(B * Hkv * Tk * D);
    q = Tensor.from(qh, [B, Hq, Tq, D]);
    k = Tensor.from(kh, [B, Hkv, Tk, D]);
    v = Tensor.from(vh, [B, Hkv, Tk, D]);
  }
  const opts: AttentionOptions = { causal: c.causal, window: c.window, scale: c.scale };
  const refOpts: AttentionRefOptions = { causal: c.causal, window: c.window, scale: c.scale };
  if (c.keyPad) {
    const kp = Array.from({ length: B * Tk }, (_, n) => c.keyPad!(Math.floor(n / Tk), n % Tk));
    opts.keyPaddingMask =
      c.keyPadDtype === "f32" ? Tensor.from(kp, [B, Tk]) : Tensor.from(Int32Array.from(kp), [B, Tk]);
    refOpts.keyPaddingMask = kp;
  }
  if (c.mask === "additive") {
    // Random biases, some pairs at -inf; row 2 of batch 0 masked entirely.
    const m = Array.from({ length: B * Tq * Tk }, (_, n) => {
      const i = Math.floor(n / Tk) % Tq;
      if ((n < Tq * Tk && i === 2) || rng.next() < 0.2) return Number.NEGATIVE_INFINITY;
      return rng.next() * 2 - 1;
    });
    opts.mask = Tensor.from(m, [B, 1, Tq, Tk]);
    refOpts.mask = { data: m, heads: 1, kind: "additive" };
  } else if (c.mask === "boolean") {
    const m = Array.from({ length: B * Hq * Tq * Tk }, () => (rng.next() < 0.7 ? 1 : 0));
    opts.mask = Tensor.from(Int32Array.from(m), [B, Hq, Tq, Tk]);
    refOpts.mask = { data: m, heads: Hq, kind: "boolean" };
  }
  return { q, k, v, qh, kh, vh, opts, refOpts };
}

function dispose(b: Built): void {
  for (const t of [b.q, b.k, b.v, b.opts.keyPaddingMask, b.opts.mask]) t?.dispose();
}

describe("attention reference", () => {
  it("backward formulas match finite differences (f64)", () => {
    // GQA 2:1 with every mask kind at once, including a row that sees no key.
    const s: AttentionRefShape = { B: 1, Hq: 2, Hkv: 1, Tq: 4, Tk: 5, D: 3 };
    const opts: AttentionRefOptions = {
      causal: true,
      window: 3,
      keyPaddingMask: [0, 0, 1, 1, 1],
      mask: {
        data: Array.from({ length: 20 }, (_, n) => (n === 13 ? Number.NEGATIVE_INFINITY : Math.sin(n))),
        heads: 1,
        kind: "additive",
      },
      scale: 0.7,
    };
    const r = new Rng(3);
    const q = Float64Array.from(r.uniform(2 * 4 * 3, -2, 2));
    const k = Float64Array.from(r.uniform(5 * 3, -2, 2));
    const v = Float64Array.from(r.uniform(5 * 3, -2, 2));
    const w = Float64Array.from(r.uniform(2 * 4 * 3));
    const loss = ([a, b, c]: Float64Array[]) => {
      const { o } = attentionRef(s, a!, b!, c!, opts);
      return o.reduce((acc, x, n) => acc + x * w[n]!, 0);
    };
    const [dq, dk, dv] = finiteDifferences(loss, [q, k, v]);
    const g = attentionBackwardRef(s, q, k, v, w, opts);
    assertClose(g.dq, dq!, { atol: 1e-8, rtol: 1e-6, what: "dq" });
    assertClose(g.dk, dk!, { atol: 1e-8, rtol: 1e-6, what: "dk" });
    assertClose(g.dv, dv!, { atol: 1e-8, rtol: 1e-6, what: "dv" });
    // The row with no allowed key (query 0 at position 1: keys 0 and 1 are padded) is zero with L = -inf.
    const { o, lse } = attentionRef(s, q, k, v, opts);
    expect(lse[0]).toBe(Number.NEGATIVE_INFINITY);
    expect(Array.from(o.slice(0, 3))).toEqual([0, 0, 0]);
  });
});

describe("attention forward: GPU vs f64 reference", () => {
  for (const variant of forwardVariants) {
    it(`every mask, shape and layout (${variant})`, async () => {
      if (!(await runs(variant))) return;
      for (const c of cases) {
        const b = build(c);
        const { o, lse } = attentionForward(b.q, b.k, b.v, { ...b.opts, variant });
        const want = attentionRef(c.s, b.qh, b.kh, b.vh, b.refOpts);
        const what = `${c.name} (${variant})`;
        expect(o.shape).toEqual([c.s.B, c.s.Hq, c.s.Tq, c.s.D]);
        assertClose(await o.toFloat32(), want.o, { atol: 2e-5, rtol: 1e-4, what: `o: ${what}` });
        assertClose(await lse.toFloat32(), want.lse, { atol: 2e-5, rtol: 1e-5, what: `lse: ${what}` });
        for (const t of [o, lse]) t.dispose();
        dispose(b);
      }
    });
  }

  it("fully masked rows give 0, never NaN", async () => {
    const q = Tensor.from(rng.uniform(2 * 3 * 8), [2, 1, 3, 8]);
    const k = Tensor.from(rng.uniform(2 * 4 * 8), [2, 1, 4, 8]);
    const keyPaddingMask = Tensor.from(Int32Array.from([1, 1, 0, 1, 0, 0, 0, 0]), [2, 4]);
    for (const variant of forwardVariants) {
      if (!(await runs(variant))) continue;
      const { o, lse } = attentionForward(q, k, k, { keyPaddingMask, variant });
      const out = await o.toFloat32();
      expect(out.some(Number.isNaN)).toBe(false);
      expect(Array.from(out.slice(24))).toEqual(new Array(24).fill(0));
      expect(Array.from(await lse.toFloat32()).slice(3)).toEqual([-Infinity, -Infinity, -Infinity]);
    }
  });
});

describe("attention backward: GPU vs f64 reference", () => {
  // The forward cases, smaller where the reference backward would be slow.
  const backwardCases = cases
    .filter((c) => c.s.Tq * c.s.Tk <= 70 * 70)
    .map((c) => (c.s.D === 72 ? { ...c, s: { ...c.s, Tq: 40, Tk: 40 } } : c));
  for (const variant of variants) {
    it(`dq, dk, dv for every mask, shape and layout (${variant})`, async () => {
      if (!(await runs(variant))) return;
      for (const c of backwardCases) {
        const b = build(c);
        const opts = { ...b.opts, variant };
        const { o, lse } = attentionForward(b.q, b.k, b.v, opts);
        const doh = rng.uniform(o.size);
        const dout = Tensor.from(doh, o.shape);
        const g = attentionBackward(b.q, b.k, b.v, o, lse, dout, opts);
        const want = attentionBackwardRef(c.s, b.qh, b.kh, b.vh, doh, b.refOpts);
        const what = `${c.name} (${variant})`;
        expect(g.dk.shape).toEqual([c.s.B, c.s.Hkv, c.s.Tk, c.s.D]);
        assertClose(await g.dq.toFloat32(), want.dq, { atol: 1e-4, rtol: 1e-3, what: `dq: ${what}` });
        assertClose(await g.dk.toFloat32(), want.dk, { atol: 1e-4, rtol: 1e-3, what: `dk: ${what}` });
        assertClose(await g.dv.toFloat32(), want.dv, { atol: 1e-4, rtol: 1e-3, what: `dv: ${what}` });
        for (const t of [o, lse, dout, g.dq, g.dk, g.dv]) t.dispose();
        dispose(b);
      }
    });
  }

  for (const variant of variants) {
    it(`autograd: attention() gradients match finite differences of the reference (${variant})`, async () => {
      if (!(await runs(variant))) return;
      const s: AttentionRefShape = { B: 1, Hq: 4, Hkv: 2, Tq: 5, Tk: 6, D: 8 };
      const keyPad = [1, 1, 0, 1, 1, 1];
      const keyPaddingMask = Tensor.from(Int32Array.from(keyPad), [1, 6]);
      await checkGradients({
        inputs: [
          { shape: [1, 4, 5, 8], data: rng.uniform(160) },
          { shape: [1, 2, 6, 8], data: rng.uniform(96) },
          { shape: [1, 2, 6, 8], data: rng.uniform(96) },
        ],
        gpu: ([q, k, v]) => attention(q!, k!, v!, { causal: true, keyPaddingMask, variant }),
        reference: ([q, k, v]) => attentionRef(s, q!, k!, v!, { causal: true, keyPaddingMask: keyPad }).o,
        atol: 1e-4,
        rtol: 1e-3,
        what: `attention autograd (${variant})`,
      });
      keyPaddingMask.dispose();
    });
  }
});

describe("attention f16 storage", () => {
  it("matches the reference within f16 rounding", async () => {
    const device = await getDevice();
    if (!device.hasF16) {
      console.warn("attention f16: adapter lacks shader-f16, skipped");
      return;
    }
    const s: AttentionRefShape = { B: 1, Hq: 2, Hkv: 1, Tq: 17, Tk: 17, D: 16 };
    const qh = rng.uniform(2 * 17 * 16);
    const kh = rng.uniform(17 * 16);
    const vh = rng.uniform(17 * 16);
    // The reference sees the f16-rounded inputs, so only accumulation and output rounding differ.
    const q = Tensor.from(qh, [1, 2, 17, 16], { dtype: "f16" });
    const k = Tensor.from(kh, [1, 1, 17, 16], { dtype: "f16" });
    const v = Tensor.from(vh, [1, 1, 17, 16], { dtype: "f16" });
    const want = attentionRef(s, await q.toFloat32(), await k.toFloat32(), await v.toFloat32(), {
      causal: true,
    });
    for (const variant of forwardVariants) {
      if (!(await runs(variant))) continue;
      const { o } = attentionForward(q, k, v, { causal: true, variant });
      expect(o.dtype).toBe("f16");
      assertClose(await o.toFloat32(), want.o, { atol: 2e-3, rtol: 2e-3, what: `f16 o (${variant})` });
    }
  });
});

describe("attention input checks", () => {
  it("names the inputs and shapes it rejects", () => {
    const q = Tensor.from(rng.uniform(2 * 3 * 8), [1, 2, 3, 8]);
    const k = Tensor.from(rng.uniform(3 * 3 * 8), [1, 3, 3, 8]);
    const k8 = Tensor.from(rng.uniform(3 * 4), [1, 1, 3, 4]);
    expect(() => attentionForward(q, k, k)).toThrow(ShapeError);
    expect(() => attentionForward(q, k, k)).toThrow(
      /query heads 2 are not a multiple of KV heads 3: q \[1, 2, 3, 8\]/,
    );
    expect(() => attentionForward(q, k8, k8)).toThrow(/head dims differ/);
    expect(() => attentionForward(q.reshape([2, 3, 8]), k, k)).toThrow(
      /q must be \[B, H, T, D\], got \[2, 3, 8\]/,
    );
    const kv = Tensor.from(rng.uniform(3 * 8), [1, 1, 3, 8]);
    const badPad = Tensor.from(Int32Array.from([1, 1]), [1, 2]);
    expect(() => attentionForward(q, kv, kv, { keyPaddingMask: badPad })).toThrow(
      /keyPaddingMask must be \[B, Tk\] = \[1, 3\], got \[1, 2\]/,
    );
    expect(() => attentionForward(q, kv, kv, { window: -1 })).toThrow(/window/);
    const qi = Tensor.from(Int32Array.from(new Array(48).fill(1)), [1, 2, 3, 8]);
    expect(() => attentionForward(qi, kv, kv)).toThrow(DTypeError);
  });
});
