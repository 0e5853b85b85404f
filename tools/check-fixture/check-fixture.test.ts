import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import {
  chmod,
  copyFile,
  cp,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rm,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURE = join(ROOT, "fixtures/idefics2-tiny");

/** Runs the command as `pnpm check-fixture` does (same node flags, from the workspace root). */
function run(args: string[]) {
  const r = spawnSync(
    process.execPath,
    [
      "--conditions=source",
      "--import",
      "tsx",
      "--import",
      "./tools/wgsl/register.mjs",
      "tools/check-fixture/main.ts",
      ...args,
    ],
    { cwd: ROOT, encoding: "utf8", env: { ...process.env, INIT_CWD: ROOT }, timeout: 300_000 },
  );
  const lines = r.stdout.trim().split("\n");
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines, last: lines[lines.length - 1] ?? "" };
}

/** Adds `delta` to the first f32 element of tensor `name` in a safetensors file, in place. */
async function corrupt(file: string, name: string, delta: number): Promise<void> {
  const fh = await open(file, "r+");
  try {
    const len = Buffer.alloc(8);
    await fh.read(len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const header = Buffer.alloc(n);
    await fh.read(header, 0, n, 8);
    const entry = JSON.parse(header.toString("utf8"))[name] as {
      dtype: string;
      data_offsets: [number, number];
    };
    expect(entry.dtype).toBe("F32");
    const at = 8 + n + entry.data_offsets[0];
    const v = Buffer.alloc(4);
    await fh.read(v, 0, 4, at);
    v.writeFloatLE(v.readFloatLE(0) + delta, 0);
    await fh.write(v, 0, 4, at);
  } finally {
    await fh.close();
  }
}

/** Rewrites a safetensors file with every tensor name's `from` prefix replaced by `to` (same data). */
async function renameTensors(src: string, dst: string, from: string, to: string): Promise<void> {
  const bytes = await readFile(src);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, unknown>;
  const renamed = Object.fromEntries(
    Object.entries(header).map(([k, v]) => [k.startsWith(from) ? to + k.slice(from.length) : k, v]),
  );
  let json = JSON.stringify(renamed);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length), 0);
  await writeFile(dst, Buffer.concat([len, Buffer.from(json), bytes.subarray(8 + n)]));
}

const temps: string[] = [];
afterAll(async () => {
  for (const t of temps) await rm(t, { recursive: true, force: true });
});

describe("pnpm check-fixture", () => {
  it("passes on fixtures/idefics2-tiny: one row per tensor, then 'N passed, 0 failed'", () => {
    const r = run(["fixtures/idefics2-tiny", "--quiet"]);
    expect(r.stderr).not.toMatch(/check-fixture:/);
    expect(r.last).toMatch(/^\d+ passed, 0 failed$/);
    expect(r.code).toBe(0);
    // Every tensor of the manifest is one row; only gradients autograd cannot reach yet may be unchecked.
    const listed = Object.keys(
      JSON.parse(readFileSync(join(FIXTURE, "manifest.json"), "utf8")).tensors,
    ).length;
    const passed = Number(/^(\d+)/.exec(r.last)![1]);
    const unchecked = Number(/^(\d+) not yet checked$/m.exec(r.stdout)?.[1] ?? 0);
    expect(passed + unchecked).toBe(listed);
    for (const line of r.stdout.split("\n").filter((l) => l.includes("NOT YET CHECKED"))) {
      expect(line).toMatch(/^batch\.grad\./);
    }
    for (const name of [
      "single.logits",
      "batch.generate.sequences",
      "batch.loss",
      "split.image_hidden_states",
      "batch.grad.lm_head.weight",
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^${name.replace(/\./g, "\\.")}\\s+\\S+\\s+\\S+\\s+PASS`, "m"));
    }
  });

  it("reports a corrupted expected value as a FAIL row and exits non-zero", async () => {
    const dir = await mkdtemp(join(tmpdir(), "check-fixture-"));
    temps.push(dir);
    await cp(FIXTURE, dir, { recursive: true });
    // The fixture files are read-only; the copy must be writable to corrupt it.
    await chmod(dir, 0o755);
    for (const f of await readdir(dir)) await chmod(join(dir, f), 0o755);
    await corrupt(join(dir, "case_single.safetensors"), "single.logits", 0.5);
    const r = run([dir, "--case", "single", "--quiet"]);
    expect(r.stdout).toMatch(/^single\.logits\s+5\.0\de-1\s+1e-4\s+FAIL/m);
    expect(r.stdout).toMatch(/^single\.generate\.sequences\s+0\s+exact\s+PASS/m);
    expect(r.last).toMatch(/^\d+ passed, 1 failed$/);
    expect(r.code).toBe(1);
  });

  it("derives everything from the manifest: another case name, fewer optional tensors", async () => {
    const dir = await mkdtemp(join(tmpdir(), "check-fixture-"));
    temps.push(dir);
    for (const f of ["config.json", "model.safetensors", "preprocessor_config.json"])
      await copyFile(join(FIXTURE, f), join(dir, f));
    await mkdir(join(dir, "images"));
    for (const f of await readdir(join(FIXTURE, "images")))
      await copyFile(join(FIXTURE, "images", f), join(dir, "images", f));
    await renameTensors(
      join(FIXTURE, "case_batch.safetensors"),
      join(dir, "case_pair.safetensors"),
      "batch.",
      "pair.",
    );
    const manifest = JSON.parse(await readFile(join(FIXTURE, "manifest.json"), "utf8"));
    const tensors: Record<string, { file: string }> = {};
    for (const [k, v] of Object.entries(manifest.tensors as Record<string, { file: string }>)) {
      // Only the batch case, renamed; no per-layer outputs, no generation scores, two gradients.
      if (!k.startsWith("batch.") || /layer_|generate\.scores|debug\./.test(k)) continue;
      if (k.startsWith("batch.grad.") && !/lm_head|latents/.test(k)) continue;
      tensors[`pair.${k.slice("batch.".length)}`] = { ...v, file: "case_pair.safetensors" };
    }
    const { grad_params, ...pair } = manifest.cases.batch;
    await writeFile(
      join(dir, "manifest.json"),
      JSON.stringify({ ...manifest, tensors, cases: { pair }, imageproc_direct: undefined }),
    );
    const r = run([dir, "--quiet"]);
    expect(r.stdout).not.toMatch(/batch\.|single\.|layer_/);
    expect(r.stdout).toMatch(/^pair\.logits\s+\S+\s+1e-4\s+PASS/m);
    expect(r.stdout).toMatch(/^pair\.grad\.lm_head\.weight\s+\S+\s+1e-5\s+PASS/m);
    expect(r.stdout).toMatch(
      /^pair\.grad\.model\.connector\.perceiver_resampler\.latents\s+\S+\s+1e-5\s+(PASS|NOT YET CHECKED)/m,
    );
    // Every listed tensor is a row: passed, or (a gradient autograd cannot reach yet) not yet checked.
    const unchecked = Number(/^(\d+) not yet checked$/m.exec(r.stdout)?.[1] ?? 0);
    expect(unchecked).toBeLessThanOrEqual(1);
    expect(r.last).toBe(`${Object.keys(tensors).length - unchecked} passed, 0 failed`);
    expect(r.code).toBe(0);
  });

  it("a missing directory is one clear error", () => {
    const r = run(["fixtures/does-not-exist"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^check-fixture: .*manifest\.json: cannot read/);
  });
});
