// WGSL for batched matmul, generated per variant: tile sizes and layouts are compile-time constants,
// because both kinds of hardware want them unrolled (registers on a GPU, SIMD lanes on lavapipe).
//
// Semantics (every variant): for z in [0, batch), m in [0, M), n in [0, N)
//   C[z, m, n] = sum_k A[z, m, k] * B[z, k, n]  (+ bias[n] when flags & 1) (+ C[z, m, n] when flags & 2)
// where every operand is addressed through element strides, so transposed and broadcast operands
// (batch stride 0) are read in place:
//   A[z, m, k] = a[aOff + z0*aB0 + z1*aB1 + m*aRow + k*aCol]      z0 = z / batchInner, z1 = z % batchInner
//   B[z, k, n] = b[bOff + z0*bB0 + z1*bB1 + k*bRow + n*bCol]
//   C[z, m, n] = c[cOff + z0*cB0 + z1*cB1 + m*cRow + n*cCol]
//   bias[n]    = bias[biasOff + n*biasStride]
// Accumulation is f32 for every storage dtype.
//
// Bindings (group 0): 0 a, 1 b, 2 bias (a 16-byte dummy when unused), 3 c (read_write), 4 uniform Params.
// f16 operands are bound as array<u32> (two halves per word) and unpacked in the shader: one 32-bit
// load then yields two values, which halves the loads that dominate lavapipe's inner loop.

export type MatmulDType = "f32" | "f16";

/** Shared fields of every variant. */
interface VariantBase {
  dtype: MatmulDType;
}

/**
 * CPU (lavapipe) kernel. lavapipe runs a workgroup on one CPU thread, 8 invocations per AVX2 vector
 * (one subgroup), and turns every storage-buffer load with a non-constant address into a per-lane
 * loop: a branch on the lane's mask, a reload of the buffer's base and size, and per component a
 * bounds check, a scalar load and an insert (10-20 instructions per element, against 2 for a vector
 * FMA). So the kernel is built to maximise FMAs per loaded element and spends nothing on shared
 * memory or barriers:
 * - each lane loads `ra` elements of A (rows row0 + r*sg + lane) and `tn` elements of B per k;
 * - `subgroupBroadcast(aValue, l)` (a register shuffle on lavapipe) hands every lane all sg*ra rows,
 *   so a subgroup computes a (sg*ra) x (sg*tn) block with ra + tn loads per lane per k;
 * - wide loads (vec4 of f32, up to 8 halves of f16 per vec4<u32>) along a contiguous axis share one
 *   per-lane loop between their components, which roughly halves the cost per element.
 * Without broadcast (no subgroups feature, or M too small to fill sg rows: a GEMV) the tile has `ra`
 * rows, which every lane loads itself.
 */
export interface CpuVariant extends VariantBase {
  kind: "cpu";
  /** Subgroup size the shader is specialised for (lavapipe: 8, or 16 with LP_NATIVE_VECTOR_WIDTH=512). */
  sg: number;
  /** A elements loaded per lane per k; the tile has sg*ra rows with broadcast, else ra. */
  ra: number;
  /** B columns per lane; a subgroup covers sg*tn columns. */
  tn: number;
  /** Subgroups per workgroup, side by side along N. */
  wgSubgroups: number;
  /** k steps per loop iteration: amortises lavapipe's per-iteration masked stores of the accumulators. A multiple of aw (and of bw when bAxis is "k"). */
  ku: number;
  /** Use subgroupBroadcast (needs the `subgroups` feature). */
  broadcast: boolean;
  /** Elements of A per load along k (needs aCol = 1 and offsets/aRow multiples of aw): f32 1|4, f16 1|2|4|8. */
  aw: number;
  /** Elements of B per load, along `bAxis`: "k" needs bRow = 1, "n" needs bCol = 1 (and tn a multiple of bw). */
  bw: number;
  bAxis: "k" | "n";
}

