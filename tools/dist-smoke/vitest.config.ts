// Deliberately no "source" condition: packages resolve to their built dist/, exactly as a user
// who installed them gets them.
import { packageTests } from "../config/vitest.mjs";

export default packageTests({ fromSource: false });
