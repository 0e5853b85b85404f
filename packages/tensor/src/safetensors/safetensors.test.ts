import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bf16BitsToF32Bits,
  f16BitsToF32Bits,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  fromFloat32,
  openSafetensors,
  readSafetensorsFile,
  SafetensorsError,
  type SafetensorsTensor,
  type TensorToWrite,
  toFloat32,
  toInt32,
  writeSafetensors,
  writeShardedSafetensors,
} from "./index.js";

const FIXTURES = fileURLToPath(new URL("../../../../fixtures/idefics2-tiny/", import.meta.url));

interface Manifest {
  files: Record<string, { bytes: number }>;
  tensors: Record<string, { file: string; shape: number[]; dtype: string }>;
  config: { text_config: { vocab_size: number; hidden_size: number } };
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "webvlm-safetensors-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const f32 = (bits: number): number => new Float32Array(new Uint32Array([bits]).buffer)[0];
const bitsOf = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0];

/** Catch the SafetensorsError a promise rejects with (fails the test on anything else). */
async function rejection(p: Promise<unknown>): Promise<SafetensorsError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    return e as SafetensorsError;
  }
  throw new Error("expected a SafetensorsError, but the call succeeded");
}

describe("real fixtures", () => {
  it("case and aux files match manifest.json: names, dtypes, shapes, sizes", async () => {
    const manifest = JSON.parse(await readFile(join(FIXTURES, "manifest.json"), "utf8")) as Manifest;
    const byFile = new Map<string, string[]>();
    for (const [name, t] of Object.entries(manifest.tensors))
      byFile.set(t.file, [...(byFile.get(t.file) ?? []), name]);
    expect(byFile.size).toBeGreaterThanOrEqual(5);
    for (const [file, names] of byFile) {
      const path = join(FIXTURES, file);
      expect((await stat(path)).size).toBe(manifest.files[file].bytes);
      const ckpt = await openSafetensors(path);
      try {
        expect(ckpt.names()).toEqual([...names].sort());
        expect(ckpt.metadata).toEqual({ format: "pt" });
        for (const name of names) {
          const info = ckpt.info(name);
          expect([name, info.dtype, info.shape]).toEqual([
            name,
            manifest.tensors[name].dtype,
            manifest.tensors[name].shape,
          ]);
        }
      } finally {
        await ckpt.close();
      }
    }
  });

  it("case_batch values: finite activations, token ids in vocab, scalar loss", async () => {
    const tensors = await readSafetensorsFile(join(FIXTURES, "case_batch.safetensors"));
    for (const t of tensors.values()) {
      if (t.dtype === "F32") expect(toFloat32(t).every(Number.isFinite), t.name).toBe(true);
    }
    const ids = toInt32(tensors.get("batch.input_ids")!);
    expect(ids.length).toBe(2 * 41);
    expect(ids.every((v) => v >= 0 && v < 1000)).toBe(true);
    expect(ids).toContain(998); // <image>
    const loss = tensors.get("batch.loss")!;
    expect(loss.shape).toEqual([]);
    const lossValue = toFloat32(loss);
    expect(lossValue.length).toBe(1);
    expect(lossValue[0]).toBeGreaterThan(0);
    expect(Math.min(...toInt32(tensors.get("batch.labels")!))).toBe(-100);
  });

  it("model.safetensors: HF names, shapes agree with config and with the gradients in the manifest", async () => {
    const manifest = JSON.parse(await readFile(join(FIXTURES, "manifest.json"), "utf8")) as Manifest;
    const { vocab_size: vocab, hidden_size: hidden } = manifest.config.text_config;
    const ckpt = await openSafetensors(FIXTURES); // a directory: finds model.safetensors
    try {
      expect(ckpt.files).toEqual([join(FIXTURES, "model.safetensors")]);
      expect(ckpt.metadata).toEqual({ format: "pt" });
      expect(ckpt.info("lm_head.weight").shape).toEqual([vocab, hidden]);
      expect(ckpt.info("model.text_model.embed_tokens.weight").shape).toEqual([vocab, hidden]);
      for (const [name, t] of Object.entries(manifest.tensors)) {
        if (name.startsWith("batch.grad."))
          expect(ckpt.info(name.slice("batch.grad.".length)).shape).toEqual(t.shape);
      }
      let bytes = 0;
      for (const name of ckpt.names()) {
        const t = await ckpt.read(name);
        expect(t.dtype).toBe("F32");
        const v = toFloat32(t);
        expect(v.every(Number.isFinite), name).toBe(true);
        bytes += t.data.byteLength;
      }
      expect(bytes).toBeGreaterThan(1_400_000);
      const w = toFloat32(await ckpt.read("lm_head.weight"));
      expect(w.some((x) => x !== 0)).toBe(true);
    } finally {
      await ckpt.close();
    }
  });

  it("unknown name: error names the tensor and suggests the prefixed one; read after close fails", async () => {
    const ckpt = await openSafetensors(join(FIXTURES, "model.safetensors"));
    const e = await rejection(ckpt.read("text_model.norm.weight"));
    expect(e.tensor).toBe("text_model.norm.weight");
    expect(e.message).toContain("model.text_model.norm.weight");
    expect(() => ckpt.info("nope")).toThrow(/tensor "nope": no such tensor/);
    await ckpt.close();
    expect((await rejection(ckpt.read("lm_head.weight"))).message).toMatch(/after close/);
  });
});

