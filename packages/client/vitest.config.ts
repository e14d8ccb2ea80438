import { defineConfig } from "vitest/config";
import { kilnGlobalSetup, kilnReporters } from "../../vitest.reporters.ts";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 90_000,
    globalSetup: kilnGlobalSetup,
    ...kilnReporters("client"),
  },
});
