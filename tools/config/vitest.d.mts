import type { UserConfig } from "vitest/config";
export declare function packageTests(options?: { fromSource?: boolean }): UserConfig;
