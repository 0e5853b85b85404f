import { packageTests } from "../../tools/config/vitest.mjs";

export default packageTests();
