import type { DType } from "../../dtype.js";
import template from "./elementwise.wgsl";

export interface ElementwiseShader {
  /** Operand dtypes, in binding order (1 or 2 inputs). */
  inputs: readonly DType[];
  output: DType;
  /** WGSL expression of the result in the compute type; inputs are `a`, `b`; scalars `alpha`, `beta`. */
  expr: string;
  /** Compute type the inputs are converted to before `expr`. */
  compute: "f32" | "i32" | "u32";
  strided: boolean;
}

/** Elements each invocation maps; launchers size grids with it. */
export const ELEMENTS_PER_INVOCATION = 8;

/** The one generator of elementwise WGSL; `DUMP_WGSL=1` prints what it makes. */
export function elementwiseShader(s: ElementwiseShader): string {
  const usesF16 = s.output === "f16" || s.inputs.includes("f16");
  const names = ["a", "b"];
  const bindings = s.inputs
    .map((t, k) => `@group(0) @binding(${k}) var<storage, read> in_${names[k]}: array<${t}>;`)
    .concat(`@group(0) @binding(${s.inputs.length}) var<storage, read_write> out: array<${s.output}>;`)
    .join("\n");
  const loads = s.inputs.map((_, k) => `  let ${names[k]} = ${s.compute}(in_${names[k]}[i${names[k]}]);`).join("\n");
  const body = `${loads}\n  out[io] = ${s.output}(${s.expr});`;
  return template
    .replace("{{ENABLE}}", usesF16 ? "enable f16;" : "")
    .replace("{{BINDINGS}}", bindings)
    .replace("{{PARAMS_BINDING}}", String(s.inputs.length + 1))
    .replace("{{STRIDED}}", s.strided ? "true" : "false")
    .replace("{{PER}}", String(ELEMENTS_PER_INVOCATION))
    .replaceAll("{{BODY}}", body);
}