/**
 * GPU kernel: classic workgroup tiling. A (tm*wgM) x (tn*wgN) tile of C per workgroup, k in slabs of
 * `bk` staged in workgroup memory; each invocation accumulates a tm x tn register block from vec4
 * reads of the staged slabs. Global loads are scalar and strided but coalesced: consecutive
 * invocations read consecutive addresses along whichever axis is contiguous (`aKContig`, `bNContig`).
 */
export interface GpuVariant extends VariantBase {
  kind: "gpu";
  /** Rows / columns per invocation; multiples of 4 (vec4 reads from workgroup memory). */
  tm: number;
  tn: number;
  /** Invocations per workgroup along M and N. */
  wgM: number;
  wgN: number;
  /** k slab staged per barrier. */
  bk: number;
  /** A's k axis is the contiguous one (aCol == 1): stage A with consecutive invocations along k. */
  aKContig: boolean;
  /** B's n axis is the contiguous one (bCol == 1). */
  bNContig: boolean;
}

export type MatmulVariant = CpuVariant | GpuVariant;

/** Rows and columns of C covered by one workgroup. */
export function tileOf(v: MatmulVariant): { rows: number; cols: number } {
  if (v.kind === "cpu") return { rows: v.broadcast ? v.sg * v.ra : v.ra, cols: v.sg * v.tn * v.wgSubgroups };
  return { rows: v.tm * v.wgM, cols: v.tn * v.wgN };
}

export function variantKey(v: MatmulVariant): string {
  if (v.kind === "cpu") {
    return `cpu-${v.dtype}-sg${v.sg}-ra${v.ra}-tn${v.tn}-w${v.wgSubgroups}-ku${v.ku}-a${v.aw}-b${v.bw}${v.bAxis}${v.broadcast ? "-bc" : ""}`;
  }
  return `gpu-${v.dtype}-${v.tm}x${v.tn}-wg${v.wgM}x${v.wgN}-bk${v.bk}${v.aKContig ? "-ak" : "-am"}${v.bNContig ? "-bn" : "-bk"}`;
}

/** Uniform block layout, 24 u32 (96 bytes). Keep in sync with `paramsStruct`. */
export const PARAM_FIELDS = [
  "M",
  "N",
  "K",
  "batchInner",
  "aOff",
  "aB0",
  "aB1",
  "aRow",
  "aCol",
  "bOff",
  "bB0",
  "bB1",
  "bRow",
  "bCol",
  "cOff",
  "cB0",
  "cB1",
  "cRow",
  "cCol",
  "biasOff",
  "biasStride",
  "flags",
  "pad0",
  "pad1",
] as const;
export type MatmulParams = Record<(typeof PARAM_FIELDS)[number], number>;
export const FLAG_BIAS = 1;
export const FLAG_ACCUMULATE = 2;

const paramsStruct = `struct Params {
${PARAM_FIELDS.map((f) => `  ${f}: u32,`).join("\n")}
}`;

/** WGSL element type of an operand array read `w` elements at a time. */
function arrayType(dtype: MatmulDType, w: number): string {
  if (dtype === "f32") return w === 1 ? "f32" : `vec${w}<f32>`;
  const words = Math.max(1, w / 2);
  return words === 1 ? "u32" : `vec${words}<u32>`;
}

/** Scalar element i of an operand array whose entries hold `w` elements. */
function scalarLoad(arr: string, dtype: MatmulDType, w: number): string {
  if (dtype === "f32") return w === 1 ? `${arr}[i]` : `${arr}[i >> 2u][i & 3u]`;
  const words = Math.max(1, w / 2);
  const word = words === 1 ? `${arr}[i >> 1u]` : `${arr}[i >> ${Math.log2(w)}u][(i >> 1u) & ${words - 1}u]`;
  return `unpack2x16float(${word})[i & 1u]`;
}

