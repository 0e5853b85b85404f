// Multi-tensor launches: one dispatch covers many parameters by reading a table of tiles, each a
// run of at most TILE_ELEMENTS elements of one parameter. A workgroup takes one tile, so all its
// threads read the same per-parameter row of hyperparameters. Buffers bigger than one storage
// binding (maxStorageBufferBindingSize: 128 MiB on lavapipe) are walked in windows, one dispatch each.
import type { Device, KernelBinding } from "@webvlm/tensor";

/** Elements per tile: 256 threads × 16 elements. */
export const TILE_ELEMENTS = 4096;
/** Workgroup size shared by every optimizer kernel. */
export const WORKGROUP = 256;

/** A run of elements of one parameter, relative to the start of its bank. */
export interface Segment {
  /** Row of the hyperparameter table (the parameter's index in its optimizer). */
  id: number;
  start: number;
  length: number;
}

/** One dispatch's share of a bank: elements [start, start + length) and the tiles covering them. */
export interface Window {
  start: number;
  length: number;
  tileBase: number;
  tileCount: number;
}

export interface TilePlan {
  /** 4 u32 per tile: segment id, first element relative to the window, length, 0. */
  tiles: Uint32Array;
  windows: Window[];
}

/** Largest window, in f32 elements, that fits one binding even when its start is rounded down for alignment. */
export function windowElements(device: Device, maxBindingBytes?: number): number {
  const limit = Math.min(maxBindingBytes ?? device.maxBindingBytes, device.maxBindingBytes);
  const align = offsetAlignment(device);
  const elems = Math.floor((limit - align) / 4 / 64) * 64;
  if (elems < 64)
    throw new RangeError(`maxBindingBytes ${limit} leaves no room for a window (alignment ${align} bytes)`);
  return elems;
}

export function offsetAlignment(device: Device): number {
  return device.gpu.limits.minStorageBufferOffsetAlignment;
}

/**
 * Cuts segments (sorted or not; they must not overlap) into windows of at most `windowElems`
 * and tiles of at most TILE_ELEMENTS. Tile numbering starts at `tileBase0`, so several plans can
 * share one table. Windows without a segment are left out.
 */
export function planTiles(segments: readonly Segment[], windowElems: number, tileBase0 = 0): TilePlan {
  const sorted = [...segments].filter((s) => s.length > 0).sort((a, b) => a.start - b.start);
  const tiles: number[] = [];
  const windows: Window[] = [];
  if (sorted.length === 0) return { tiles: new Uint32Array(0), windows };
  const end = Math.max(...sorted.map((s) => s.start + s.length));
  let next = 0; // first segment that may still reach into the current window
  for (let ws = sorted[0]!.start; ws < end; ) {
    const we = Math.min(ws + windowElems, end);
    const tileBase = tileBase0 + tiles.length / 4;
    for (let k = next; k < sorted.length; k++) {
      const s = sorted[k]!;
      if (s.start >= we) break;
      const a = Math.max(s.start, ws);
      const b = Math.min(s.start + s.length, we);
      for (let t = a; t < b; t += TILE_ELEMENTS) tiles.push(s.id, t - ws, Math.min(TILE_ELEMENTS, b - t), 0);
    }
    while (next < sorted.length && sorted[next]!.start + sorted[next]!.length <= we) next++;
    const tileCount = tileBase0 + tiles.length / 4 - tileBase;
    if (tileCount > 0) windows.push({ start: ws, length: we - ws, tileBase, tileCount });
    // Jump over a gap with no segment instead of stepping through empty windows.
    ws = next < sorted.length ? Math.max(we, sorted[next]!.start) : end;
  }
  return { tiles: Uint32Array.from(tiles), windows };
}

/**
 * Binds the part of `buffer` that holds elements [base + win.start, base + win.start + win.length)
 * of an f32 array. The binding starts at an aligned byte offset at or before the first element;
 * `offset` is that element's index inside the binding.
 */
/** Tile tables of several buffers back to back, as one kernel reads them (at least one tile, so it binds). */
export function concatTileTables(tables: readonly Uint32Array[]): Uint32Array {
  const tiles = tables.reduce((n, t) => n + t.length, 0);
  const table = new Uint32Array(Math.max(tiles, 4));
  let at = 0;
  for (const t of tables) {
    table.set(t, at);
    at += t.length;
  }
  return table;
}

export function bindWindow(
  device: Device,
  buffer: GPUBuffer,
  base: number,
  win: { start: number; length: number },
): { binding: KernelBinding; offset: number } {
  const align = offsetAlignment(device);
  const first = (base + win.start) * 4;
  const bindStart = Math.floor(first / align) * align;
  const offset = (first - bindStart) / 4;
  const size = Math.min(buffer.size - bindStart, (offset + win.length) * 4);
  return { binding: { buffer, offset: bindStart, size }, offset };
}

/** 2-D grid of one-invocation-per-tile workgroups that stays under the per-dimension limit. */
export function tileGrid(device: Device, tiles: number): [number, number] {
  const maxX = device.gpu.limits.maxComputeWorkgroupsPerDimension;
  if (tiles <= maxX) return [tiles, 1];
  const y = Math.ceil(tiles / maxX);
  return [Math.ceil(tiles / y), y];
}
