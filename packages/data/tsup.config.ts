import { packageBuild } from "../../tools/config/tsup.mjs";

// Worker transforms are entries of their own: a worker thread loads them by path.
export default packageBuild({
  index: "src/index.ts",
  "datasets/transforms/decode-rgb": "src/datasets/transforms/decode-rgb.ts",
  "datasets/transforms/idefics2-images": "src/datasets/transforms/idefics2-images.ts",
});