function header(v: MatmulVariant): string {
  const enables: string[] = [];
  if (v.dtype === "f16") enables.push("enable f16;");
  if (v.kind === "cpu" && v.broadcast) enables.push("enable subgroups;");
  const aw = v.kind === "cpu" ? v.aw : 1;
  const bw = v.kind === "cpu" ? v.bw : 1;
  const out = v.dtype === "f16" ? "f16" : "f32";
  return `${enables.join("\n")}
// matmul ${variantKey(v)}: C[z] = A[z] * B[z] (+ bias), all operands addressed by element strides.
${paramsStruct}
@group(0) @binding(0) var<storage, read> a: array<${arrayType(v.dtype, aw)}>;
@group(0) @binding(1) var<storage, read> b: array<${arrayType(v.dtype, bw)}>;
@group(0) @binding(2) var<storage, read> bias: array<${out}>;
@group(0) @binding(3) var<storage, read_write> c: array<${out}>;
@group(0) @binding(4) var<uniform> p: Params;
// Element i (in elements of the operand's dtype) of a and b.
fn ldA(i: u32) -> f32 { return ${scalarLoad("a", v.dtype, aw)}; }
fn ldB(i: u32) -> f32 { return ${scalarLoad("b", v.dtype, bw)}; }
fn ldBias(n: u32) -> f32 { return f32(bias[p.biasOff + n * p.biasStride]); }
// FLAG_ACCUMULATE adds to what c holds: a K split into several dispatches (operands over one binding).
fn st(i: u32, v: f32) {
  var x = v;
  if ((p.flags & ${FLAG_ACCUMULATE}u) != 0u) { x += f32(c[i]); }
  c[i] = ${v.dtype === "f16" ? "f16(x)" : "x"};
}
`;
}

/** The shader for one variant. */
export function matmulShader(v: MatmulVariant): string {
  validateVariant(v);
  return v.kind === "cpu" ? cpuShader(v) : gpuShader(v);
}

export function validateVariant(v: MatmulVariant): void {
  const bad = (what: string) => {
    throw new Error(`matmulShader: invalid variant ${JSON.stringify(v)}: ${what}`);
  };
  if (v.kind === "cpu") {
    if (v.sg < 1 || v.ra < 1 || v.tn < 1 || v.wgSubgroups < 1 || v.ku < 1) bad("sizes must be >= 1");
    const widths = v.dtype === "f16" ? [1, 2, 4, 8] : [1, 4];
    if (!widths.includes(v.aw) || !widths.includes(v.bw))
      bad(`load widths must be one of ${widths.join(", ")}`);
    if (v.ku % v.aw !== 0 || (v.bAxis === "k" && v.ku % v.bw !== 0))
      bad("ku must be a multiple of the k-axis load widths");
    if (v.bAxis === "n" && v.tn % v.bw !== 0) bad("tn must be a multiple of bw along n");
    if (v.broadcast && v.sg < 2) bad("broadcast needs sg >= 2");
  } else {
    if (v.tm % 4 !== 0 || v.tn % 4 !== 0) bad("tm and tn must be multiples of 4");
    const threads = v.wgM * v.wgN;
    if ((v.tm * v.wgM * v.bk) % threads !== 0 || (v.tn * v.wgN * v.bk) % threads !== 0)
      bad("slabs must split evenly over the workgroup");
  }
}

// ---- CPU (lavapipe) ----------------------------------------------------------------------------

