import { packageTests } from "../config/vitest.mjs";

export default packageTests();
