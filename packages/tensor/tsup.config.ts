import { packageBuild } from "../../tools/config/tsup.mjs";

export default packageBuild(["src/index.ts", "src/testing.ts"]);
