// Every package reports to the console, and also to JSON when `npm test` collects a summary.
import path from "node:path";

export function kilnReporters(pkg: string) {
  const dir = process.env.KILN_VITEST_REPORT_DIR;
  if (!dir) return { reporters: ["default"] };
  return { reporters: ["default", "json"], outputFile: { json: path.join(dir, `${pkg}.json`) } };
}
