import type { BadRecord, DatasetImage, Sample, Segment, Turn } from "../types.js";
import { asText, describe, type ImageRefOptions, isBad, loadImageRef } from "./image-ref.js";

/**
 * Row layouts the readers understand:
 * - `cauldron`: `images: [{bytes, path}]`, `texts: [{user, assistant, source}]`
 * - `obelics`: `images` and `texts` of equal length, exactly one of them non-null at each position
 * - `pair` (JSONL only): `image` and `text` (or `caption`)
 */
export type RowSchema = "cauldron" | "obelics" | "pair";

export function detectRowSchema(row: Record<string, unknown>): RowSchema | null {
  if ("image" in row && ("text" in row || "caption" in row)) return "pair";
  const texts = row.texts;
  if (!Array.isArray(texts)) return null;
  const first = texts.find((t) => t !== null && t !== undefined);
  if (first === undefined) return row.images === undefined ? null : "obelics";
  if (typeof first === "string" || first instanceof Uint8Array) return "obelics";
  if (typeof first === "object") return "cauldron";
  return null;
}

/** A dataset row as a `Sample`, or the reason it is bad. */
export async function rowToSample(
  row: Record<string, unknown>,
  id: string,
  schema: RowSchema | "auto",
  options: ImageRefOptions,
): Promise<Sample | BadRecord> {
  const kind = schema === "auto" ? detectRowSchema(row) : schema;
  if (kind === null) {
    return {
      id,
      reason: "schema",
      detail: `cannot tell the row layout from keys [${Object.keys(row).join(", ")}]; expected images+texts or image+text`,
    };
  }
  if (kind === "cauldron") return cauldronRow(row, id, options);
  if (kind === "obelics") return obelicsRow(row, id, options);
  return pairRow(row, id, options);
}

async function cauldronRow(
  row: Record<string, unknown>,
  id: string,
  options: ImageRefOptions,
): Promise<Sample | BadRecord> {
  const { images, texts } = row;
  if (images !== null && images !== undefined && !Array.isArray(images)) {
    return { id, reason: "schema", detail: `images is ${describe(images)}, expected a list` };
  }
  if (!Array.isArray(texts) || texts.length === 0)
    return {
      id,
      reason: "schema",
      detail: `texts is ${describe(texts)}, expected a non-empty list of {user, assistant}`,
    };
  const turns: Turn[] = [];
  for (let i = 0; i < texts.length; i++) {
    const t = texts[i] as Record<string, unknown> | null;
    const user = t && typeof t === "object" ? asText(t.user) : null;
    const assistant = t && typeof t === "object" ? asText(t.assistant) : null;
    if (user === null || assistant === null) {
      return {
        id,
        reason: "schema",
        detail: `texts[${i}] is ${describe(t)}, expected {user: string, assistant: string}`,
      };
    }
    turns.push({ user, assistant, source: asText(t?.source) });
  }
  const out: DatasetImage[] = [];
  const list = (images ?? []) as unknown[];
  for (let i = 0; i < list.length; i++) {
    const img = await loadImageRef(list[i], id, i, options);
    if (isBad(img)) return img;
    out.push(img);
  }
  return { kind: "conversation", id, images: out, turns };
}

async function obelicsRow(
  row: Record<string, unknown>,
  id: string,
  options: ImageRefOptions,
): Promise<Sample | BadRecord> {
  const { images, texts } = row;
  if (!Array.isArray(images) || !Array.isArray(texts)) {
    return {
      id,
      reason: "schema",
      detail: `images is ${describe(images)} and texts is ${describe(texts)}, expected two lists`,
    };
  }
  if (images.length !== texts.length) {
    return {
      id,
      reason: "schema",
      detail: `images has ${images.length} entries but texts has ${texts.length}; they must align`,
    };
  }
  const segments: Segment[] = [];
  let imageIndex = 0;
  for (let i = 0; i < texts.length; i++) {
    const img = images[i];
    const txt = texts[i];
    const hasImage = img !== null && img !== undefined;
    const hasText = txt !== null && txt !== undefined;
    if (hasImage === hasText) {
      return {
        id,
        reason: "schema",
        detail: `position ${i} has ${hasImage ? "both an image and a text" : "neither an image nor a text"}`,
      };
    }
    if (hasText) {
      const text = asText(txt);
      if (text === null)
        return { id, reason: "schema", detail: `texts[${i}] is ${describe(txt)}, expected a string` };
      segments.push({ type: "text", text });
    } else {
      const loaded = await loadImageRef(img, id, imageIndex++, options);
      if (isBad(loaded)) return loaded;
      segments.push({ type: "image", image: loaded });
    }
  }
  if (segments.length === 0)
    return { id, reason: "empty", detail: "the document has no texts and no images" };
  return { kind: "interleaved", id, segments };
}

async function pairRow(
  row: Record<string, unknown>,
  id: string,
  options: ImageRefOptions,
): Promise<Sample | BadRecord> {
  const text = asText(row.text ?? row.caption);
  if (text === null)
    return {
      id,
      reason: "schema",
      detail: `text is ${describe(row.text ?? row.caption)}, expected a string`,
    };
  const image = await loadImageRef(row.image, id, 0, options);
  if (isBad(image)) return image;
  return {
    kind: "interleaved",
    id,
    segments: [
      { type: "image", image },
      { type: "text", text },
    ],
  };
}