describe("f16 / bf16 conversions (bit patterns)", () => {
  it("f16 -> f32: zeros, subnormals, normals, extremes, inf, NaN", () => {
    const cases: [number, number][] = [
      [0x0000, 0],
      [0x0001, 2 ** -24], // smallest subnormal
      [0x03ff, 1023 * 2 ** -24], // largest subnormal
      [0x0200, 2 ** -15],
      [0x0400, 2 ** -14], // smallest normal
      [0x3c00, 1],
      [0x3555, 0.333251953125],
      [0xc000, -2],
      [0x7bff, 65504], // largest finite
      [0x7c00, Number.POSITIVE_INFINITY],
      [0xfc00, Number.NEGATIVE_INFINITY],
    ];
    for (const [h, v] of cases) expect(f32(f16BitsToF32Bits(h)), `0x${h.toString(16)}`).toBe(v);
    expect(f16BitsToF32Bits(0x8000)).toBe(0x80000000); // -0 keeps its sign
    expect(f16BitsToF32Bits(0x8001)).toBe(bitsOf(-(2 ** -24)));
    expect(Number.isNaN(f32(f16BitsToF32Bits(0x7e00)))).toBe(true);
    expect(Number.isNaN(f32(f16BitsToF32Bits(0x7c01)))).toBe(true); // signalling NaN stays NaN, not inf
  });

  it("f32 -> f16: round to nearest even, overflow, underflow (pairs checked against numpy)", () => {
    const cases: [number, number][] = [
      [0x477fefff, 0x7bff], // 65519.996 -> 65504
      [0x477ff000, 0x7c00], // 65520 ties up to inf
      [0x477fe000, 0x7bff],
      [0xc77fffff, 0xfc00],
      [0x33000000, 0x0000], // 2^-25: tie to even -> 0
      [0x33000001, 0x0001],
      [0x337fffff, 0x0001],
      [0x38800000, 0x0400],
      [0x387fc000, 0x03ff], // largest subnormal, exact
      [0x387fe000, 0x0400], // rounds up across the subnormal/normal boundary
      [0x38ffe000, 0x07ff],
      [0x3f801000, 0x3c00], // 1 + 2^-11: tie to even (down)
      [0x3f803000, 0x3c02], // 1 + 3·2^-11: tie to even (up)
      [0x3f802000, 0x3c01],
      [0x3eaaaaab, 0x3555],
      [0x40490fdb, 0x4248], // pi
      [0x00000001, 0x0000],
      [0x80000000, 0x8000],
      [0x7f800000, 0x7c00],
      [0xff800000, 0xfc00],
    ];
    for (const [x, h] of cases) expect(f32BitsToF16Bits(x), `0x${x.toString(16)}`).toBe(h);
    const nan = f32BitsToF16Bits(0x7f800001); // payload only in low bits: must not become inf
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x03ff).not.toBe(0);
  });

  it("f16 -> f32 -> f16 is the identity for every non-NaN pattern", () => {
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue;
      if (f32BitsToF16Bits(f16BitsToF32Bits(h)) !== h)
        throw new Error(`round trip failed at 0x${h.toString(16)}`);
    }
  });

  it("bf16 <-> f32", () => {
    expect(f32(bf16BitsToF32Bits(0x3f80))).toBe(1);
    expect(f32(bf16BitsToF32Bits(0xc040))).toBe(-3);
    expect(f32(bf16BitsToF32Bits(0x0001))).toBe(2 ** -133); // subnormal
    expect(f32(bf16BitsToF32Bits(0x7f80))).toBe(Number.POSITIVE_INFINITY);
    expect(f32(bf16BitsToF32Bits(0xff80))).toBe(Number.NEGATIVE_INFINITY);
    expect(Number.isNaN(f32(bf16BitsToF32Bits(0x7fc0)))).toBe(true);
    expect(f32BitsToBf16Bits(0x3f808000)).toBe(0x3f80); // 1 + 2^-8: tie to even (down)
    expect(f32BitsToBf16Bits(0x3f818000)).toBe(0x3f82); // tie to even (up)
    expect(f32BitsToBf16Bits(0x3f808001)).toBe(0x3f81);
    expect(f32BitsToBf16Bits(0x7f7fffff)).toBe(0x7f80); // max f32 rounds to inf
    expect(f32BitsToBf16Bits(0x7f800001)).toBe(0x7fc0); // NaN stays NaN (truncation would give inf)
  });
});

