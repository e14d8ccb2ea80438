// Every package reports to the console, and also to JSON when `npm test` collects a summary.
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Run-scoped temp dir for the test harness, removed after the run (vitest.global-setup.ts). */
export const kilnGlobalSetup = [fileURLToPath(new URL("./vitest.global-setup.ts", import.meta.url))];

export function kilnReporters(pkg: string) {
  const dir = process.env.KILN_VITEST_REPORT_DIR;
  if (!dir) return { reporters: ["default"] };
  return { reporters: ["default", "json"], outputFile: { json: path.join(dir, `${pkg}.json`) } };
}
