import { packageBuild } from "../../tools/config/tsup.mjs";

export default packageBuild();