function cpuShader(v: CpuVariant): string {
  const { sg, ra, tn, ku, aw, bw } = v;
  const rows = tileOf(v).rows;
  const bAlongN = v.bAxis === "n" && bw > 1;
  // A values each lane loads: with broadcast its own row of each ra-group, else all ra rows of the tile.
  const loadRows = ra;
  const L: string[] = [];
  L.push(header(v));
  L.push(`@compute @workgroup_size(${sg * v.wgSubgroups})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32${
    v.broadcast ? ", @builtin(subgroup_invocation_id) lane: u32" : ""
  }) {
  let z0 = wid.z / p.batchInner;
  let z1 = wid.z % p.batchInner;
  let aBase = p.aOff + z0 * p.aB0 + z1 * p.aB1;
  let bBase = p.bOff + z0 * p.bB0 + z1 * p.bB1;
  let cBase = p.cOff + z0 * p.cB0 + z1 * p.cB1;${v.broadcast ? "" : `\n  let lane = li % ${sg}u;`}
  let row0 = wid.y * ${rows}u;
  let col0 = (wid.x * ${v.wgSubgroups}u + li / ${sg}u) * ${sg * tn}u;
  // Out-of-range rows/columns are clamped so every load stays inside the operand; their results are dropped at the store.
  let mMax = p.M - 1u;
  let nMax = p.N - 1u;`);
  for (let r = 0; r < loadRows; r++) {
    const row = v.broadcast ? `row0 + ${r * sg}u + lane` : `row0 + ${r}u`;
    L.push(`  let ar${r} = aBase + min(${row}, mMax) * p.aRow;`);
  }
  // Lane's columns: contiguous (col0 + lane*tn + c) so that wide loads along n cover them.
  const col = (c: number) => `col0 + lane * ${tn}u + ${c}u`;
  for (let c = 0; c < tn; c++) L.push(`  let bc${c} = bBase + min(${col(c)}, nMax) * p.bCol;`);
  if (bAlongN) {
    // Wide loads along n start at the lane's first column, kept on a whole load inside [0, N).
    L.push(`  let bn = bBase + min(${col(0)}, nMax & ~${bw - 1}u);`);
  }
  for (let r = 0; r < rows; r++) for (let c = 0; c < tn; c++) L.push(`  var acc${r}_${c} = 0.0;`);

  const shift = (w: number) => `${Math.log2(w)}u`;
  // Values of one load of `w` elements, as f32 expressions.
  const unpack = (name: string, w: number): string[] => {
    if (v.dtype === "f32") return w === 1 ? [name] : [0, 1, 2, 3].map((j) => `${name}[${j}]`);
    const words = w / 2;
    if (words < 1) return [name]; // scalar halves come from ldA/ldB already as f32
    const out: string[] = [];
    for (let j = 0; j < words; j++) {
      const word = words === 1 ? name : `${name}[${j}]`;
      out.push(`unpack2x16float(${word})[0]`, `unpack2x16float(${word})[1]`);
    }
    return out;
  };

  // Main loop body for ku consecutive k: the loads, then the outer-product FMAs.
  const body = (): string[] => {
    const S: string[] = [];
    const va: string[][] = Array.from({ length: loadRows }, () => []);
    const vb: string[][] = Array.from({ length: tn }, () => []);
    for (let r = 0; r < loadRows; r++) {
      for (let u = 0; u < ku; u += aw) {
        const name = `la${r}_${u}`;
        if (aw === 1) S.push(`    let ${name} = ldA(ar${r} + ka${u ? ` + ${u}u * p.aCol` : ""});`);
        else S.push(`    let ${name} = a[(ar${r} + k + ${u}u) >> ${shift(aw)}];`);
        va[r]!.push(...unpack(name, aw));
      }
    }
    if (bAlongN) {
      for (let u = 0; u < ku; u++) {
        for (let j = 0; j < tn; j += bw) {
          const name = `lb${j}_${u}`;
          S.push(`    let ${name} = b[(bn + (k + ${u}u) * p.bRow + ${j}u) >> ${shift(bw)}];`);
          unpack(name, bw).forEach((x, i) => {
            vb[j + i]!.push(x);
          });
        }
      }
    } else {
      for (let c = 0; c < tn; c++) {
        for (let u = 0; u < ku; u += bw) {
          const name = `lb${c}_${u}`;
          if (bw === 1) S.push(`    let ${name} = ldB(bc${c} + kb${u ? ` + ${u}u * p.bRow` : ""});`);
          else S.push(`    let ${name} = b[(bc${c} + k + ${u}u) >> ${shift(bw)}];`);
          vb[c]!.push(...unpack(name, bw));
        }
      }
    }
    // f16 unpacks are shared: bind them once per value.
    S.push(
      ...fmas(
        ku,
        (r, u) => va[r]![u]!,
        (c, u) => vb[c]![u]!,
      ),
    );
    return S;
  };
  // FMAs ordered accumulator-major (k innermost) so each accumulator takes its ku updates in a row:
  // with more accumulators than registers, that is one spill load/store per ku FMAs instead of per FMA.
  const fmas = (
    steps: number,
    va: (r: number, u: number) => string,
    vb: (c: number, u: number) => string,
  ): string[] => {
    const S: string[] = [];
    for (let u = 0; u < steps; u++) for (let c = 0; c < tn; c++) S.push(`    let b${c}_${u} = ${vb(c, u)};`);
    for (let r = 0; r < rows; r++) {
      const xs = [];
      for (let u = 0; u < steps; u++) {
        const x = v.broadcast ? `subgroupBroadcast(${va(Math.floor(r / sg), u)}, ${r % sg}u)` : va(r, u);
        xs.push(`let x${u} = ${x};`);
      }
      const terms = [];
      for (let c = 0; c < tn; c++) {
        let e = `acc${r}_${c}`;
        for (let u = 0; u < steps; u++) e = `fma(x${u}, b${c}_${u}, ${e})`;
        terms.push(`acc${r}_${c} = ${e};`);
      }
      S.push(`    { ${xs.join(" ")} ${terms.join(" ")} }`);
    }
    return S;
  };

  L.push(`  let kMain = p.K - p.K % ${ku}u;
  var ka = 0u;
  var kb = 0u;
  for (var k = 0u; k < kMain; k += ${ku}u) {`);
  L.push(...body());
  L.push(`    ka += ${ku}u * p.aCol;
    kb += ${ku}u * p.bRow;
  }`);
  if (ku > 1) {
    // The last K % ku steps, one element at a time.
    L.push(`  for (var k = kMain; k < p.K; k++) {`);
    for (let c = 0; c < tn; c++) L.push(`    let b${c}_0 = ldB(bc${c} + k * p.bRow);`);
    for (let r = 0; r < loadRows; r++) L.push(`    let ta${r} = ldA(ar${r} + k * p.aCol);`);
    for (let r = 0; r < rows; r++) {
      const x = v.broadcast ? `subgroupBroadcast(ta${Math.floor(r / sg)}, ${r % sg}u)` : `ta${r}`;
      const terms = [];
      for (let c = 0; c < tn; c++) terms.push(`acc${r}_${c} = fma(x, b${c}_0, acc${r}_${c});`);
      L.push(`    { let x = ${x}; ${terms.join(" ")} }`);
    }
    L.push("  }");
  }

  // Store: the lane owns columns col0 + lane*tn + c of every row in the tile.
  L.push(`  let hasBias = (p.flags & ${FLAG_BIAS}u) != 0u;`);
  for (let c = 0; c < tn; c++) {
    L.push(`  {
    let col = ${col(c)};
    if (col < p.N) {
      let bv = select(0.0, ldBias(col), hasBias);
      let cc = cBase + col * p.cCol;`);
    for (let r = 0; r < rows; r++) {
      L.push(`      if (row0 + ${r}u < p.M) { st(cc + (row0 + ${r}u) * p.cRow, acc${r}_${c} + bv); }`);
    }
    L.push("    }\n  }");
  }
  L.push("}");
  return L.join("\n");
}

