// Test-only helpers: the idefics2-tiny fixture (HF transformers 4.45.2 reference) and comparisons
// restricted to real-token positions. Not exported from the package.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { type ReadTensor, readSafetensorsFile, toFloat32, toInt32 } from "@webvlm/tensor";
import { compare } from "@webvlm/tensor/testing";
import type { MistralConfig } from "./config.js";
import { parseMistralConfig } from "./config.js";
import { MistralForCausalLM } from "./mistral.js";

const DIR = new URL("../../../fixtures/idefics2-tiny/", import.meta.url);
export const fixturePath = (name: string): string => fileURLToPath(new URL(name, DIR));

export const CASES = ["single", "batch", "split"] as const;
export type CaseName = (typeof CASES)[number];

export async function textConfig(): Promise<MistralConfig> {
  const raw = JSON.parse(await readFile(fixturePath("config.json"), "utf8"));
  return parseMistralConfig(raw.text_config);
}

/** The fixture's text model: `model.text_model.*` plus `lm_head.weight` at the root. */
export async function loadTinyLm(): Promise<MistralForCausalLM> {
  const lm = new MistralForCausalLM(await textConfig());
  await lm.load(fixturePath("model.safetensors"), { prefix: "model.text_model", lmHeadPrefix: "lm_head" });
  return lm;
}

export class Case {
  constructor(
    readonly name: CaseName,
    private readonly tensors: Map<string, ReadTensor>,
  ) {}

  static async open(name: CaseName): Promise<Case> {
    return new Case(name, await readSafetensorsFile(fixturePath(`case_${name}.safetensors`)));
  }

  private get(key: string): ReadTensor {
    const t = this.tensors.get(`${this.name}.${key}`);
    if (!t) throw new Error(`fixture case_${this.name}: no tensor ${this.name}.${key}`);
    return t;
  }
  shape(key: string): number[] {
    return [...this.get(key).shape];
  }
  f32(key: string): Float32Array {
    return toFloat32(this.get(key));
  }
  i32(key: string): Int32Array {
    return toInt32(this.get(key));
  }
  get batch(): number {
    return this.shape("attention_mask")[0]!;
  }
  get seqLen(): number {
    return this.shape("attention_mask")[1]!;
  }
}

/**
 * Max |a - e| over the rows [b, t, :] whose mask is 1 (real tokens); throws past `atol`
 * naming the worst [b, t, i]. Returns the max abs diff.
 */
export function compareRealTokens(
  what: string,
  actual: Float32Array,
  expected: Float32Array,
  mask: Int32Array,
  width: number,
  atol: number,
): number {
  if (actual.length !== expected.length || actual.length !== mask.length * width) {
    throw new Error(
      `${what}: sizes differ: ${actual.length} actual, ${expected.length} expected, mask ${mask.length} × ${width}`,
    );
  }
  const a: number[] = [];
  const e: number[] = [];
  const where: number[] = [];
  for (let r = 0; r < mask.length; r++) {
    if (!mask[r]) continue;
    for (let i = 0; i < width; i++) {
      a.push(actual[r * width + i]!);
      e.push(expected[r * width + i]!);
      where.push(r * width + i);
    }
  }
  const rep = compare(a, e);
  if (!(rep.maxAbs <= atol)) {
    const flat = where[rep.worstIndex]!;
    const row = Math.floor(flat / width);
    throw new Error(
      `${what}: max abs diff ${rep.maxAbs} > ${atol} at row ${row} (flat [b·T + t] over the mask), feature ${flat % width}: ${rep.actual} vs ${rep.expected}`,
    );
  }
  return rep.maxAbs;
}

/** Collected per-tensor max abs diffs, printed once per file for the report. */
export const diffs: [string, number][] = [];
