// Exit 0 when Dawn finds a WebGPU adapter, 1 otherwise. Used by tools/setup.sh to decide
// whether the software Vulkan driver (Mesa lavapipe) must be installed.

import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), "xdg-"));
const require = createRequire(new URL("../packages/tensor/package.json", import.meta.url));
let gpu;
try {
  const { create } = require("webgpu");
  gpu = create([]);
} catch (err) {
  console.error(`probe: cannot load Dawn (webgpu package): ${err.message}`);
  process.exit(2);
}
const adapter = await gpu.requestAdapter();
if (!adapter) {
  console.error("probe: Dawn found no WebGPU adapter");
  process.exit(1);
}
const info = adapter.info;
console.log(`probe: adapter ${info.vendor} / ${info.architecture} / ${info.description || info.device}`);
process.exit(0);
