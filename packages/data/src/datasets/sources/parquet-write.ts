import { parquetWriteFile } from "hyparquet-writer";
import type { DatasetImage, Turn } from "../types.js";

// hyparquet-writer pins its own hyparquet, whose SchemaElement type differs slightly from ours.
type SchemaElement = NonNullable<Parameters<typeof parquetWriteFile>[0]["schema"]>[number];

/** The Cauldron's schema as `datasets` writes it: `images: list<struct<bytes, path>>`, `texts: list<struct<user, assistant, source>>`. */
export const CAULDRON_SCHEMA: SchemaElement[] = [
  { name: "schema", num_children: 2 },
  { name: "images", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
  { name: "list", repetition_type: "REPEATED", num_children: 1 },
  { name: "element", repetition_type: "OPTIONAL", num_children: 2 },
  { name: "bytes", repetition_type: "OPTIONAL", type: "BYTE_ARRAY" },
  { name: "path", repetition_type: "OPTIONAL", type: "BYTE_ARRAY", converted_type: "UTF8" },
  { name: "texts", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
  { name: "list", repetition_type: "REPEATED", num_children: 1 },
  { name: "element", repetition_type: "OPTIONAL", num_children: 3 },
  { name: "user", repetition_type: "OPTIONAL", type: "BYTE_ARRAY", converted_type: "UTF8" },
  { name: "assistant", repetition_type: "OPTIONAL", type: "BYTE_ARRAY", converted_type: "UTF8" },
  { name: "source", repetition_type: "OPTIONAL", type: "BYTE_ARRAY", converted_type: "UTF8" },
];

export interface CauldronRow {
  images: DatasetImage[];
  turns: Turn[];
}

/** Writes rows as one Cauldron-schema parquet file (snappy, page indexes on, so readers can seek by row). */
export function writeCauldronParquet(
  path: string,
  rows: readonly CauldronRow[],
  options: { rowGroupSize?: number; pageSize?: number } = {},
): void {
  parquetWriteFile({
    filename: path,
    schema: CAULDRON_SCHEMA,
    columnData: [
      { name: "images", data: rows.map((r) => r.images.map((im) => ({ bytes: im.bytes, path: im.path }))) },
      {
        name: "texts",
        data: rows.map((r) =>
          r.turns.map((t) => ({ user: t.user, assistant: t.assistant, source: t.source })),
        ),
      },
    ],
    rowGroupSize: options.rowGroupSize ?? 256,
    pageSize: options.pageSize,
    statistics: false,
  });
}
