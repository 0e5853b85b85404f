// `pnpm test`: every package's tests through turbo, then one closing line with the totals
// ("N passed, M failed, K skipped") summed from each vitest run. Exit code is turbo's.
import { spawn } from "node:child_process";

process.env.TURBO_TELEMETRY_DISABLED = "1";
// test: every package from source; test:built: packages with workspace dependencies against their built dist/.
const args = ["turbo", "run", "test", "test:built", "--concurrency=1", ...process.argv.slice(2)];
const child = spawn("pnpm", ["exec", ...args], { stdio: ["ignore", "pipe", "pipe"] });
let passed = 0;
let failed = 0;
let skipped = 0;
let pending = "";
const ESC = String.fromCharCode(27);
const strip = (s) =>
  s
    .split(ESC)
    .map((part, i) => (i === 0 ? part : part.replace(/^\[[0-9;]*m/, "")))
    .join("");
function scan(chunk) {
  pending += chunk;
  const lines = pending.split("\n");
  pending = lines.pop() ?? "";
  for (const raw of lines) {
    const line = strip(raw);
    const m = /\bTests\s+(.*)\((\d+)\)\s*$/.exec(line);
    if (!m) continue;
    passed += Number(/(\d+) passed/.exec(m[1])?.[1] ?? 0);
    failed += Number(/(\d+) failed/.exec(m[1])?.[1] ?? 0);
    skipped += Number(/(\d+) skipped/.exec(m[1])?.[1] ?? 0);
  }
}
child.stdout.on("data", (d) => {
  process.stdout.write(d);
  scan(d.toString());
});
child.stderr.on("data", (d) => process.stderr.write(d));
child.on("close", (code) => {
  scan("\n");
  if (code !== 0 && failed === 0) failed = 1; // a crash or build error is a failure even if no test said so
  console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(code ?? 1);
});
