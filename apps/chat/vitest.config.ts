import { defineConfig } from "vitest/config";
import { wgslText } from "../../tools/wgsl/vite-plugin.mjs";

// Workspace packages resolve to their TypeScript source ("source" export condition), so tests run
// unbuilt; `test:built` (WEBVLM_TEST_BUILT=1) resolves them to their built dist/ instead.
const conditions = [
  ...(process.env.WEBVLM_TEST_BUILT ? [] : ["source"]),
  "import",
  "module",
  "node",
  "default",
];

export default defineConfig({
  plugins: [wgslText()],
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: { testTimeout: 120_000, hookTimeout: 120_000, pool: "forks" },
});
