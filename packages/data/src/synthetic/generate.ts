import { mkdirSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { deriveSeed, Rng } from "../datasets/rng.js";
import { writeCauldronParquet } from "../datasets/sources/parquet-write.js";
import type { Turn } from "../datasets/types.js";
import { Canvas, type Rgb, textSize } from "./raster.js";

export const SHAPES = ["circle", "square", "triangle", "diamond"] as const;
export type Shape = (typeof SHAPES)[number];

export const COLOURS = {
  red: [220, 38, 38],
  green: [22, 163, 74],
  blue: [37, 99, 235],
  yellow: [234, 179, 8],
  purple: [147, 51, 234],
  orange: [249, 115, 22],
  black: [17, 17, 17],
} as const satisfies Record<string, Rgb>;
export type Colour = keyof typeof COLOURS;
const COLOUR_NAMES = Object.keys(COLOURS) as Colour[];
const TEXT_COLOURS: Colour[] = ["black", "blue", "red", "green", "purple"];

/** Cells of the 3×3 grid, row-major, as answers to "where is ...?". */
export const POSITIONS = [
  "top left",
  "top",
  "top right",
  "left",
  "center",
  "right",
  "bottom left",
  "bottom",
  "bottom right",
] as const;

export type SyntheticTask = "shape" | "colour" | "count" | "position" | "text";
export const SYNTHETIC_TASKS: readonly SyntheticTask[] = ["shape", "colour", "count", "position", "text"];

const WORDS = (
  "apple river stone cloud tiger lemon piano rocket garden silver window orange planet candle forest mirror " +
  "yellow bridge castle dragon eagle falcon guitar harbor island jungle kettle ladder marble needle ocean " +
  "pepper quartz rabbit saddle tunnel velvet walnut zebra anchor button copper desert engine feather glacier hammer"
).split(" ");

export interface SyntheticOptions {
  seed: number;
  /** Tasks drawn uniformly per example (default: all five). */
  tasks?: readonly SyntheticTask[];
  /** Side of the square shape images (default 96). */
  shapeSize?: number;
  /** Most shapes in a counting image, at most 9 (default 6). */
  maxCount?: number;
  /** Width and height of text images (default 192×96). */
  textWidth?: number;
  textHeight?: number;
  /** Font scales to draw text at: 1 is 5×7-pixel glyphs (default [1, 2, 3]). */
  textScales?: readonly number[];
  /** Most words in a reading example (default 6). */
  maxWords?: number;
}

export interface ShapeObject {
  shape: Shape;
  colour: Colour;
  /** Centre and radius in pixels. */
  cx: number;
  cy: number;
  r: number;
}

/** An image whose answers are known by construction. */
export interface SyntheticExample {
  id: string;
  index: number;
  task: SyntheticTask;
  width: number;
  height: number;
  /** RGB, row-major. */
  pixels: Uint8Array;
  turns: Turn[];
  objects: ShapeObject[];
  /** For `text`: what is drawn (lines joined by spaces) and at which font scale. */
  text?: { text: string; scale: number; lines: string[]; x: number; y: number; colour: Colour };
}

/** Example `index` of the stream seeded by `seed`: a pure function of both, so any prefix or slice can be regenerated alone. */
export function syntheticExample(options: SyntheticOptions, index: number): SyntheticExample {
  const rng = new Rng(deriveSeed(options.seed, "synthetic", index));
  const tasks = options.tasks ?? SYNTHETIC_TASKS;
  if (tasks.length === 0) throw new RangeError("synthetic: tasks is empty");
  const task = rng.pick(tasks);
  const id = `synthetic/${options.seed}/${index}`;
  const source = `synthetic/${task}`;
  if (task === "text") return textExample(rng, options, id, index, source);

  const size = options.shapeSize ?? 96;
  if (size < 24) throw new RangeError(`synthetic: shapeSize must be >= 24, got ${size}`);
  const canvas = new Canvas(size, size);
  const objects: ShapeObject[] = [];
  const cell = Math.floor(size / 3);
  let turn: { user: string; assistant: string };
  if (task === "count") {
    const maxCount = Math.min(9, options.maxCount ?? 6);
    const k = rng.range(1, maxCount);
    const cells = rng
      .shuffle([0, 1, 2, 3, 4, 5, 6, 7, 8])
      .slice(0, k)
      .sort((a, b) => a - b);
    for (const c of cells) objects.push(inCell(rng, c, cell, rng.pick(SHAPES), rng.pick(COLOUR_NAMES)));
    if (rng.int(2) === 0) {
      turn = { user: "How many shapes are in the image?", assistant: String(k) };
    } else {
      const shape = rng.pick(SHAPES);
      turn = {
        user: `How many ${shape}s are in the image?`,
        assistant: String(objects.filter((o) => o.shape === shape).length),
      };
    }
  } else if (task === "position") {
    const c = rng.int(9);
    const o = inCell(rng, c, cell, rng.pick(SHAPES), rng.pick(COLOUR_NAMES));
    objects.push(o);
    turn = { user: `Where is the ${o.colour} ${o.shape}?`, assistant: POSITIONS[c] };
  } else {
    const r = rng.range(Math.floor(size / 8), Math.floor(size / 4));
    const o: ShapeObject = {
      shape: rng.pick(SHAPES),
      colour: rng.pick(COLOUR_NAMES),
      cx: rng.range(r, size - r),
      cy: rng.range(r, size - r),
      r,
    };
    objects.push(o);
    turn =
      task === "shape"
        ? { user: "What shape is in the image?", assistant: o.shape }
        : { user: `What colour is the ${o.shape}?`, assistant: o.colour };
  }
  for (const o of objects) drawShape(canvas, o);
  return {
    id,
    index,
    task,
    width: size,
    height: size,
    pixels: canvas.data,
    turns: [{ ...turn, source }],
    objects,
  };
}

/** A shape centred in grid cell `c` (row-major 3×3) with a little jitter, never leaving the cell. */
function inCell(rng: Rng, c: number, cell: number, shape: Shape, colour: Colour): ShapeObject {
  const r = rng.range(Math.max(4, Math.floor(cell / 4)), Math.floor(cell / 2) - 2);
  const slack = Math.floor(cell / 2) - r;
  const cx = (c % 3) * cell + Math.floor(cell / 2) + rng.range(-slack, slack);
  const cy = Math.floor(c / 3) * cell + Math.floor(cell / 2) + rng.range(-slack, slack);
  return { shape, colour, cx, cy, r };
}

export function drawShape(canvas: Canvas, o: ShapeObject): void {
  const c = COLOURS[o.colour];
  const { cx, cy, r } = o;
  if (o.shape === "circle") canvas.fillCircle(cx, cy, r, c);
  else if (o.shape === "square") {
    const h = r - Math.floor(r / 6); // a bit smaller, so a square does not look bigger than the circle of the same r
    canvas.fillRect(cx - h, cy - h, cx + h, cy + h, c);
  } else if (o.shape === "triangle")
    canvas.fillConvex(
      [
        [cx, cy - r],
        [cx + r, cy + r],
        [cx - r, cy + r],
      ],
      c,
    );
  else
    canvas.fillConvex(
      [
        [cx, cy - r],
        [cx + r, cy],
        [cx, cy + r],
        [cx - r, cy],
      ],
      c,
    );
}

function textExample(
  rng: Rng,
  options: SyntheticOptions,
  id: string,
  index: number,
  source: string,
): SyntheticExample {
  const width = options.textWidth ?? 192;
  const height = options.textHeight ?? 96;
  const margin = 4;
  const scales = options.textScales ?? [1, 2, 3];
  const nWords = rng.range(1, options.maxWords ?? 6);
  const words: string[] = [];
  for (let i = 0; i < nWords; i++)
    words.push(rng.int(5) === 0 ? String(rng.range(0, 9999)) : rng.pick(WORDS));
  let scale = rng.pick(scales);
  // Shrink the font, then drop words, until the wrapped text fits inside the margins.
  let lines = wrap(words, scale, width - 2 * margin);
  while (scale > 1 && (!lines || textSize(lines.join("\n"), scale).height > height - 2 * margin))
    lines = wrap(words, --scale, width - 2 * margin);
  while (words.length > 1 && (!lines || textSize(lines.join("\n"), scale).height > height - 2 * margin)) {
    words.pop();
    lines = wrap(words, scale, width - 2 * margin);
  }
  if (!lines || textSize(lines.join("\n"), scale).height > height - 2 * margin) {
    throw new RangeError(
      `synthetic: a ${width}x${height} text image cannot hold '${words[0]}' even at scale 1`,
    );
  }
  const block = textSize(lines.join("\n"), scale);
  const x = margin + rng.int(width - 2 * margin - block.width + 1);
  const y = margin + rng.int(height - 2 * margin - block.height + 1);
  const canvas = new Canvas(width, height);
  const colour = rng.pick(TEXT_COLOURS);
  canvas.drawText(lines.join("\n"), x, y, scale, COLOURS[colour]);
  const text = words.join(" ").toUpperCase();
  const user = rng.int(2) === 0 ? "What does the text in the image say?" : "Read the text in the image.";
  return {
    id,
    index,
    task: "text",
    width,
    height,
    pixels: canvas.data,
    turns: [{ user, assistant: text, source }],
    objects: [],
    text: { text, scale, lines, x, y, colour },
  };
}

/** Greedy word wrap to `maxWidth` pixels at `scale`; null when one word alone is too wide. */
function wrap(words: string[], scale: number, maxWidth: number): string[] | null {
  const lines: string[] = [];
  let line = "";
  for (const w of words) {
    const candidate = line ? `${line} ${w}` : w;
    if (textSize(candidate, scale).width <= maxWidth) line = candidate;
    else {
      if (textSize(w, scale).width > maxWidth) return null;
      lines.push(line);
      line = w;
    }
  }
  lines.push(line);
  return lines.map((l) => l.toUpperCase());
}

/** Examples `start` .. `start + count - 1`. */
export function generateSynthetic(
  options: SyntheticOptions & { count: number; start?: number },
): SyntheticExample[] {
  const start = options.start ?? 0;
  return Array.from({ length: options.count }, (_, i) => syntheticExample(options, start + i));
}

/** PNG bytes of an RGB image (sharp; fixed settings and no metadata, so equal pixels give equal files for one sharp build). */
export async function encodePng(pixels: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  const buf = await sharp(pixels, { raw: { width, height, channels: 3 } })
    .png({ compressionLevel: 6, adaptiveFiltering: false, palette: false })
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

export interface WriteSyntheticOptions extends SyntheticOptions {
  /** Folder for the shards (created if missing). */
  dir: string;
  /** Examples per shard file. */
  perShard: number;
  shards?: number;
  rowGroupSize?: number;
}

/**
 * Writes `shards` Cauldron-schema parquet files (`synthetic-00000.parquet`, ...)
 * of `perShard` examples each, so training reads them like The Cauldron. Each
 * image's `path` is the example id plus `.png`. Returns the file paths.
 */
export async function writeSyntheticCauldron(options: WriteSyntheticOptions): Promise<string[]> {
  mkdirSync(options.dir, { recursive: true });
  const files: string[] = [];
  for (let s = 0; s < (options.shards ?? 1); s++) {
    const examples = generateSynthetic({ ...options, count: options.perShard, start: s * options.perShard });
    const rows = await Promise.all(
      examples.map(async (ex) => ({
        images: [{ bytes: await encodePng(ex.pixels, ex.width, ex.height), path: `${ex.id}.png` }],
        turns: ex.turns,
      })),
    );
    const file = join(options.dir, `synthetic-${String(s).padStart(5, "0")}.parquet`);
    writeCauldronParquet(file, rows, { rowGroupSize: options.rowGroupSize });
    files.push(file);
  }
  return files;
}
