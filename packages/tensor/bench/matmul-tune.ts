// Matmul tuning harness: GFLOP/s of kernel variants at the sizes that matter. Dispatches by hand
// on the engine's device (only the shader generator is imported), so it measures the kernel alone.
//
//   node --import tsx --import ../../tools/wgsl/register.mjs bench/matmul-tune.ts [options]
//     --sizes 256,1024,2048,512x768x3072   cubes or MxKxN (default: all four)
//     --dtype f32,f16                      (default both)
//     --layout nn,nt                       B stored [K, N] (nn) or as a transposed [N, K] weight (nt); default both
//     --set default|compare|width|sweep|gpu|all  default: the variant matmul() picks; compare: it against a 1-row-group
//                                          tile, the no-subgroup kernel and the GPU kernel; sweep: the lavapipe grid
//     --only <substring>                   keep variants whose key contains it
//     --reps 5                             timed runs per point (after one warm-up)
//
// Timing: one dispatch per run, submit + onSubmittedWorkDone, median and best of the runs.
// "cpu-time rate" divides the FLOPs by the process's CPU time over the cores: on a machine shared
// with other work it estimates the uncontended rate (lavapipe's worker threads are in-process).
import { availableParallelism } from "node:os";
import { requestDevice } from "../src/device.js";
import {
  type MatmulParams,
  type MatmulVariant,
  matmulShader,
  PARAM_FIELDS,
  tileOf,
  variantKey,
} from "../src/kernels/matmul/matmul-shader.js";
import { CPU_DEFAULTS, GPU_DEFAULTS, pickMatmulVariant } from "../src/kernels/matmul/matmul-variants.js";

// The engine's own device setup (adapter, raised limits, features, software detection); the kernels
// are then dispatched by hand so that only the kernel is timed.
const engine = await requestDevice({ dawnOptions: process.env.DAWN_OPTIONS?.split(" ") });
const device = engine.gpu;
let gpuError: string | null = null;
device.addEventListener("uncapturederror", (e) => {
  gpuError ??= (e as GPUUncapturedErrorEvent).error.message;
});
const info = engine.info;
const isSoftware = info.isSoftware;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

const traits = {
  isSoftware,
  hasSubgroups: engine.hasSubgroups,
  subgroupMinSize: info.subgroupMinSize,
  subgroupMaxSize: info.subgroupMaxSize,
};
const CORES = Number(process.env.LP_NUM_THREADS ?? availableParallelism());

const sizes = arg("sizes", "256,1024,2048,512x768x3072")
  .split(",")
  .map((s) => {
    const p = s.split("x").map(Number);
    return (p.length === 1 ? [p[0]!, p[0]!, p[0]!] : p) as [number, number, number];
  });
const dtypes = arg("dtype", "f32,f16").split(",") as ("f32" | "f16")[];
const layouts = arg("layout", "nn,nt").split(",");
const set = arg("set", "default");
const only = arg("only", "");
const reps = Number(arg("reps", "5"));

console.log(
  `adapter: ${info.vendor} / ${info.architecture} / ${info.description}; subgroups ${info.subgroupMinSize}-${info.subgroupMaxSize}; ` +
    `features ${info.features.join(",")}; cores ${CORES}`,
);