/** One tensor of every dtype, with known values. */
function everyDtype(): Record<string, TensorToWrite> {
  return {
    f64: { dtype: "F64", shape: [3], data: new Float64Array([1.5, -(2 ** 60), Number.NaN]) },
    f32: { dtype: "F32", shape: [2, 2], data: new Float32Array([0, -1, 3.5, Number.POSITIVE_INFINITY]) },
    f16: fromFloat32(new Float32Array([1, -2, 65504, 2 ** -24, 0.1]), [5], "F16"),
    bf16: fromFloat32(new Float32Array([1, -3, 2 ** -133, 1e38]), [2, 2], "BF16"),
    i64: { dtype: "I64", shape: [3], data: new BigInt64Array([-5n, 2147483647n, -2147483648n]) },
    i32: { dtype: "I32", shape: [1, 3], data: new Int32Array([-7, 0, 2 ** 30]) },
    i16: { dtype: "I16", shape: [2], data: new Int16Array([-300, 300]) },
    i8: { dtype: "I8", shape: [2], data: new Int8Array([-128, 127]) },
    u64: { dtype: "U64", shape: [1], data: new BigUint64Array([123n]) },
    u32: { dtype: "U32", shape: [2], data: new Uint32Array([7, 2147483647]) },
    u16: { dtype: "U16", shape: [2], data: new Uint16Array([65535, 1]) },
    u8: { dtype: "U8", shape: [3], data: new Uint8Array([0, 128, 255]) },
    bool: { dtype: "BOOL", shape: [3], data: new Uint8Array([1, 0, 1]) },
    scalar: { dtype: "F32", shape: [], data: new Float32Array([42]) },
    empty: { dtype: "F16", shape: [0, 4], data: new Uint8Array(0) },
    "0": { dtype: "U8", shape: [1], data: new Uint8Array([9]) }, // integer-like name: order must still hold
  };
}

