// `node --import tsx --import ./tools/wgsl/register.mjs script.ts`: lets benches and scripts
// run from source, importing `.wgsl` files as text exactly as the build and the tests do.
import { register } from "node:module";

register(
  `data:text/javascript,${encodeURIComponent(`
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
export async function load(url, context, next) {
  if (url.split("?")[0].endsWith(".wgsl")) {
    const text = readFileSync(fileURLToPath(url.split("?")[0]), "utf8");
    return { format: "module", source: "export default " + JSON.stringify(text) + ";", shortCircuit: true };
  }
  return next(url, context);
}`)}`,
  import.meta.url,
);
