// One temp dir per test run: the backend test harness makes its fixture repos, markers and data dirs
// inside it (KILN_TEST_TMPDIR, inherited by the test workers), and it is removed when the run ends.
// Workers are stopped without a process "exit" event, so the harness cannot clean up after itself.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export default function setup(): () => void {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kiln-test-run-"));
  process.env.KILN_TEST_TMPDIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
