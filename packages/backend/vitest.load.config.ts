import { defineConfig } from "vitest/config";
import { kilnGlobalSetup, kilnReporters } from "../../vitest.reporters.ts";

// Load tests (50-way bursts and the like) run after the other suites, one file at a time and with
// nothing else beside them: sharing 2 cores with another engine suite turns their bursts into timeouts.
export default defineConfig({
  test: {
    include: ["test/load/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 90_000,
    maxWorkers: 1,
    globalSetup: kilnGlobalSetup,
    ...kilnReporters("backend-load"),
  },
});
