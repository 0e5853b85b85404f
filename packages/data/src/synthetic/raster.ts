import { ADVANCE_X, ADVANCE_Y, FONT, GLYPH_HEIGHT, GLYPH_WIDTH } from "./font.js";

export type Rgb = readonly [number, number, number];

/**
 * An 8-bit RGB image drawn with integer arithmetic only (pixel centres tested in
 * doubled coordinates), so every machine produces the same pixels.
 */
export class Canvas {
  readonly data: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = [255, 255, 255],
  ) {
    if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
      throw new RangeError(`Canvas: size must be positive integers, got ${width}x${height}`);
    }
    this.data = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) this.data.set(background, i * 3);
  }

  pixel(x: number, y: number): Rgb {
    const i = (y * this.width + x) * 3;
    return [this.data[i], this.data[i + 1], this.data[i + 2]];
  }

  private set(x: number, y: number, c: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    this.data.set(c, (y * this.width + x) * 3);
  }

  /** Pixels with x in [x0, x1) and y in [y0, y1). */
  fillRect(x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
    for (let y = Math.max(0, y0); y < Math.min(this.height, y1); y++) {
      for (let x = Math.max(0, x0); x < Math.min(this.width, x1); x++) this.set(x, y, c);
    }
  }

  /** Pixels whose centre lies within `r` of (cx, cy) (integers: a pixel corner). */
  fillCircle(cx: number, cy: number, r: number, c: Rgb): void {
    const r2 = 4 * r * r;
    for (let y = cy - r; y < cy + r; y++) {
      for (let x = cx - r; x < cx + r; x++) {
        const dx = 2 * x + 1 - 2 * cx;
        const dy = 2 * y + 1 - 2 * cy;
        if (dx * dx + dy * dy <= r2) this.set(x, y, c);
      }
    }
  }

  /** A convex polygon with integer vertices (pixel corners), in either winding order. */
  fillConvex(points: readonly (readonly [number, number])[], c: Rgb): void {
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const n = points.length;
    for (let y = Math.min(...ys); y < Math.max(...ys); y++) {
      for (let x = Math.min(...xs); x < Math.max(...xs); x++) {
        const px = 2 * x + 1;
        const py = 2 * y + 1;
        let pos = false;
        let neg = false;
        for (let i = 0; i < n; i++) {
          const [ax, ay] = points[i];
          const [bx, by] = points[(i + 1) % n];
          const e = (2 * bx - 2 * ax) * (py - 2 * ay) - (2 * by - 2 * ay) * (px - 2 * ax);
          if (e > 0) pos = true;
          else if (e < 0) neg = true;
        }
        if (!(pos && neg)) this.set(x, y, c);
      }
    }
  }

  /** Draws `text` (uppercased) with its top-left at (x, y), each font pixel a `scale`×`scale` block; `\n` starts a line. */
  drawText(text: string, x: number, y: number, scale: number, c: Rgb): void {
    const lines = text.toUpperCase().split("\n");
    lines.forEach((line, li) => {
      [...line].forEach((ch, ci) => {
        const glyph = FONT.get(ch);
        if (!glyph) throw new RangeError(`drawText: no glyph for '${ch}' in "${text}"`);
        const gx = x + ci * ADVANCE_X * scale;
        const gy = y + li * ADVANCE_Y * scale;
        for (let row = 0; row < GLYPH_HEIGHT; row++) {
          for (let col = 0; col < GLYPH_WIDTH; col++) {
            if ((glyph[row] >> (GLYPH_WIDTH - 1 - col)) & 1)
              this.fillRect(
                gx + col * scale,
                gy + row * scale,
                gx + (col + 1) * scale,
                gy + (row + 1) * scale,
                c,
              );
          }
        }
      });
    });
  }
}

/** Pixel size of `text` drawn at `scale` (without the trailing spacing). */
export function textSize(text: string, scale: number): { width: number; height: number } {
  const lines = text.split("\n");
  const cols = Math.max(...lines.map((l) => l.length));
  return {
    width: cols > 0 ? (cols * ADVANCE_X - (ADVANCE_X - GLYPH_WIDTH)) * scale : 0,
    height: (lines.length * ADVANCE_Y - (ADVANCE_Y - GLYPH_HEIGHT)) * scale,
  };
}
