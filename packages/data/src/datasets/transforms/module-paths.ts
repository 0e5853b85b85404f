import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * A built-in transform as a file URL. Running from source it is the `.ts` file beside this one
 * (loaded through tsx in the worker); from the built package it is the separate
 * `dist/datasets/transforms/<name>.js` entry, since a worker needs a module of its own, not code
 * bundled into `index.js`.
 */
function transformModule(name: string): URL {
  const candidates = [
    new URL(`./${name}.ts`, import.meta.url),
    new URL(`./datasets/transforms/${name}.js`, import.meta.url),
    new URL(`./${name}.js`, import.meta.url),
  ];
  for (const url of candidates) if (existsSync(fileURLToPath(url))) return url;
  throw new Error(
    `${name} transform not found next to ${import.meta.url} (looked for ${candidates.map((u) => u.pathname).join(", ")})`,
  );
}

/** The decode-to-RGB transform (`transforms/decode-rgb`), for `mapInWorkers({ module })`. */
export function decodeRgbModule(): URL {
  return transformModule("decode-rgb");
}

/** The decode + Idefics2 image processor transform (`transforms/idefics2-images`), for `mapInWorkers({ module })`. */
export function idefics2ImagesModule(): URL {
  return transformModule("idefics2-images");
}
