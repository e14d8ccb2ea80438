import { defineConfig } from "vitest/config";
import { kilnReporters } from "../../vitest.reporters.ts";

export default defineConfig({
  test: { include: ["test/**/*.test.ts"], ...kilnReporters("client") },
});
