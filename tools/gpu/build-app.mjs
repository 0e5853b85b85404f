// Bundles the GPU-machine entry points into .gpu-carry/app/*.mjs with esbuild, so they run there
// with no node_modules: workspace packages from source (the "source" export condition), `.wgsl`
// as text (the same rule as tsup and tools/wgsl/register.mjs), tfjs inlined, and `webgpu` left
// external (the run command links it into the repo's node_modules from the carried runtime.deb).
//
//   node tools/gpu/build-app.mjs          (run by make-bundle.sh; ~5 s)
import { mkdirSync, realpathSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
// esbuild is tsup's dependency (pnpm does not hoist it): resolve it from tsup's real folder.
const tsup = realpathSync(join(root, "node_modules/tsup/package.json"));
const esbuild = createRequire(tsup)("esbuild");

const outdir = join(root, ".gpu-carry/app");
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

/** sharp (native libvips) is imported by @webvlm/data's decoders; the benches feed raw RGB and never call it. */
const stubSharp = {
  name: "stub-sharp",
  setup(build) {
    build.onResolve({ filter: /^sharp$/ }, () => ({ path: "sharp", namespace: "stub" }));
    build.onLoad({ filter: /.*/, namespace: "stub" }, () => ({
      contents:
        "export default function sharp() { throw new Error('sharp is not carried to the GPU machine: benches must pass raw RGB images'); }",
      loader: "js",
    }));
  },
};

const entries = ["adapter", "bench-tensor", "bench-idefics2"];
const result = await esbuild.build({
  entryPoints: Object.fromEntries(entries.map((e) => [e, join(root, `tools/gpu/${e}.ts`)])),
  outdir,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["webgpu"],
  conditions: ["source"],
  // tools/gpu has no node_modules: tfjs and the workspace links resolve from the packages that declare them.
  nodePaths: ["packages/tensor/node_modules", "packages/idefics2/node_modules"].map((p) => join(root, p)),
  loader: { ".wgsl": "text" },
  plugins: [stubSharp],
  // Bundled CommonJS (tfjs, jinja) may call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  // packages say "sideEffects": false, yet tensor/src/ops.ts and views.ts are imported bare to install
  // Tensor methods: keep every module esbuild reaches rather than trust the flag.
  ignoreAnnotations: true,
  logLevel: "warning",
  metafile: true,
});
for (const out of Object.keys(result.metafile.outputs)) {
  console.log(`${out}: ${(statSync(join(root, out)).size / 2 ** 20).toFixed(2)} MiB`);
}
console.log(`bundled ${entries.length} entries into ${dirname(join(outdir, "x"))}`);
