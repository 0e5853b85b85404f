import { defineConfig } from "vitest/config";

// Deliberately no "source" condition and no WGSL plugin: packages resolve to their built dist/,
// exactly as a user who installed them gets them.
const conditions = ["import", "module", "node", "default"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: { testTimeout: 120_000, hookTimeout: 120_000, pool: "forks" },
});
