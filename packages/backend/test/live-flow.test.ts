// The live test script (scripts/live-test-flow.ts) against a real backend: it must pass and report
// its timings as one JSON line, as CI and operators read it.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";
import { type Backend, startBackend } from "./harness.ts";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const BUN = process.env.KILN_BUN ?? "bun";
let backend: Backend;

beforeAll(async () => {
  backend = await startBackend();
}, 90_000);

afterAll(async () => {
  await backend?.destroy();
});

function runScript(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(BUN, ["scripts/live-test-flow.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

test("live-test-flow --json passes and reports every step's timing", async () => {
  const { code, stdout, stderr } = await runScript(["--endpoint", backend.url, "--json", "--timeout-ms", "90000"]);
  const lines = stdout.trim().split("\n");
  const result = JSON.parse(lines.at(-1) ?? "") as Record<string, unknown>;
  expect(result, `stderr:\n${stderr}`).toMatchObject({ ok: true });
  expect(code).toBe(0);
  const steps = result.steps as Record<string, unknown>;
  for (const step of ["ensure-name", "create-sandbox", "ensure-agent", "create-session"]) {
    expect(typeof steps[step], step).toBe("number");
    expect(steps[step] as number).toBeGreaterThanOrEqual(0);
  }
  for (const key of ["createTaskMs", "firstAgentEventMs", "totalMs"]) expect(typeof result[key], key).toBe("number");
  expect(result.totalMs as number).toBeGreaterThanOrEqual(result.firstAgentEventMs as number);
  // The task it ran is archived and its sandbox gone: nothing is left running.
  expect(stderr).toMatch(/archived; sandbox task-\S+ destroyed/);
}, 120_000);

test("bad flags exit 2 with a clear message and a JSON error line", async () => {
  const { code, stdout, stderr } = await runScript(["--agent", "gpt-9", "--json"]);
  expect(code).toBe(2);
  expect(stderr).toContain("--agent must be one of mock, claude, codex, opencode, amp");
  expect(JSON.parse(stdout.trim().split("\n").at(-1) ?? "")).toMatchObject({ ok: false, error: expect.stringContaining("--agent") });
});

test("an unreachable backend fails fast with ok:false", async () => {
  const { code, stdout } = await runScript(["--endpoint", "http://127.0.0.1:1", "--json", "--timeout-ms", "20000"]);
  expect(code).toBe(1);
  expect(JSON.parse(stdout.trim().split("\n").at(-1) ?? "")).toMatchObject({ ok: false, error: expect.stringContaining("unreachable") });
});
