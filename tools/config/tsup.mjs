// The one build configuration of every package: ESM + .d.ts for Node 20, `.wgsl` imported as text
// (the same rule tools/wgsl/vite-plugin.mjs applies in tests).
import { defineConfig } from "tsup";

/** @param {string[] | Record<string, string>} entry */
export function packageBuild(entry = ["src/index.ts"]) {
  return defineConfig({
    entry,
    format: ["esm"],
    dts: true,
    clean: true,
    sourcemap: true,
    target: "node20",
    loader: { ".wgsl": "text" },
  });
}
