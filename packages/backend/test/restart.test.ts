// Durability: the transcript survives a restart, and a backend killed with SIGKILL in the middle of
// create-sandbox finishes every task after restart — with exactly one sandbox each and no client retry.
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { type KilnClient, createKilnClient } from "@kiln/client";
import { DEFAULT_ORG_ID, type TaskDetail } from "@kiln/shared";
import { afterEach, expect, test } from "vitest";
import { type Backend, daemonPids, makeGitRepo, startBackend, waitFor } from "./harness.ts";

const org = DEFAULT_ORG_ID;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function track(backend: Backend, client: KilnClient) {
  cleanups.push(async () => {
    await client.dispose();
    await backend.destroy();
  });
}

const replyOf = (d: TaskDetail) =>
  d.transcript
    .filter((e) => e.kind === "agent_message")
    .map((e) => e.text)
    .join("");

test("the transcript survives a backend restart, and the session continues", async () => {
  let backend = await startBackend();
  let client = createKilnClient({ endpoint: backend.url });
  const { dataDir, enginePort } = backend;
  const repo = await client.addRepo(org, { remoteUrl: makeGitRepo() });
  const task = await client.createTask(org, { repoId: repo.repoId, prompt: "remember this sentence" });
  await waitFor("idle", async () => (await client.getTask(org, task.taskId)).task.status === "idle", 45_000, 250);
  const before = await client.getTask(org, task.taskId);
  expect(replyOf(before)).toContain("remember this sentence");

  await client.dispose();
  await backend.stop();
  backend = await startBackend({ dataDir, enginePort });
  client = createKilnClient({ endpoint: backend.url });
  track(backend, client);

  const after = await client.getTask(org, task.taskId);
  expect(after.transcript).toEqual(before.transcript);
  expect(after.task.status).toBe("idle");

  await client.sendMessage(org, { taskId: task.taskId, sessionId: "session-1", text: "after the restart" });
  const continued = await waitFor(
    "reply after restart",
    async () => {
      const d = await client.getTask(org, task.taskId);
      return d.task.status === "idle" && replyOf(d).includes("after the restart") ? d : null;
    },
    45_000,
    250,
  );
  expect(continued.transcript.length).toBeGreaterThan(before.transcript.length);
}, 150_000);

test("kill -9 during create-sandbox, then restart: every task completes with exactly one sandbox", async () => {
  // The test-only delay holds create-sandbox open long enough to crash inside it.
  const env = { KILN_TEST_CREATE_SANDBOX_DELAY_MS: "4000" };
  let backend = await startBackend({ env });
  let client = createKilnClient({ endpoint: backend.url });
  const { dataDir, enginePort } = backend;
  const repo = await client.addRepo(org, { remoteUrl: makeGitRepo() });
  const tasks = await Promise.all(
    [1, 2, 3].map((n) => client.createTask(org, { repoId: repo.repoId, prompt: `crash test ${n}` })),
  );
  await waitFor(
    "all tasks inside create-sandbox",
    async () => {
      const summaries = await client.listTasks(org);
      return tasks.every((t) => summaries.find((s) => s.taskId === t.taskId)?.currentStep === "create-sandbox");
    },
    30_000,
    50,
  );
  await client.dispose();
  await backend.crash();

  // Restart; from here on the client only reads the organization's projection: nothing pokes the tasks.
  backend = await startBackend({ dataDir, enginePort, env });
  client = createKilnClient({ endpoint: backend.url });
  track(backend, client);
  await waitFor(
    "all tasks idle after restart",
    async () => {
      const summaries = await client.listTasks(org);
      return tasks.every((t) => summaries.find((s) => s.taskId === t.taskId)?.status === "idle");
    },
    120_000,
    500,
  );

  // Exactly one sandbox per task: one directory, one worktree, one daemon.
  const sandboxes = readdirSync(path.join(dataDir, "sandboxes")).sort();
  expect(sandboxes).toEqual(tasks.map((t) => `task-${t.taskId}`).sort());
  const [cache] = readdirSync(path.join(dataDir, "repos"));
  const worktrees = execFileSync("git", ["worktree", "list", "--porcelain"], { cwd: path.join(dataDir, "repos", cache!) })
    .toString()
    .split("\n")
    .filter((l) => l.startsWith("worktree ") && l.includes(`${path.sep}sandboxes${path.sep}`));
  expect(worktrees).toHaveLength(tasks.length);
  expect(daemonPids(dataDir)).toHaveLength(tasks.length);

  for (const t of tasks) {
    const detail = await client.getTask(org, t.taskId);
    expect(detail.steps.every((s) => s.state === "done")).toBe(true);
    // The interrupted step ran again after the restart; the ones before it did not.
    expect(detail.steps.find((s) => s.step === "create-sandbox")?.attempt).toBe(2);
    expect(detail.steps.find((s) => s.step === "ensure-name")?.attempt).toBe(1);
    expect(replyOf(detail)).toContain(t.prompt);
  }
}, 240_000);
