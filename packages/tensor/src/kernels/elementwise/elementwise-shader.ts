import type { DType } from "../../dtype.js";
import template from "./elementwise.wgsl";
import tiledTemplate from "./elementwise-tiled.wgsl";
import vec4Template from "./elementwise-vec4.wgsl";

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
  const loads = s.inputs
    .map((_, k) => `  let ${names[k]} = ${s.compute}(in_${names[k]}[i${names[k]}]);`)
    .join("\n");
  const body = `${loads}\n  out[io] = ${s.output}(${s.expr});`;
  return template
    .replace("{{ENABLE}}", usesF16 ? "enable f16;" : "")
    .replace("{{BINDINGS}}", bindings)
    .replace("{{PARAMS_BINDING}}", String(s.inputs.length + 1))
    .replace("{{STRIDED}}", s.strided ? "true" : "false")
    .replace("{{PER}}", String(ELEMENTS_PER_INVOCATION))
    .replaceAll("{{BODY}}", body);
}

/** How a tiled kernel reads or writes one operand: vec4 along X, vec4 along Y, or scalars. */
export type TileAccess = "x" | "y" | "s";

export interface Vec4Shader {
  inputs: readonly DType[];
  output: DType;
  expr: string;
  compute: "f32" | "i32" | "u32";
}

/** vec4 invocations per thread of the contiguous vec4 kernel. */
export const VEC4_PER_INVOCATION = 4;

function enableFor(s: { inputs: readonly DType[]; output: DType }): string {
  return s.output === "f16" || s.inputs.includes("f16") ? "enable f16;" : "";
}

/** Contiguous operands starting at multiples of 4 elements: `elementwise-vec4.wgsl`. */
export function vec4Shader(s: Vec4Shader): string {
  const names = ["a", "b"];
  const bindings = s.inputs
    .map((t, k) => `@group(0) @binding(${k}) var<storage, read> in_${names[k]}: array<vec4<${t}>>;`)
    .concat(`@group(0) @binding(${s.inputs.length}) var<storage, read_write> out: array<vec4<${s.output}>>;`)
    .join("\n");
  const fast: string[] = s.inputs.map(
    (_, k) => `      let v${names[k]} = in_${names[k]}[p.off_${names[k]} + i];`,
  );
  for (let c = 0; c < 4; c++) {
    const lets = s.inputs.map((_, k) => `let ${names[k]} = ${s.compute}(v${names[k]}[${c}]);`).join(" ");
    fast.push(`      { ${lets} t[${c}] = ${s.output}(${s.expr}); }`);
  }
  fast.push(`      out[p.off_o + i] = vec4<${s.output}>(t[0], t[1], t[2], t[3]);`);
  const slowLets = s.inputs
    .map((_, k) => `let ${names[k]} = ${s.compute}(in_${names[k]}[p.off_${names[k]} + i][c]);`)
    .join(" ");
  const slow = `        { ${slowLets} out[p.off_o + i][c] = ${s.output}(${s.expr}); }`;
  return vec4Template
    .replace("{{ENABLE}}", enableFor(s))
    .replace("{{BINDINGS}}", bindings)
    .replace("{{PARAMS_BINDING}}", String(s.inputs.length + 1))
    .replace("{{PER}}", String(VEC4_PER_INVOCATION))
    .replace("{{OUT}}", s.output)
    .replace("{{FAST}}", fast.join("\n"))
    .replace("{{SLOW}}", slow);
}

export interface TiledShader extends Vec4Shader {
  /** Per input, how its 4×4 tile is loaded. */
  access: readonly TileAccess[];
  /** How the output tile is stored. */
  outAccess: TileAccess;
}