describe("write -> read round trips", () => {
  it("every dtype: bytes, shapes, metadata, header padding, name order, contiguous offsets", async () => {
    const path = join(tmp, "all.safetensors");
    const tensors = everyDtype();
    await writeSafetensors(path, tensors, { format: "pt", note: "round trip" });
    const raw = await readFile(path);
    const n = Number(raw.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const headerText = raw.subarray(8, 8 + n).toString("utf8");
    expect(headerText.trimEnd().length).toBeGreaterThan(n - 8); // only space padding, < 8 of it
    const header = JSON.parse(headerText) as Record<string, { data_offsets: [number, number] }>;
    const names = Object.keys(tensors).sort();
    expect(headerText.indexOf('"__metadata__"')).toBe(1);
    let last = -1;
    let cursor = 0;
    for (const name of names) {
      const at = headerText.indexOf(`${JSON.stringify(name)}:`);
      expect(at).toBeGreaterThan(last); // header lists tensors in name order
      last = at;
      expect(header[name].data_offsets[0]).toBe(cursor);
      cursor = header[name].data_offsets[1];
    }
    expect(8 + n + cursor).toBe(raw.byteLength);

    const back = await readSafetensorsFile(path);
    expect([...back.keys()]).toEqual(names);
    for (const name of names) {
      const t = back.get(name)!;
      const src = tensors[name];
      expect([t.dtype, t.shape]).toEqual([src.dtype, src.shape]);
      expect(
        Buffer.from(t.data).equals(Buffer.from(src.data.buffer, src.data.byteOffset, src.data.byteLength)),
        name,
      ).toBe(true);
    }
    const ckpt = await openSafetensors(path);
    expect(ckpt.metadata).toEqual({ format: "pt", note: "round trip" });
    await ckpt.close();

    const get = (name: string): SafetensorsTensor => back.get(name)!;
    expect([...toFloat32(get("f64"))]).toEqual([1.5, -(2 ** 60), Number.NaN]);
    expect([...toFloat32(get("f16"))]).toEqual([1, -2, 65504, 2 ** -24, Math.fround(0.0999755859375)]);
    expect([...toFloat32(get("bf16"))]).toEqual([
      1,
      -3,
      2 ** -133,
      f32(0x7e960000) /* 1e38 = 0x7e967699 truncates */,
    ]);
    expect([...toFloat32(get("i64"))]).toEqual([-5, 2147483648, -2147483648]); // 2^31-1 rounds in f32
    expect([...toInt32(get("i64"))]).toEqual([-5, 2147483647, -2147483648]);
    expect([...toInt32(get("i16"))]).toEqual([-300, 300]);
    expect([...toInt32(get("i8"))]).toEqual([-128, 127]);
    expect([...toInt32(get("u64"))]).toEqual([123]);
    expect([...toInt32(get("u32"))]).toEqual([7, 2147483647]);
    expect([...toInt32(get("u16"))]).toEqual([65535, 1]);
    expect([...toFloat32(get("u8"))]).toEqual([0, 128, 255]);
    expect([...toInt32(get("bool"))]).toEqual([1, 0, 1]);
    expect([...toFloat32(get("bool"))]).toEqual([1, 0, 1]);
    expect([...toFloat32(get("scalar"))]).toEqual([42]);
    expect(toFloat32(get("empty")).length).toBe(0);
  });

  it("toInt32 refuses out-of-range and non-integer data, naming the tensor", () => {
    const big: SafetensorsTensor = {
      name: "labels",
      file: "x.safetensors",
      dtype: "I64",
      shape: [2],
      data: new Uint8Array(new BigInt64Array([1n, 2147483648n]).buffer),
    };
    expect(() => toInt32(big)).toThrow(
      /x\.safetensors: tensor "labels": toInt32: element 1 is 2147483648, outside int32/,
    );
    const neg = { ...big, data: new Uint8Array(new BigInt64Array([-2147483649n, 0n]).buffer) };
    expect(() => toInt32(neg)).toThrow(/element 0 is -2147483649/);
    const u32 = { ...big, dtype: "U32" as const, data: new Uint8Array(new Uint32Array([0, 2 ** 31]).buffer) };
    expect(() => toInt32(u32)).toThrow(/element 1 is 2147483648/);
    expect(() => toInt32({ ...big, dtype: "F32", shape: [4] })).toThrow(
      /tensor "labels".*F32 is not an integer dtype/,
    );
    expect(() => toFloat32({ ...big, shape: [3] })).toThrow(/needs 24 bytes, data has 16/);
    expect(() => toFloat32({ ...big, dtype: "BOOL", shape: [16] })).toThrow(/BOOL element 11 is byte 128/);
  });

  it("writer refuses bad records, naming the tensor", async () => {
    const path = join(tmp, "refused.safetensors");
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { a: { dtype: "F32", shape: [3], data: new Float32Array(2) } },
        /tensor "a": write: F32 \[3\] needs 12 bytes, data has 8/,
      ],
      [
        { a: { dtype: "F17", shape: [1], data: new Uint8Array(2) } },
        /tensor "a": write: unknown dtype "F17"/,
      ],
      [
        { a: { dtype: "I32", shape: [2], data: new Float32Array(2) } },
        /data is a Float32Array but dtype is I32/,
      ],
      [
        { a: { dtype: "F32", shape: [-1], data: new Float32Array(1) } },
        /shape must be an array of non-negative integers/,
      ],
      [{ a: { dtype: "BOOL", shape: [1], data: new Uint8Array([2]) } }, /BOOL element 0 is byte 2/],
      [
        { __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } },
        /reserved or empty tensor name/,
      ],
    ];
    for (const [tensors, re] of cases) {
      const e = await rejection(writeSafetensors(path, tensors as Record<string, TensorToWrite>));
      expect(e.message).toMatch(re);
      expect(e.message).toContain(path);
    }
    await expect(writeSafetensors(path, {}, { n: 1 as unknown as string })).rejects.toThrow(
      /__metadata__\["n"\] must be a string/,
    );
    expect(await readdir(tmp)).not.toContain("refused.safetensors");
  });
});

