import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { pack } from "tar-stream";
import { afterAll, describe, expect, it } from "vitest";
import { badSampleReport } from "../bad-samples.js";
import { shardStream } from "../shard-stream.js";
import { take } from "../stream.js";
import type { InterleavedSample } from "../types.js";
import { readTar } from "./tar.js";
import { webDatasetSource } from "./webdataset.js";

const dir = mkdtempSync(join(tmpdir(), "webvlm-wds-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A tar written by tar-stream (an independent writer), entries in the order given. */
async function writeTar(
  file: string,
  entries: { name: string; data: Uint8Array | string; type?: "directory" }[],
): Promise<void> {
  const p = pack();
  const done = pipeline(p, createWriteStream(file));
  for (const e of entries) {
    if (e.type === "directory") p.entry({ name: e.name, type: "directory" });
    else p.entry({ name: e.name }, Buffer.from(e.data));
  }
  p.finalize();
  await done;
}

const img = (n: number) => new Uint8Array([0xff, 0xd8, n, n + 1]);
const longDir = `${"deep/".repeat(30)}dir`; // > 100 characters: ustar prefix or pax path

describe("readTar", () => {
  it("reads names (long ones too), contents and offsets of a tar-stream archive", async () => {
    const file = join(dir, "plain.tar");
    const big = new Uint8Array(1300).map((_, i) => i % 251);
    await writeTar(file, [
      { name: "a.txt", data: "hello" },
      { name: "sub", data: "", type: "directory" },
      { name: "sub/b.bin", data: big },
      { name: `${longDir}/${"x".repeat(120)}.txt`, data: "long" },
    ]);
    const entries = [];
    for await (const e of readTar(file)) entries.push(e);
    expect(entries.map((e) => e.name)).toEqual(["a.txt", "sub/b.bin", `${longDir}/${"x".repeat(120)}.txt`]);
    expect(Buffer.from(entries[1].data)).toEqual(Buffer.from(big));
    expect(new TextDecoder().decode(entries[2].data)).toBe("long");
    // Reading from an entry's offset starts at that entry.
    const from = [];
    for await (const e of readTar(file, entries[1].offset)) from.push(e.name);
    expect(from).toEqual(entries.slice(1).map((e) => e.name));
  });

  it("rejects a corrupt header naming the file and offset", async () => {
    const file = join(dir, "corrupt.tar");
    await writeTar(file, [
      { name: "a.txt", data: "x" },
      { name: "b.txt", data: "y" },
    ]);
    const bytes = readFileSync(file);
    bytes[1024 + 3] ^= 0x20; // a name byte of the second header
    writeFileSync(file, bytes);
    const names: string[] = [];
    await expect(
      (async () => {
        for await (const e of readTar(file)) names.push(e.name);
      })(),
    ).rejects.toThrow(/corrupt.tar: header at byte 1024 has checksum \d+ but its bytes sum to \d+/);
    expect(names).toEqual(["a.txt"]);
  });
});

describe("webDatasetSource", () => {
  const shard = (k: number) => join(dir, `shard-${k}.tar`);
  const make = async () => {
    for (let k = 0; k < 3; k++) {
      const entries = [];
      for (let i = 0; i < 6; i++) {
        const key = `${k === 1 ? `${longDir}/` : ""}s${k}_${i}`;
        if (!(k === 2 && i === 4)) entries.push({ name: `${key}.jpg`, data: img(k * 10 + i) });
        entries.push({ name: `${key}.txt`, data: `caption ${k}-${i}` });
        entries.push({ name: `${key}.json`, data: "{}" });
      }
      await writeTar(shard(k), entries);
    }
  };

  it("groups files by key into image–caption pairs and reports records without an image", async () => {
    await make();
    const s = shardStream(webDatasetSource([0, 1, 2].map(shard), { name: "wds" }), { shuffleShards: false });
    const out = (await take(s)) as InterleavedSample[];
    expect(out).toHaveLength(17);
    expect(out[0]).toEqual({
      kind: "interleaved",
      id: "wds/shard-0.tar:s0_0",
      segments: [
        { type: "image", image: { bytes: img(0), path: "s0_0.jpg" } },
        { type: "text", text: "caption 0-0" },
      ],
    });
    expect(out[6].id).toBe(`wds/shard-1.tar:${longDir}/s1_0`);
    const report = badSampleReport(s.state());
    expect(report.byReason).toEqual({ "missing-image": 1 });
    expect(report.examples[0]).toMatchObject({
      id: "wds/shard-2.tar:s2_4",
      detail: expect.stringMatching(/no image file \(have .txt, .json/),
    });
  });

  it("save/restore mid-epoch seeks by byte offset and continues exactly", async () => {
    await make();
    const mk = () =>
      shardStream(webDatasetSource([0, 1, 2].map(shard)), { seed: 5, shuffleBuffer: 4, epochs: 2 });
    const full = (await take(mk())).map((x) => x.id);
    expect(full).toHaveLength(34);
    for (const k of [2, 5, 16, 17, 25]) {
      const s = mk();
      const head = (await take(s, k)).map((x) => x.id);
      await s.close();
      const resumed = mk();
      resumed.restore(JSON.parse(JSON.stringify(s.state())));
      expect([...head, ...(await take(resumed)).map((x) => x.id)]).toEqual(full);
    }
  });

  it("a truncated shard yields what it can, then one bad record, and the next shard goes on", async () => {
    await make();
    const cut = join(dir, "cut.tar");
    const whole = readFileSync(shard(0));
    writeFileSync(cut, whole.subarray(0, 512 * 7 + 100)); // inside the data of an entry
    const s = shardStream(webDatasetSource([cut, shard(2)], { name: "wds" }), { shuffleShards: false });
    const out = await take(s);
    const report = badSampleReport(s.state());
    expect(report.byReason["corrupt-shard"]).toBe(1);
    expect(report.examples.find((e) => e.reason === "corrupt-shard")?.detail).toMatch(
      /cut.tar: entry at byte 3072 claims 4 bytes \(512 padded\) but the file ends at 3684; rest of the shard skipped/,
    );
    expect(out.map((x) => x.id).filter((id) => id.includes("cut.tar"))).toEqual(["wds/cut.tar:s0_0"]);
    expect(out.filter((x) => x.id.includes("shard-2"))).toHaveLength(5);
  });
});
