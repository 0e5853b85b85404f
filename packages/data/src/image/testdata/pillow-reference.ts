// Loads pillow-reference.{json,bin} (made by make-pillow-reference.py with Pillow itself).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ResampleFilter } from "../resample.js";

type Span = [number, number];
interface Decoded {
  width: number;
  height: number;
  rgb: Span;
}
interface Manifest {
  pillow: string;
  resize: {
    width: number;
    height: number;
    outWidth: number;
    outHeight: number;
    filter: ResampleFilter;
    input: Span;
    output: Span;
  }[];
  decode: { name: string; file: Span; drop: Decoded; white?: Decoded }[];
}

const here = dirname(fileURLToPath(import.meta.url));
const manifest = JSON.parse(readFileSync(join(here, "pillow-reference.json"), "utf8")) as Manifest;
const blob = new Uint8Array(readFileSync(join(here, "pillow-reference.bin")));
const bytes = ([offset, length]: Span): Uint8Array => blob.subarray(offset, offset + length);

export const pillowVersion = manifest.pillow;

export const resizeCases = manifest.resize.map((c) => ({
  ...c,
  input: bytes(c.input),
  output: bytes(c.output),
}));

export const decodeCases = manifest.decode.map((c) => ({
  name: c.name,
  file: bytes(c.file),
  drop: { width: c.drop.width, height: c.drop.height, data: bytes(c.drop.rgb) },
  white: c.white && { width: c.white.width, height: c.white.height, data: bytes(c.white.rgb) },
}));
