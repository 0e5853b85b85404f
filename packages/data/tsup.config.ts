import { defineConfig } from "tsup";

export default defineConfig({
  // Worker transforms are entries of their own: a worker thread loads them by path.
  entry: {
    index: "src/index.ts",
    "datasets/transforms/decode-rgb": "src/datasets/transforms/decode-rgb.ts",
    "datasets/transforms/idefics2-images": "src/datasets/transforms/idefics2-images.ts",
  },
  format: ["esm"],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "node20",
  loader: { ".wgsl": "text" },
});
