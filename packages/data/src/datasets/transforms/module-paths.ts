import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The decode-to-RGB transform as a file URL. Running from source it is the `.ts`
 * file beside this one (loaded through tsx in the worker); from the built package
 * it is the separate `dist/datasets/transforms/decode-rgb.js` entry, since a worker
 * needs a module of its own, not code bundled into `index.js`.
 */
export function decodeRgbModule(): URL {
  const candidates = [
    new URL("./decode-rgb.ts", import.meta.url),
    new URL("./datasets/transforms/decode-rgb.js", import.meta.url),
    new URL("./decode-rgb.js", import.meta.url),
  ];
  for (const url of candidates) if (existsSync(fileURLToPath(url))) return url;
  throw new Error(
    `decode-rgb transform not found next to ${import.meta.url} (looked for ${candidates.map((u) => u.pathname).join(", ")})`,
  );
}
