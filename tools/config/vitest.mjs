// The one test configuration of every package. Workspace packages resolve to their TypeScript
// source ("source" export condition), so tests run unbuilt; `test:built` (WEBVLM_TEST_BUILT=1)
// resolves them to their built dist/ instead. `.wgsl` files import as text, as in the build.
import { defineConfig } from "vitest/config";
import { wgslText } from "../wgsl/vite-plugin.mjs";

/** @param {{ fromSource?: boolean }} [options] fromSource: false always resolves to dist/ (dist-smoke). */
export function packageTests({ fromSource = !process.env.WEBVLM_TEST_BUILT } = {}) {
  const conditions = [...(fromSource ? ["source"] : []), "import", "module", "node", "default"];
  return defineConfig({
    // Always: a package's own sources may import .wgsl even when its dependencies come from dist/.
    plugins: [wgslText()],
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: conditions } },
    test: { testTimeout: 120_000, hookTimeout: 120_000, pool: "forks" },
  });
}