// ---- GPU ---------------------------------------------------------------------------------------

function gpuShader(v: GpuVariant): string {
  const { tm, tn, wgM, wgN, bk } = v;
  const BM = tm * wgM;
  const BN = tn * wgN;
  const threads = wgM * wgN;
  const aPer = (BM * bk) / threads;
  const bPer = (BN * bk) / threads;
  const L: string[] = [];
  L.push(header(v));
  // Slabs stored k-major so the inner loop reads vec4 along m and n.
  L.push(`var<workgroup> As: array<vec4<f32>, ${(bk * BM) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(bk * BN) / 4}>;

@compute @workgroup_size(${wgN}, ${wgM})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let z0 = wid.z / p.batchInner;
  let z1 = wid.z % p.batchInner;
  let aBase = p.aOff + z0 * p.aB0 + z1 * p.aB1;
  let bBase = p.bOff + z0 * p.bB0 + z1 * p.bB1;
  let cBase = p.cOff + z0 * p.cB0 + z1 * p.cB1;
  let row0 = wid.y * ${BM}u;
  let col0 = wid.x * ${BN}u;
  var acc: array<array<f32, ${tn}>, ${tm}>;
  for (var k0 = 0u; k0 < p.K; k0 += ${bk}u) {`);
  // Stage A: element e of the slab -> (m, k); consecutive invocations walk the contiguous axis.
  for (let i = 0; i < aPer; i++) {
    const e = `li + ${i * threads}u`;
    const [m, k] = v.aKContig
      ? [`(${e}) / ${bk}u`, `(${e}) % ${bk}u`]
      : [`(${e}) % ${BM}u`, `(${e}) / ${BM}u`];
    L.push(`    {
      let m = ${m}; let k = ${k};
      let gm = row0 + m; let gk = k0 + k;
      let ok = gm < p.M && gk < p.K;
      let x = select(0.0, ldA(aBase + min(gm, p.M - 1u) * p.aRow + min(gk, p.K - 1u) * p.aCol), ok);
      As[(k * ${BM}u + m) / 4u][m % 4u] = x;
    }`);
  }
  for (let i = 0; i < bPer; i++) {
    const e = `li + ${i * threads}u`;
    const [n, k] = v.bNContig
      ? [`(${e}) % ${BN}u`, `(${e}) / ${BN}u`]
      : [`(${e}) / ${bk}u`, `(${e}) % ${bk}u`];
    L.push(`    {
      let n = ${n}; let k = ${k};
      let gn = col0 + n; let gk = k0 + k;
      let ok = gn < p.N && gk < p.K;
      let x = select(0.0, ldB(bBase + min(gk, p.K - 1u) * p.bRow + min(gn, p.N - 1u) * p.bCol), ok);
      Bs[(k * ${BN}u + n) / 4u][n % 4u] = x;
    }`);
  }
  L.push(`    workgroupBarrier();
    for (var k = 0u; k < ${bk}u; k++) {`);
  for (let i = 0; i < tm / 4; i++)
    L.push(`      let a${i} = As[(k * ${BM}u) / 4u + lid.y * ${tm / 4}u + ${i}u];`);
  for (let j = 0; j < tn / 4; j++)
    L.push(`      let b${j} = Bs[(k * ${BN}u) / 4u + lid.x * ${tn / 4}u + ${j}u];`);
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn; j++) {
      L.push(`      acc[${i}][${j}] = fma(a${i >> 2}[${i & 3}], b${j >> 2}[${j & 3}], acc[${i}][${j}]);`);
    }
  }
  L.push(`    }
    workgroupBarrier();
  }
  let hasBias = (p.flags & ${FLAG_BIAS}u) != 0u;
  for (var j = 0u; j < ${tn}u; j++) {
    let col = col0 + lid.x * ${tn}u + j;
    if (col >= p.N) { continue; }
    let bv = select(0.0, ldBias(col), hasBias);
    for (var i = 0u; i < ${tm}u; i++) {
      let row = row0 + lid.y * ${tm}u + i;
      if (row < p.M) { st(cBase + row * p.cRow + col * p.cCol, acc[i][j] + bv); }
    }
  }
}`);
  return L.join("\n");
}
