import type { Module } from "@webvlm/nn";
import { Tensor } from "@webvlm/tensor";

/** mulberry32: a small seeded generator, so an initialisation is reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface InitOptions {
  seed?: number;
  /** Std of the normal draws for weights (HF's initializer_range). Default 0.02. */
  std?: number;
  /** Only parameters that have no value yet (e.g. new connector weights beside a loaded backbone). Default false. */
  onlyMissing?: boolean;
}

/**
 * Fresh weights for a connector trained from scratch, following HF's `_init_weights` conventions:
 * norm weights 1, biases 0, tanh gates 0 (a new cross-attention block starts as the identity),
 * everything else (linear weights, latents) normal(0, std).
 */
export function initConnectorWeights(module: Module, options: InitOptions = {}): void {
  const { seed = 0, std = 0.02, onlyMissing = false } = options;
  const next = rng(seed);
  for (const [name, p] of module.namedParameters()) {
    if (onlyMissing && p.loaded) continue;
    const n = p.shape.reduce((a, d) => a * d, 1);
    const data = new Float32Array(n);
    const leaf = name.split(".").slice(-2).join(".");
    if (/norm\.weight$/.test(leaf)) data.fill(1);
    else if (/(^|\.)bias$/.test(leaf) || /_gate$/.test(leaf)) data.fill(0);
    else {
      for (let i = 0; i < n; i += 2) {
        const u = Math.max(next(), 1e-12);
        const r = std * Math.sqrt(-2 * Math.log(u));
        const a = 2 * Math.PI * next();
        data[i] = r * Math.cos(a);
        if (i + 1 < n) data[i + 1] = r * Math.sin(a);
      }
    }
    p.set(Tensor.from(data, p.shape));
  }
}