let sizeNow: [number, number, number] = [0, 0, 0];
function variants(dtype: "f32" | "f16", nt: boolean): MatmulVariant[] {
  const [M, K, N] = sizeNow;
  const picked = pickMatmulVariant(
    traits,
    dtype,
    {
      aOff: 0,
      aRow: K,
      aCol: 1,
      aBatch: [],
      bOff: 0,
      bRow: nt ? 1 : N,
      bCol: nt ? K : 1,
      bBatch: [],
    },
    M,
  );
  const sg = picked.kind === "cpu" ? picked.sg : 8;
  const bc = traits.hasSubgroups;
  const wide = dtype === "f16" ? 8 : 4;
  const cpu = (o: Partial<Extract<MatmulVariant, { kind: "cpu" }>>): MatmulVariant => {
    const v = {
      kind: "cpu" as const,
      dtype,
      sg,
      ...CPU_DEFAULTS,
      broadcast: bc,
      aw: 1,
      bw: 1,
      bAxis: (nt ? "k" : "n") as "k" | "n",
      ...o,
    };
    if (v.bAxis === "n") v.bw = Math.min(v.bw, v.tn);
    v.ku = Math.max(v.ku, v.aw, v.bAxis === "k" ? v.bw : 1);
    return v;
  };
  const gpuV = (o: Partial<Extract<MatmulVariant, { kind: "gpu" }>>): MatmulVariant => ({
    kind: "gpu",
    dtype,
    ...GPU_DEFAULTS,
    aKContig: true,
    bNContig: !nt,
    ...o,
  });
  const gpuSet = [gpuV({}), gpuV({ tm: 8, wgM: 8 }), gpuV({ tm: 8, tn: 8, wgM: 8, wgN: 8, bk: 8 })];
  const sweep: MatmulVariant[] = [];
  for (const ra of bc ? [1, 2, 4, 8] : [1]) {
    for (const tn of [4, 8]) {
      for (const ku of [wide, 2 * wide]) {
        if (ra * tn > 32 || (ku > wide && ra * tn > 8)) continue;
        sweep.push(cpu({ ra, tn, ku, aw: wide, bw: wide }));
      }
    }
  }
  sweep.push(
    cpu({ aw: 1, bw: 1, ku: 2 }),
    cpu({ aw: 1, bw: 1, ku: 4 }),
    cpu({ aw: wide, bw: 1 }),
    cpu({ broadcast: false, aw: wide, bw: wide }),
    cpu({ wgSubgroups: 1, aw: wide, bw: wide }),
    cpu({ wgSubgroups: 32, aw: wide, bw: wide }),
  );
  if (dtype === "f16") sweep.push(cpu({ aw: 2, bw: 2 }), cpu({ aw: 4, bw: 4 }));
  const byKey = new Map<string, MatmulVariant>();
  const add = (vs: MatmulVariant[]) => {
    for (const v of vs) byKey.set(variantKey(v), v);
  };
  if (set === "default") add([picked, ...(isSoftware ? [] : gpuSet)]);
  if (set === "compare")
    add(
      [picked, cpu({ ra: 1 }), cpu({ broadcast: false, ra: 4, tn: 8 }), gpuSet[0]!].map((v) =>
        v.kind === "cpu" && v !== picked
          ? {
              ...v,
              aw: (picked as typeof v).aw,
              bw: (picked as typeof v).bw,
              bAxis: (picked as typeof v).bAxis,
              ku: (picked as typeof v).ku,
            }
          : v,
      ),
    );
  if (set === "sweep" || set === "all") add(sweep);
  // Workgroup width around the picked variant.
  if (set === "width") add([2, 4, 8, 16].map((w) => ({ ...picked, wgSubgroups: w }) as MatmulVariant));
  if (set === "gpu" || set === "all") add(gpuSet);
  return [...byKey.values()];
}

function storage(bytes: number, usage = GPUBufferUsage.STORAGE): GPUBuffer {
  return device.createBuffer({
    size: Math.max(16, Math.ceil(bytes / 16) * 16),
    usage: usage | GPUBufferUsage.COPY_DST,
  });
}

function halves(values: Float32Array): Uint16Array {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(values.length + (values.length % 2));
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i]!;
    const x = u[0]!;
    out[i] = ((x >>> 16) & 0x8000) | ((((x >>> 23) & 0xff) - 112) << 10) | ((x >>> 13) & 0x3ff); // |v| in [2^-14, 2): no rounding subtleties needed here
  }
  return out;
}

