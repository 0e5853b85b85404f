import { defineConfig } from "vitest/config";
import { wgslText } from "../../tools/wgsl/vite-plugin.mjs";

export default defineConfig({
  plugins: [wgslText()],
  resolve: { conditions: ["source"] },
  test: { testTimeout: 120_000, hookTimeout: 120_000, pool: "forks" },
});
