// Embedding backward at Mistral-7B vocab size. Run:
//   node --import tsx --import ../../tools/wgsl/register.mjs src/kernels/gather/gather.bench.ts
import { getDevice, Tensor, tidy } from "../../index.js";
import { Rng } from "../../testing.js";
import { embedding } from "./gather.js";

const [V, N, D] = [
  Number(process.env.V ?? 32003),
  Number(process.env.N ?? 2048),
  Number(process.env.D ?? 64),
];
const device = await getDevice();
const rng = new Rng(1);
const weight = Tensor.from(rng.normal(V * D, 0.02), [V, D], { requiresGrad: true });
// Token ids (UNIFORM=1: uniform, nearly all distinct: the worst case for the device chain pass) with realistic repetition: a Zipf-ish draw concentrates mass on a few hundred ids.
const ids = process.env.UNIFORM
  ? rng.int(N, 0, V)
  : Int32Array.from({ length: N }, () => Math.min(V - 1, Math.floor(Math.exp(rng.next() * Math.log(V)))));
const gout = Tensor.from(rng.normal(N * D), [N, D]);

async function time(label: string, fn: () => void, reps = 5): Promise<void> {
  fn();
  await device.sync();
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    fn();
    await device.sync();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  console.log(
    `${label.padEnd(44)} V=${V} N=${N} D=${D}: median ${ts[reps >> 1]!.toFixed(1)} ms (min ${ts[0]!.toFixed(1)})`,
  );
}

const step = (host: boolean) => () => {
  tidy(() => {
    const idx = host ? ids : Tensor.from(ids, [N], { dtype: "i32" });
    embedding(idx, weight).backward({ gradient: gout });
  });
  weight.grad?.dispose();
  weight.grad = null;
};
await time("embedding forward (host ids)", () => tidy(() => void embedding(ids, weight)));
await time("forward+backward, host ids (CSR chains on CPU)", step(true));
await time("forward+backward, device ids (O(N^2) chain pass)", step(false));
console.log(
  `distinct ids: ${new Set(ids).size}; dense grad ${((V * D * 4) / 2 ** 20).toFixed(1)} MiB, ${device.info.description}`,
);