describe("atomic write", () => {
  it("a refused record leaves the original untouched and no temp file", async () => {
    const dir = await mkdtemp(join(tmp, "atomic-"));
    const path = join(dir, "w.safetensors");
    await writeSafetensors(path, { a: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } });
    const before = await readFile(path);
    const e = await rejection(
      writeSafetensors(path, {
        a: { dtype: "F32", shape: [2], data: new Float32Array([3, 4]) },
        b: { dtype: "F32", shape: [4], data: new Float32Array(3) }, // wrong length
      }),
    );
    expect(e.tensor).toBe("b");
    expect(await readdir(dir)).toEqual(["w.safetensors"]);
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it("a failure midway through writing removes the temp file and keeps the original", async () => {
    const dir = await mkdtemp(join(tmp, "atomic-"));
    const path = join(dir, "w.safetensors");
    await writeSafetensors(path, { a: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } });
    const before = await readFile(path);
    const data = new Float32Array(1024);
    const pending = writeSafetensors(path, { a: { dtype: "F32", shape: [1024], data } });
    // Records are validated synchronously; detaching the buffer now makes the data write come up short.
    structuredClone(data.buffer, { transfer: [data.buffer] });
    const e = await rejection(pending);
    expect(e.message).toMatch(/write failed, file left untouched/);
    expect(await readdir(dir)).toEqual(["w.safetensors"]);
    expect((await readFile(path)).equals(before)).toBe(true);
  });
});