const pipelines = new Map<string, GPUComputePipeline>();
const best = new Map<string, { key: string; gf: number }>();
for (const dtype of dtypes) {
  for (const layout of layouts) {
    const nt = layout === "nt";
    for (const [M, K, N] of sizes) {
      sizeNow = [M, K, N];
      const bpe = dtype === "f16" ? 2 : 4;
      const rand = (n: number) => Float32Array.from({ length: n }, () => 0.5 + Math.random() / 2);
      const upload = (vals: Float32Array) => {
        const data = dtype === "f16" ? halves(vals) : vals;
        const b = storage(data.byteLength);
        device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
        return b;
      };
      const A = upload(rand(M * K));
      const B = upload(rand(K * N));
      const C = storage(M * N * bpe);
      const bias = storage(16);
      const params: MatmulParams = {
        M,
        N,
        K,
        batchInner: 1,
        aOff: 0,
        aB0: 0,
        aB1: 0,
        aRow: K,
        aCol: 1,
        bOff: 0,
        bB0: 0,
        bB1: 0,
        bRow: nt ? 1 : N,
        bCol: nt ? K : 1,
        cOff: 0,
        cB0: 0,
        cB1: 0,
        cRow: N,
        cCol: 1,
        biasOff: 0,
        biasStride: 1,
        flags: 0,
        pad0: 0,
        pad1: 0,
      };
      const U = storage(PARAM_FIELDS.length * 4, GPUBufferUsage.UNIFORM);
      device.queue.writeBuffer(U, 0, Uint32Array.from(PARAM_FIELDS.map((f) => params[f])));
      const flop = 2 * M * N * K;
      for (const v of variants(dtype, nt)) {
        const key = variantKey(v);
        if (only && !key.includes(only)) continue;
        try {
          let pipeline = pipelines.get(key);
          let compileMs = 0;
          if (!pipeline) {
            const t0 = performance.now();
            const code = matmulShader(v);
            if (process.env.DUMP_WGSL) console.error(`// ---- ${key} ----\n${code}`);
            const module = device.createShaderModule({ label: key, code });
            pipeline = await device.createComputePipelineAsync({
              layout: "auto",
              compute: { module, entryPoint: "main" },
            });
            pipelines.set(key, pipeline);
            compileMs = performance.now() - t0;
          }
          const bg = device.createBindGroup({
            layout: pipeline.getBindGroupLayout(0),
            entries: [A, B, bias, C, U].map((buffer, binding) => ({ binding, resource: { buffer } })),
          });
          const tile = tileOf(v);
          const run = async () => {
            const enc = device.createCommandEncoder();
            const pass = enc.beginComputePass();
            pass.setPipeline(pipeline);
            pass.setBindGroup(0, bg);
            pass.dispatchWorkgroups(Math.ceil(N / tile.cols), Math.ceil(M / tile.rows), 1);
            pass.end();
            const c0 = process.cpuUsage();
            const t0 = performance.now();
            device.queue.submit([enc.finish()]);
            await device.queue.onSubmittedWorkDone();
            const ms = performance.now() - t0;
            const c = process.cpuUsage(c0);
            return { ms, cpu: (c.user + c.system) / 1000 };
          };
          const warm = await run(); // the first run also finishes lavapipe's compile
          compileMs += warm.ms;
          const runs: { ms: number; cpu: number }[] = [];
          for (let i = 0; i < reps; i++) runs.push(await run());
          if (gpuError) throw new Error(gpuError);
          const med = (xs: number[]) => xs.sort((x, y) => x - y)[xs.length >> 1]!;
          const ms = med(runs.map((r) => r.ms));
          const cpu = med(runs.map((r) => r.cpu));
          const gf = (t: number) => flop / t / 1e6;
          const bestMs = Math.min(...runs.map((r) => r.ms));
          console.log(
            `${dtype} ${layout} ${`${M}x${K}x${N}`.padEnd(14)} ${key.padEnd(46)} median ${ms.toFixed(1).padStart(8)} ms ${gf(ms).toFixed(1).padStart(6)} GFLOP/s` +
              `   best ${gf(bestMs).toFixed(1).padStart(6)}   cpu-time rate ${gf(cpu / CORES)
                .toFixed(1)
                .padStart(6)}   first run ${(compileMs / 1000).toFixed(1)} s`,
          );
          const id = `${dtype} ${layout} ${M}x${K}x${N}`;
          if ((best.get(id)?.gf ?? 0) < gf(ms)) best.set(id, { key, gf: gf(ms) });
        } catch (e) {
          gpuError = null;
          console.log(
            `${dtype} ${layout} ${M}x${K}x${N} ${key}: FAILED ${(e as Error).message.split("\n")[0]}`,
          );
        }
      }
      for (const b of [A, B, C, bias, U]) b.destroy();
    }
  }
}
console.log("\nbest median per point:");
for (const [id, b] of best)
  console.log(`  ${id.padEnd(28)} ${b.gf.toFixed(1).padStart(6)} GFLOP/s  ${b.key}`);
process.exit(0);
