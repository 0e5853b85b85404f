import { defineConfig } from "vitest/config";
import { wgslText } from "../../tools/wgsl/vite-plugin.mjs";

// Workspace packages resolve to their TypeScript source ("source" export condition), so tests run unbuilt.
const conditions = ["source", "import", "module", "node", "default"];

export default defineConfig({
  plugins: [wgslText()],
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: { testTimeout: 120_000, hookTimeout: 120_000, pool: "forks" },
});