describe("sharded checkpoints", () => {
  const tensors = (): Record<string, TensorToWrite> => ({
    "layers.0.w": { dtype: "F32", shape: [4, 4], data: Float32Array.from({ length: 16 }, (_, i) => i) },
    "layers.1.w": { dtype: "F32", shape: [4, 4], data: Float32Array.from({ length: 16 }, (_, i) => -i) },
    "layers.1.b": fromFloat32(new Float32Array([0.5, 1.5]), [2], "BF16"),
    ids: { dtype: "I64", shape: [2], data: new BigInt64Array([3n, 4n]) },
  });

  it("write 2 shards + index, read back through the directory", async () => {
    const dir = await mkdtemp(join(tmp, "sharded-"));
    const { index, shards } = await writeShardedSafetensors(dir, tensors(), {
      maxShardBytes: 80,
      metadata: { format: "pt" },
    });
    expect(shards.map((s) => s.slice(dir.length + 1))).toEqual([
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
    ]);
    expect((await readdir(dir)).sort()).toEqual([
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "model.safetensors.index.json",
    ]);
    const ckpt = await openSafetensors(dir);
    try {
      expect(ckpt.path).toBe(index);
      expect(ckpt.files).toEqual(shards);
      expect(ckpt.indexMetadata).toEqual({ total_size: 64 + 64 + 4 + 16 });
      expect(ckpt.metadata).toEqual({ format: "pt" });
      expect(ckpt.names()).toEqual(["ids", "layers.0.w", "layers.1.b", "layers.1.w"]);
      expect(ckpt.info("layers.1.w").file).toBe(shards[1]);
      expect([...toFloat32(await ckpt.read("layers.1.w"))]).toEqual(Array.from({ length: 16 }, (_, i) => -i));
      expect([...toFloat32(await ckpt.read("layers.1.b"))]).toEqual([0.5, 1.5]);
      expect([...toInt32(await ckpt.read("ids"))]).toEqual([3, 4]);
    } finally {
      await ckpt.close();
    }
  });

  it("bad index: invalid JSON, no weight_map, missing shard, tensor absent from its shard, path escape", async () => {
    const dir = await mkdtemp(join(tmp, "badindex-"));
    await writeSafetensors(join(dir, "a.safetensors"), {
      x: { dtype: "U8", shape: [1], data: new Uint8Array([1]) },
    });
    const indexPath = join(dir, "model.safetensors.index.json");
    const attempt = async (index: string): Promise<SafetensorsError> => {
      await writeFile(indexPath, index);
      return rejection(openSafetensors(dir));
    };
    expect((await attempt("{ weight_map")).message).toMatch(
      /model\.safetensors\.index\.json: cannot read index/,
    );
    expect((await attempt('{"metadata": {}}')).message).toMatch(/no weight_map object/);
    let e = await attempt('{"weight_map": {"x": "a.safetensors", "y": "b.safetensors"}}');
    expect([e.file, e.tensor]).toEqual([indexPath, "y"]);
    expect(e.message).toMatch(/shard b\.safetensors \(holding 1 tensors\) does not exist/);
    e = await attempt('{"weight_map": {"x": "a.safetensors", "z": "a.safetensors"}}');
    expect([e.file, e.tensor]).toEqual([join(dir, "a.safetensors"), "z"]);
    expect(e.message).toMatch(/places this tensor here, but the shard lacks it/);
    e = await attempt('{"weight_map": {"x": "../a.safetensors"}}');
    expect(e.tensor).toBe("x");
    expect(e.message).toMatch(/shard file name beside the index/);
  });
});

