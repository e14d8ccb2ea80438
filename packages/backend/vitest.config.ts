import { defineConfig } from "vitest/config";
import { kilnGlobalSetup, kilnReporters } from "../../vitest.reporters.ts";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // test/load runs on its own afterwards (vitest.load.config.ts).
    exclude: ["test/load/**"],
    testTimeout: 60_000,
    hookTimeout: 90_000,
    // Integration suites each start an engine and daemons; two at a time fits a 2-core machine.
    maxWorkers: 2,
    globalSetup: kilnGlobalSetup,
    ...kilnReporters("backend"),
  },
});