/** Strided operands in 4×4 tiles of (Y, X): `elementwise-tiled.wgsl`. */
export function tiledShader(s: TiledShader): string {
  const names = ["a", "b"];
  const field = ["x", "y", "z"]; // component of p.sx / p.sy holding a's, b's, out's stride
  const elem = (t: DType, acc: TileAccess) => (acc === "s" ? t : `vec4<${t}>`);
  const bindings = s.inputs
    .map(
      (t, k) =>
        `@group(0) @binding(${k}) var<storage, read> in_${names[k]}: array<${elem(t, s.access[k]!)}>;`,
    )
    .concat(
      `@group(0) @binding(${s.inputs.length}) var<storage, read_write> out: array<${elem(s.output, s.outAccess)}>;`,
    )
    .join("\n");
  const at = (k: number, r: number, c: number) => {
    const n = k === 2 ? "o" : names[k]!;
    const f = field[k]!;
    return `i${n} + ${r}u * p.sy.${f} + ${c}u * p.sx.${f}`;
  };
  const fast: string[] = [];
  // Whole rows (or columns) of each operand's tile, one vec4 access each.
  s.inputs.forEach((_, k) => {
    const n = names[k]!;
    const acc = s.access[k]!;
    for (let q = 0; q < 4; q++) {
      if (acc === "x") fast.push(`    let ${n}${q} = in_${n}[(${at(k, q, 0)}) >> 2u];`);
      if (acc === "y") fast.push(`    let ${n}${q} = in_${n}[(${at(k, 0, q)}) >> 2u];`);
    }
  });
  const pick = (k: number, r: number, c: number) => {
    const n = names[k]!;
    const acc = s.access[k]!;
    if (acc === "x") return `${n}${r}[${c}]`;
    if (acc === "y") return `${n}${c}[${r}]`;
    return `in_${n}[${at(k, r, c)}]`;
  };
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      const lets = s.inputs.map((_, k) => `let ${names[k]} = ${s.compute}(${pick(k, r, c)});`).join(" ");
      fast.push(`    { ${lets} t[${r * 4 + c}] = ${s.output}(${s.expr}); }`);
    }
  }
  const o = 2;
  for (let q = 0; q < 4; q++) {
    if (s.outAccess === "x") {
      fast.push(
        `    out[(${at(o, q, 0)}) >> 2u] = vec4<${s.output}>(t[${q * 4}], t[${q * 4 + 1}], t[${q * 4 + 2}], t[${q * 4 + 3}]);`,
      );
    } else if (s.outAccess === "y") {
      fast.push(
        `    out[(${at(o, 0, q)}) >> 2u] = vec4<${s.output}>(t[${q}], t[${q + 4}], t[${q + 8}], t[${q + 12}]);`,
      );
    } else {
      for (let c = 0; c < 4; c++) fast.push(`    out[${at(o, q, c)}] = t[${q * 4 + c}];`);
    }
  }
  const slow: string[] = [];
  s.inputs.forEach((_, k) => {
    const n = names[k]!;
    const f = field[k]!;
    slow.push(`        let e${n} = i${n} + yr * p.sy.${f} + xc * p.sx.${f};`);
    const load = s.access[k] === "s" ? `in_${n}[e${n}]` : `in_${n}[e${n} >> 2u][e${n} & 3u]`;
    slow.push(`        let ${n} = ${s.compute}(${load});`);
  });
  slow.push("        if (r < p.ny - y0 && c < p.nx - x0) {");
  slow.push("          let eo = io + r * p.sy.z + c * p.sx.z;");
  slow.push(`          out[${s.outAccess === "s" ? "eo" : "eo >> 2u][eo & 3u"}] = ${s.output}(${s.expr});`);
  slow.push("        }");
  return tiledTemplate
    .replace("{{ENABLE}}", enableFor(s))
    .replace("{{BINDINGS}}", bindings)
    .replace("{{PARAMS_BINDING}}", String(s.inputs.length + 1))
    .replaceAll("{{OUT}}", s.output)
    .replace("{{FAST}}", fast.join("\n"))
    .replace("{{SLOW}}", slow.join("\n"));
}
