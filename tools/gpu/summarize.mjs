// The short summary run-bench.sh prints last: adapter, the tensor table (one line per case: every
// implementation's rate side by side) and the Idefics2 rows. Reads the JSONs in the given folder;
// missing or partial files are reported, never fatal. Plain Node, no dependencies.
//   node tools/gpu/summarize.mjs $OUT
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2] ?? ".";
function load(name) {
  const p = join(dir, name);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, "utf8"));
  } catch (err) {
    console.log(`${name}: unreadable (${err.message})`);
    return null;
  }
}
const num = (x, d = 1) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(d) : "-");

const adapter = load("adapter.json");
if (!adapter) console.log("adapter.json: missing");
else {
  const i = adapter.info ?? {};
  const f = adapter.features ?? [];
  const has = (x) => (f.includes(x) ? "yes" : "no");
  console.log(
    `ADAPTER ${i.vendor} / ${i.architecture} / ${i.description || i.device} fallback=${i.isFallbackAdapter} software=${adapter.software}`,
  );
  console.log(
    `  subgroups ${has("subgroups")} (${i.subgroupMinSize}-${i.subgroupMaxSize}), shader-f16 ${has("shader-f16")}, ` +
      `subgroup-matrix ${has("chromium-experimental-subgroup-matrix")} ` +
      `[${(i.subgroupMatrixConfigs ?? []).map((c) => `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`).join(", ")}]`,
  );
  const l = adapter.limits ?? {};
  console.log(
    `  maxBufferSize ${l.maxBufferSize} maxStorageBufferBindingSize ${l.maxStorageBufferBindingSize} wg-storage ${l.maxComputeWorkgroupStorageSize}`,
  );
  for (const r of adapter.rows ?? []) {
    console.log(
      `  sgmatrix ${r.config} ${r.M}^3: ${r.error ?? `${num(r.gflops, 0)} GFLOP/s err ${r.maxRelErr?.toExponential(1)} ${r.correct ? "ok" : "WRONG"}`}`,
    );
  }
  for (const n of adapter.notes ?? []) console.log(`  note: ${n}`);
}

const tensor = load("tensor.json");
if (!tensor) console.log("tensor.json: missing");
else {
  console.log(
    `TENSOR${tensor.done ? "" : " (incomplete)"}${tensor.torchInfo ? ` torch ${tensor.torchInfo.torch} on ${tensor.torchInfo.device}` : ""}`,
  );
  const cases = new Map();
  for (const r of tensor.rows ?? []) {
    const key = `${r.op} ${r.shape}`;
    if (!cases.has(key)) cases.set(key, []);
    cases.get(key).push(r);
  }
  for (const [key, rows] of cases) {
    const unit = rows.some((r) => r.gflops !== undefined) ? "GFLOP/s" : "GB/s";
    const cell = (r) => {
      const name = `${r.impl === "webvlm" ? "ours" : r.impl === "tfjs-webgpu" ? "tfjs" : "torch"}-${r.dtype}`;
      if (r.error) return `${name} ERR`;
      const v = unit === "GFLOP/s" ? r.gflops : r.gbs;
      return `${name} ${num(v, v >= 100 ? 0 : 1)}${r.correct === false ? "(WRONG)" : ""}`;
    };
    console.log(`  ${key.padEnd(32)} ${unit}: ${rows.map(cell).join("  ")}`);
  }
  for (const n of tensor.notes ?? []) console.log(`  note: ${n}`);
}

const ide = load("idefics2.json");
if (!ide) console.log("idefics2.json: missing");
else {
  console.log(`IDEFICS2${ide.done ? "" : " (incomplete)"} bandwidth ${ide.bandwidthGBs} GB/s`);
  for (const r of ide.rows ?? []) {
    if (r.error) console.log(`  ${r.model} ${r.dtype}: ERROR ${r.error}`);
    else if (r.impl)
      console.log(
        `  ${r.model} ${r.dtype} [${r.impl}] decode ${num(r.decodeTokensPerS)} tok/s ${num(r.msPerToken, 2)} ms/tok ` +
          `${num(r.achievedGBs)} GB/s = ${num(r.fractionOfBandwidth * 100)}% (prompt ${r.promptTokens})`,
      );
    else
      console.log(
        `  ${r.model.padEnd(6)} ${r.dtype} init ${num(r.initS)}s vision+conn ${num(r.visionConnectorS * 1000, 0)}ms TTFT ${num(r.timeToFirstTokenS * 1000, 0)}ms ` +
          `decode ${num(r.decodeTokensPerS)} tok/s ${num(r.msPerToken, 2)} ms/tok ${num(r.achievedGBs)} GB/s = ${num(r.fractionOfBandwidth * 100)}% ` +
          `(${num(r.bytesPerToken / 1e9, 2)} GB/tok, ${num(r.deviceLiveGiB)} GiB live)`,
      );
  }
  for (const n of ide.notes ?? []) console.log(`  note: ${n}`);
}
