// One rule for WGSL everywhere: a `.wgsl` import is its source text.
// tsup does the same with `loader: { ".wgsl": "text" }`; tools/wgsl/register.mjs does it for plain node/tsx.
import { readFileSync } from "node:fs";

export function wgslText() {
  return {
    name: "webvlm-wgsl-text",
    enforce: "pre",
    load(id) {
      const path = id.split("?")[0];
      if (!path.endsWith(".wgsl")) return null;
      return `export default ${JSON.stringify(readFileSync(path, "utf8"))};`;
    },
  };
}
