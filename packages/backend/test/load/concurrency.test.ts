// Kiln issue 9: the organization under 50-way createTask concurrency, the summary projection
// (sidebar) following every task state change, and reads that race a task actor's sleep. Real backend,
// engine, daemon and scripted agent through @kiln/client; no mocks.
import { type KilnClient, createKilnClient } from "@kiln/client";
import { DEFAULT_ORG_ID, KilnError, type RepoRecord, type TaskRecord } from "@kiln/shared";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Backend, makeGitRepo, startBackend, waitFor } from "../harness.ts";

const org = DEFAULT_ORG_ID;
let backend: Backend;
let client: KilnClient;
let repo: RepoRecord;

beforeAll(async () => {
  // Task actors sleep after 1 s idle (the smallest allowed): reads below race that boundary.
  backend = await startBackend({ env: { KILN_TASK_SLEEP_MS: "1000" } });
  client = createKilnClient({ endpoint: backend.url });
  repo = await client.addRepo(org, { remoteUrl: makeGitRepo() });
}, 90_000);

afterAll(async () => {
  await client?.dispose();
  await backend?.destroy();
});

/** Settle all calls; return the created records and the errors (as `code: message`). */
async function createMany(inputs: Array<{ prompt: string; branch?: string }>) {
  const settled = await Promise.allSettled(inputs.map((i) => client.createTask(org, { repoId: repo.repoId, ...i })));
  const records: TaskRecord[] = [];
  const errors: string[] = [];
  for (const s of settled) {
    if (s.status === "fulfilled") records.push(s.value);
    else errors.push(s.reason instanceof KilnError ? `${s.reason.code}: ${s.reason.message}` : String(s.reason));
  }
  return { records, errors };
}

/** Every task id reaches idle in the organization's summaries (the sidebar). */
async function allIdle(ids: string[], timeoutMs: number) {
  const wanted = new Set(ids);
  await waitFor(
    `${ids.length} tasks idle`,
    async () => {
      const tasks = (await client.listTasks(org)).filter((t) => wanted.has(t.taskId));
      const bad = tasks.filter((t) => t.status === "error");
      if (bad.length) throw new Error(`tasks failed: ${bad.map((t) => t.error).join("; ")}`);
      if (tasks.length === ids.length && tasks.every((t) => t.status === "idle")) return true;
      // Shown if the wait times out: where the stragglers are (slow is not stuck).
      const counts = new Map<string, number>();
      for (const t of tasks) counts.set(`${t.status}/${t.currentStep ?? "-"}`, (counts.get(`${t.status}/${t.currentStep ?? "-"}`) ?? 0) + 1);
      throw new Error(`not yet: ${[...counts].map(([k, n]) => `${n} ${k}`).join(", ")}; ${ids.length - tasks.length} without a summary`);
    },
    timeoutMs,
    1000,
  );
}

describe("createTask under 50-way concurrency", () => {
  test("identical prompts: every call creates a task with its own branch, and all reach idle", async () => {
    const prompt = "Same prompt for everyone";
    const { records, errors } = await createMany(Array.from({ length: 50 }, () => ({ prompt })));
    expect(errors).toEqual([]);
    expect(records).toHaveLength(50);
    const branches = records.map((r) => r.branch);
    expect(new Set(branches).size).toBe(50);
    // Next free suffix: the base name and -2 … -50, none skipped.
    const base = "kiln/same-prompt-for-everyone";
    expect(new Set(branches)).toEqual(new Set([base, ...Array.from({ length: 49 }, (_, i) => `${base}-${i + 2}`)]));
    await allIdle(records.map((r) => r.taskId), 300_000);
  }, 420_000);

  test("distinct prompts: all created with distinct branches; a taken requested branch is a typed conflict", async () => {
    const inputs: Array<{ prompt: string; branch?: string }> = Array.from({ length: 50 }, (_, i) => ({ prompt: `Distinct job ${i}` }));
    // Two callers ask for the same explicit branch in the same burst: exactly one wins.
    inputs.push({ prompt: "explicit one", branch: "feature/contested" }, { prompt: "explicit two", branch: "feature/contested" });
    const { records, errors } = await createMany(inputs);
    expect(records).toHaveLength(51);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^conflict: branch feature\/contested is already used/);
    // Unique per repo across both bursts (the index holds every task of this repo).
    const all = (await client.listTasks(org)).filter((t) => t.repoId === repo.repoId);
    expect(new Set(all.map((t) => t.branch)).size).toBe(all.length);
    await allIdle(records.map((r) => r.taskId), 300_000);
  }, 420_000);
});

describe("one projection path for summaries", () => {
  test("a permission request shows as needs_input in the organization's summary within seconds", async () => {
    const record = await client.createTask(org, { repoId: repo.repoId, prompt: "Please do it\nask-permission" });
    // The task view sees needs_input first; from then on the sidebar must follow promptly.
    await waitFor("task view needs_input", async () => (await client.getTask(org, record.taskId)).task.status === "needs_input", 60_000, 100);
    await waitFor(
      "summary needs_input",
      async () => (await client.getOrganization(org)).tasks.find((t) => t.taskId === record.taskId)?.status === "needs_input",
      5_000,
      100,
    );
  }, 90_000);
});

describe("reads racing a task actor's sleep", () => {
  test("getTask on an existing task never answers not_found, across many sleep boundaries", async () => {
    const record = await client.createTask(org, { repoId: repo.repoId, prompt: "sleepy task" });
    await allIdle([record.taskId], 60_000);
    const failures: string[] = [];
    // Reads spaced around the 1 s sleep timeout: some land as the actor stops, some after it slept.
    const deadline = Date.now() + 40_000;
    for (let i = 0; Date.now() < deadline; i++) {
      try {
        const detail = await client.getTask(org, record.taskId);
        if (detail.task.taskId !== record.taskId) failures.push(`read ${i}: wrong task`);
      } catch (error) {
        failures.push(`read ${i}: ${error instanceof KilnError ? error.code : ""} ${String(error)}`);
      }
      await new Promise((r) => setTimeout(r, 900 + (i % 7) * 50));
    }
    expect(failures).toEqual([]);
  }, 90_000);

  test("subscribing to an unknown task fails with a typed not_found delivered to the subscriber", async () => {
    const error = await new Promise<Error>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no error delivered within 30 s")), 30_000);
      const sub = client.subscribeTask(org, "no-such-task", {
        onChange: () => reject(new Error("an unknown task produced a value")),
        onError: (e) => {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve(e);
        },
      });
    });
    expect(error).toBeInstanceOf(KilnError);
    expect((error as KilnError).code).toBe("not_found");
  }, 45_000);
});
