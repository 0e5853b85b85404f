// Step 1 on the GPU machine: what Dawn sees. Writes adapter.json (info, features, limits,
// subgroup-matrix configs) and, when the adapter lists `chromium-experimental-subgroup-matrix`,
// checks one tile of a subgroup-matrix product against the CPU and times a plain tensor-core
// matmul kernel (operands read straight from global memory: a floor, not a tuned kernel).
//
//   node .gpu-carry/app/adapter.mjs --json=$OUT/adapter.json [--quick] [--allow-software]
// Exit codes: 0 a hardware adapter, 3 only a software one (llvmpipe/fallback) unless
// --allow-software, 2 none at all.
import { create, globals } from "webgpu";
import { errorText, parseArgs, Results } from "./lib.js";

Object.assign(globalThis, globals);
const args = parseArgs(process.argv.slice(2), "adapter.json");
// Module-level for the life of the process: Dawn segfaults if the instance is collected while a device lives.
const gpu = create(["backend=vulkan", "enable-dawn-features=allow_unsafe_apis"]);

interface SgConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

const out = new Results<Record<string, unknown>>(args.json, { step: "adapter" });

function copyFields(obj: object): Record<string, unknown> {
  // adapter.info and adapter.limits keep their fields as getters on the prototype: JSON.stringify sees none.
  const o: Record<string, unknown> = {};
  for (const k in obj) {
    const v = (obj as Record<string, unknown>)[k];
    if (typeof v !== "function") o[k] = v;
  }
  return o;
}

const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
if (!adapter) {
  out.note("requestAdapter() returned null: Dawn found no Vulkan driver (see VK_LOADER_DEBUG log)");
  process.exit(2);
}
const info = copyFields(adapter.info);
const configs: SgConfig[] = ((info.subgroupMatrixConfigs as SgConfig[] | undefined) ?? []).map((c) => ({
  componentType: c.componentType,
  resultComponentType: c.resultComponentType,
  M: c.M,
  N: c.N,
  K: c.K,
}));
info.subgroupMatrixConfigs = configs;
const features = [...adapter.features].map(String).sort();
const limits = copyFields(adapter.limits);
const software =
  info.isFallbackAdapter === true ||
  /llvmpipe|lavapipe|swiftshader/i.test(`${info.description} ${info.device}`);
out.save({ info, software, features, limits });
console.log(
  `adapter: ${info.vendor} / ${info.architecture} / ${info.description || info.device} (fallback: ${info.isFallbackAdapter}, software: ${software})`,
);
console.log(`subgroups: ${info.subgroupMinSize}-${info.subgroupMaxSize}; features: ${features.join(" ")}`);
console.log(
  `limits: maxBufferSize ${limits.maxBufferSize}, maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}, ` +
    `workgroup storage ${limits.maxComputeWorkgroupStorageSize}, invocations ${limits.maxComputeInvocationsPerWorkgroup}`,
);
console.log(
  `subgroup-matrix configs: ${configs.map((c) => `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`).join(", ") || "none"}`,
);

const SGM = "chromium-experimental-subgroup-matrix";
if (!features.includes(SGM)) {
  out.note(`${SGM} not listed: no tensor-core probe`);
} else {
  try {
    await probeSubgroupMatrix();
  } catch (err) {
    out.note(`subgroup-matrix probe failed: ${errorText(err)}`);
  }
}
if (software && !args.has("allow-software")) {
  out.note("software adapter only: the NVIDIA Vulkan driver was not used");
  process.exit(3);
}
process.exit(0);

// ---- subgroup matrices ---------------------------------------------------------------------------