describe("malformed headers are refused with file and tensor named", () => {
  let n = 0;
  /** A file from a header string (padded as given), data bytes, and an optional forged length. */
  async function build(header: string | Uint8Array, dataBytes = 0, length?: bigint): Promise<string> {
    const json = typeof header === "string" ? new TextEncoder().encode(header) : header;
    const buf = Buffer.alloc(8 + json.byteLength + dataBytes);
    buf.writeBigUInt64LE(length ?? BigInt(json.byteLength), 0);
    buf.set(json, 8);
    const path = join(tmp, `bad-${n++}.safetensors`);
    await writeFile(path, buf);
    return path;
  }
  async function refuse(path: string, re: RegExp, tensor?: string): Promise<void> {
    const e = await rejection(openSafetensors(path));
    expect(e.file).toBe(path);
    expect(e.message).toContain(path);
    expect(e.message).toMatch(re);
    expect(e.tensor).toBe(tensor);
    if (tensor !== undefined) expect(e.message).toContain(`tensor "${tensor}"`);
  }
  const entry = (dtype: unknown, shape: unknown, offsets: unknown): string =>
    JSON.stringify({ dtype, shape, data_offsets: offsets });

  it("file shorter than the length prefix", async () => {
    const path = join(tmp, "short.safetensors");
    await writeFile(path, Buffer.from([1, 0, 0]));
    await refuse(path, /3 bytes, too short/);
  });
  it("header length past end of file", async () => {
    await refuse(await build("{}", 0, 100n), /header length 100 runs past the end of the file \(10 bytes\)/);
  });
  it("header length above the 100 MB cap", async () => {
    await refuse(await build("{}", 0, 2n ** 40n), /exceeds the 100000000-byte cap/);
  });
  it("header not UTF-8", async () => {
    await refuse(await build(new Uint8Array([0x7b, 0xff, 0x7d])), /not valid UTF-8/);
  });
  it("header not JSON", async () => {
    await refuse(await build('{"a": '), /not valid JSON/);
  });
  it("header not an object", async () => {
    await refuse(await build("[1, 2]  "), /must start with '\{'/);
  });
  it("entry not an object", async () => {
    await refuse(await build('{"w": [1]}'), /entry must be an object/, "w");
  });
  it("unknown dtype", async () => {
    await refuse(await build(`{"w": ${entry("F8", [1], [0, 1])}}`, 1), /unknown dtype "F8"/, "w");
  });
  it("shape with a negative or fractional dim", async () => {
    await refuse(
      await build(`{"w": ${entry("U8", [-1], [0, 0])}}`),
      /shape must be an array of non-negative integers/,
      "w",
    );
    await refuse(await build(`{"w": ${entry("U8", [1.5], [0, 0])}}`), /shape must be/, "w");
    await refuse(await build(`{"w": ${entry("U8", "3", [0, 3])}}`, 3), /shape must be/, "w");
  });
  it("data_offsets not two non-negative integers", async () => {
    await refuse(
      await build(`{"w": ${entry("U8", [1], [0])}}`, 1),
      /data_offsets must be \[begin, end\]/,
      "w",
    );
    await refuse(await build(`{"w": ${entry("U8", [1], [0, "1"])}}`, 1), /data_offsets must be/, "w");
  });
  it("begin > end", async () => {
    await refuse(await build(`{"w": ${entry("U8", [0], [2, 1])}}`, 2), /\[2, 1\] have begin > end/, "w");
  });
  it("offsets past the data region", async () => {
    await refuse(
      await build(`{"w": ${entry("F32", [4], [0, 16])}}`, 8),
      /run past the end of the data region \(8 bytes\)/,
      "w",
    );
  });
  it("byte count differs from shape x dtype size", async () => {
    await refuse(
      await build(`{"w": ${entry("F32", [3], [0, 8])}}`, 8),
      /hold 8 bytes but F32 \[3\] needs 12/,
      "w",
    );
  });
  it("overlapping tensors", async () => {
    const h = `{"a": ${entry("U8", [4], [0, 4])}, "b": ${entry("U8", [4], [2, 6])}}`;
    await refuse(await build(h, 6), /\[2, 6\] overlap tensor "a"/, "b");
  });
  it("a hole between tensors", async () => {
    const h = `{"a": ${entry("U8", [2], [0, 2])}, "b": ${entry("U8", [2], [4, 6])}}`;
    await refuse(await build(h, 6), /leave a hole of 2 bytes after tensor "a"/, "b");
  });
  it("trailing bytes after the last tensor", async () => {
    await refuse(
      await build(`{"a": ${entry("U8", [2], [0, 2])}}`, 5),
      /3 trailing bytes belong to no tensor/,
    );
  });
  it("__metadata__ that is not string -> string", async () => {
    await refuse(
      await build(`{"__metadata__": {"epoch": 3}}`),
      /__metadata__\["epoch"\] must be a string, found 3/,
    );
    await refuse(await build(`{"__metadata__": ["pt"]}`), /__metadata__ must be an object of strings/);
  });
  it("a file truncated after it was opened fails on read, naming the tensor", async () => {
    const path = join(tmp, "truncated.safetensors");
    await writeSafetensors(path, { a: { dtype: "F32", shape: [64], data: new Float32Array(64) } });
    const ckpt = await openSafetensors(path);
    await truncate(path, 100);
    const e = await rejection(ckpt.read("a"));
    expect(e.message).toMatch(/unexpected end of file reading tensor "a"/);
    await ckpt.close();
  });
  it("well-formed edge cases are accepted: empty header, zero-size tensors, null metadata", async () => {
    const ok = await openSafetensors(
      await build('{"__metadata__": null, "z": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}  '),
    );
    expect(ok.names()).toEqual(["z"]);
    expect((await ok.read("z")).data.byteLength).toBe(0);
    await ok.close();
    const empty = await openSafetensors(await build("{}"));
    expect(empty.names()).toEqual([]);
    await empty.close();
  });
});
