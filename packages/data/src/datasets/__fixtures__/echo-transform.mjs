// Worker transform for the pool's tests (plain JS, so no TypeScript loader is involved).
import { threadId } from "node:worker_threads";

// Tasks this worker is running right now (an async transform can hold several).
let active = 0;

export default async function echo(input, options) {
  active++;
  const concurrent = active;
  try {
    if (input.delay) await new Promise((r) => setTimeout(r, input.delay));
    if (input.fail) throw new TypeError(`boom on ${input.n}`);
    if (input.reject)
      throw Object.assign(new Error(`n=${input.n} is unwanted`), { rejectReason: "unwanted" });
    if (input.exit) process.exit(3);
    return {
      id: input.id,
      n: input.n * (options?.factor ?? 1),
      thread: threadId,
      concurrent,
      data: new Float32Array([input.n, 0.5]),
    };
  } finally {
    active--;
  }
}
