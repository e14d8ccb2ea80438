// The client as an outside program uses it: against a real backend process, register a local repo,
// create 20 tasks at once, watch every task's four steps finish in order through subscribeTask, and read
// the scripted agent's reply.
import { DEFAULT_ORG_ID, PROVISION_STEPS } from "@kiln/shared";
import { afterAll, beforeAll, expect, test } from "vitest";
import { type Backend, makeGitRepo, startBackend } from "../../backend/test/harness.ts";
import { type KilnClient, createKilnClient } from "../src/index.ts";
import { follow } from "./follow.ts";

const org = DEFAULT_ORG_ID;
let backend: Backend;
let client: KilnClient;

beforeAll(async () => {
  backend = await startBackend();
  client = createKilnClient({ endpoint: backend.url });
}, 90_000);

afterAll(async () => {
  await client?.dispose();
  await backend?.destroy();
});

test("20 tasks: each one's four steps finish in order and the agent answers", async () => {
  const repo = await client.addRepo(org, { remoteUrl: makeGitRepo() });
  const tasks = await Promise.all(
    Array.from({ length: 20 }, (_, i) => client.createTask(org, { repoId: repo.repoId, prompt: `parallel task number ${i}` })),
  );
  const results = await Promise.all(tasks.map((t) => follow(client, t.taskId, 150_000)));
  for (const { detail, transitions } of results) {
    // Running and done of each step, strictly in workflow order (a gap could skip "running", never reorder).
    const done = transitions.filter((m) => m.endsWith(":done")).map((m) => m.split(":")[0]);
    expect(done).toEqual([...PROVISION_STEPS]);
    for (const step of PROVISION_STEPS) {
      const running = transitions.indexOf(`${step}:running`);
      if (running !== -1) expect(running).toBeLessThan(transitions.indexOf(`${step}:done`));
    }
    expect(detail.steps.every((s) => s.finishedAt !== null && s.startedAt !== null)).toBe(true);
  }
  const branches = new Set(results.map((r) => r.detail.task.branch));
  expect(branches.size).toBe(20); // unique per repo
  for (const t of tasks) await client.archiveTask(org, { taskId: t.taskId });
}, 240_000);