function f16Bits(x: number): number {
  // Round-to-nearest-even float32 -> float16 (values here are small and normal).
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = u & 0x7fffff;
  if (exp <= 0) return sign;
  let h = sign | (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
  return h;
}

function f16Value(h: number): number {
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

/** C[M,N] (f32 or f16) = A[M,K] · B[K,N] (f16, row-major), each subgroup a 2×2 block of tiles, one subgroup per workgroup. */
function sgmShader(c: SgConfig, lanes: number): string {
  const R = c.resultComponentType;
  const tiles = [0, 1].flatMap((i) => [0, 1].map((j) => [i, j] as const));
  return /* wgsl */ `
enable f16;
enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> A: array<f16>;
@group(0) @binding(1) var<storage, read> B: array<f16>;
@group(0) @binding(2) var<storage, read_write> C: array<${R}>;
@group(0) @binding(3) var<uniform> dims: vec4<u32>; // M, N, K
const TM = ${c.M}u;
const TN = ${c.N}u;
const TK = ${c.K}u;
@compute @workgroup_size(${lanes})
fn main(@builtin(workgroup_id) wg: vec3<u32>) {
  let N = dims.y;
  let K = dims.z;
  // Offsets come from workgroup_id only: subgroupMatrixLoad needs uniform arguments.
  let row0 = wg.y * 2u * TM;
  let col0 = wg.x * 2u * TN;
${tiles.map(([i, j]) => `  var c${i}${j}: subgroup_matrix_result<${R}, TN, TM>;`).join("\n")}
  for (var k = 0u; k < K; k += TK) {
    let a0 = subgroupMatrixLoad<subgroup_matrix_left<f16, TK, TM>, row_major>(&A, row0 * K + k, K);
    let a1 = subgroupMatrixLoad<subgroup_matrix_left<f16, TK, TM>, row_major>(&A, (row0 + TM) * K + k, K);
    let b0 = subgroupMatrixLoad<subgroup_matrix_right<f16, TN, TK>, row_major>(&B, k * N + col0, N);
    let b1 = subgroupMatrixLoad<subgroup_matrix_right<f16, TN, TK>, row_major>(&B, k * N + col0 + TN, N);
${tiles.map(([i, j]) => `    c${i}${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, c${i}${j});`).join("\n")}
  }
${tiles.map(([i, j]) => `  subgroupMatrixStore<row_major>(&C, (row0 + ${i}u * TM) * N + col0 + ${j}u * TN, c${i}${j}, N);`).join("\n")}
}
`;
}

async function probeSubgroupMatrix(): Promise<void> {
  const want = ["shader-f16", "subgroups", SGM].filter((f) => features.includes(f)) as GPUFeatureName[];
  const device = await adapter!.requestDevice({
    requiredFeatures: want,
    requiredLimits: {
      maxBufferSize: limits.maxBufferSize as number,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize as number,
    },
  });
  const errors: string[] = [];
  device.addEventListener("uncapturederror", (e) =>
    errors.push((e as GPUUncapturedErrorEvent).error.message),
  );
  const lanes = (info.subgroupMaxSize as number) || 32;
  const picks = configs.filter(
    (c) => c.componentType === "f16" && (c.resultComponentType === "f32" || c.resultComponentType === "f16"),
  );
  if (picks.length === 0) {
    out.note("no f16 subgroup-matrix config to probe");
    return;
  }
  for (const cfg of picks) {
    const label = `${cfg.componentType}->${cfg.resultComponentType} ${cfg.M}x${cfg.N}x${cfg.K}`;
    const sizes = args.quick ? [64, 256] : [64, 4096];
    for (const S of sizes) {
      const row: Record<string, unknown> = {
        case: "sgmatrix-matmul",
        config: label,
        M: S,
        N: S,
        K: S,
        lanes,
      };
      try {
        const r = await runSgm(device, cfg, lanes, S, errors);
        Object.assign(row, r);
      } catch (err) {
        row.error = errorText(err);
      }
      console.log(
        `sgmatrix ${label} ${S}^3: ${row.error ?? `${(row.gflops as number).toFixed(0)} GFLOP/s, max rel err ${(row.maxRelErr as number).toExponential(1)}`}`,
      );
      out.add(row);
      if (row.error) break;
    }
  }
  device.destroy();
}

async function runSgm(
  device: GPUDevice,
  cfg: SgConfig,
  lanes: number,
  S: number,
  errors: string[],
): Promise<Record<string, unknown>> {
  const [M, N, K] = [S, S, S];
  if (M % (2 * cfg.M) || N % (2 * cfg.N) || K % cfg.K)
    throw new Error(`size ${S} is not a multiple of the 2x2 tile block`);
  const a = new Uint16Array(M * K);
  const b = new Uint16Array(K * N);
  let seed = 12345;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed / 2 ** 32) * 2 - 1;
  };
  for (let i = 0; i < a.length; i++) a[i] = f16Bits(rnd());
  for (let i = 0; i < b.length; i++) b[i] = f16Bits(rnd());
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const ba = device.createBuffer({ size: a.byteLength, usage });
  const bb = device.createBuffer({ size: b.byteLength, usage });
  const cBytes = M * N * (cfg.resultComponentType === "f16" ? 2 : 4);
  const bc = device.createBuffer({ size: cBytes, usage });
  const bu = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(ba, 0, a);
  device.queue.writeBuffer(bb, 0, b);
  device.queue.writeBuffer(bu, 0, new Uint32Array([M, N, K, 0]));
  errors.length = 0;
  const module = device.createShaderModule({ code: sgmShader(cfg, lanes) });
  const info = await module.getCompilationInfo();
  const msgs = info.messages
    .filter((m) => m.type === "error")
    .map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
  if (msgs.length) throw new Error(`WGSL: ${msgs.join("; ")}`);
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [ba, bb, bc, bu].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const groups = [N / (2 * cfg.N), M / (2 * cfg.M)] as const;
  const dispatch = (reps: number) => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    for (let r = 0; r < reps; r++) pass.dispatchWorkgroups(groups[0], groups[1]);
    pass.end();
    device.queue.submit([enc.finish()]);
  };
  const keep = setInterval(() => {}, 1 << 30); // Dawn's promises do not hold Node's event loop open
  try {
    dispatch(1);
    await device.queue.onSubmittedWorkDone();
    if (errors.length) throw new Error(errors.join("; "));
    // Check 64 entries against float64 sums of the same f16 inputs.
    const staging = device.createBuffer({
      size: cBytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(bc, 0, staging, 0, cBytes);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const raw = staging.getMappedRange();
    const got =
      cfg.resultComponentType === "f16"
        ? Array.from(new Uint16Array(raw), f16Value)
        : Array.from(new Float32Array(raw));
    staging.unmap();
    let maxRel = 0;
    for (let s = 0; s < 64; s++) {
      const i = (s * 7919) % M;
      const j = (s * 104729 + 13) % N;
      let ref = 0;
      let mag = 0;
      for (let k = 0; k < K; k++) {
        const p = f16Value(a[i * K + k]!) * f16Value(b[k * N + j]!);
        ref += p;
        mag += Math.abs(p);
      }
      maxRel = Math.max(maxRel, Math.abs(got[i * N + j]! - ref) / Math.max(mag, 1e-6));
    }
    // Time: batches of dispatches in one submit, median per dispatch.
    const single0 = performance.now();
    dispatch(1);
    await device.queue.onSubmittedWorkDone();
    const single = performance.now() - single0;
    const reps = Math.max(1, Math.min(100, Math.ceil(100 / Math.max(single, 0.01))));
    const per: number[] = [];
    for (let t = 0; t < 5; t++) {
      const t0 = performance.now();
      dispatch(reps);
      await device.queue.onSubmittedWorkDone();
      per.push((performance.now() - t0) / reps);
    }
    if (errors.length) throw new Error(errors.join("; "));
    per.sort((x, y) => x - y);
    const ms = per[2]!;
    const tol = cfg.resultComponentType === "f16" ? 1e-2 : 1e-3;
    return {
      median_ms: ms,
      gflops: (2 * M * N * K) / (ms * 1e6),
      reps,
      maxRelErr: maxRel,
      correct: maxRel < tol,
    };
  } finally {
    clearInterval(keep);
    for (const buf of [ba, bb, bc, bu]) buf.destroy();
  }
}
