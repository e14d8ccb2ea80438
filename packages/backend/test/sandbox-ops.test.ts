// Seed-002 sandbox operations on the local provider, against the real backend process: checkpoints
// after every turn, KEEP_SANDBOX on archive, destroy one and destroy all. (The same operations on
// Daytona: test/daytona/daytona-e2e.test.ts.)
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { type KilnClient, createKilnClient } from "@kiln/client";
import { DEFAULT_ORG_ID, type RepoRecord, type TaskDetail } from "@kiln/shared";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Backend, daemonPids, makeGitRepo, startBackend, waitFor } from "./harness.ts";

const org = DEFAULT_ORG_ID;
let backend: Backend;
let client: KilnClient;
let repo: RepoRecord;

beforeAll(async () => {
  // KEEP_SANDBOX: archive keeps sandboxes unless the call says otherwise (seed: KEEP_DAYTONA_WORKSPACE).
  backend = await startBackend({ env: { KEEP_SANDBOX: "true" } });
  client = createKilnClient({ endpoint: backend.url });
  repo = await client.addRepo(org, { remoteUrl: makeGitRepo({ "README.md": "# ops\n" }) });
}, 90_000);

afterAll(async () => {
  await client?.dispose();
  await backend?.destroy();
});

async function settled(taskId: string, checkpoints = 1): Promise<TaskDetail> {
  return waitFor(`task ${taskId} with ${checkpoints} checkpoint(s)`, async () => {
    const d = await client.getTask(org, taskId);
    if (d.task.status === "error") throw new Error(`task failed: ${d.task.error}`);
    const written = d.history.filter((h) => h.kind === "sandbox.checkpoint").length;
    return d.task.status === "idle" && written >= checkpoints ? d : null;
  }, 45_000);
}

const worktree = (taskId: string) => path.join(backend.dataDir, "sandboxes", `task-${taskId}`, "repo");

describe("sandbox operations on the local provider", () => {
  test("a checkpoint per settled turn in .kiln/checkpoints, logged, never a change", async () => {
    const record = await client.createTask(org, { repoId: repo.repoId, prompt: "checkpoint me" });
    await settled(record.taskId);
    const file = path.join(worktree(record.taskId), ".kiln/checkpoints/1.json");
    expect(JSON.parse(readFileSync(file, "utf8"))).toMatchObject({ turn: 1, sessionId: "session-1", outcome: "ready", changedFiles: [] });

    await client.sendMessage(org, { taskId: record.taskId, sessionId: "session-1", text: "write a.txt one" });
    await settled(record.taskId, 2);
    // A second session's turns continue the same numbering.
    await client.createSession(org, { taskId: record.taskId });
    await client.sendMessage(org, { taskId: record.taskId, sessionId: "session-2", text: "fail" });
    const after = await waitFor("checkpoint 3", async () => {
      const d = await client.getTask(org, record.taskId);
      return d.history.filter((h) => h.kind === "sandbox.checkpoint").length >= 3 ? d : null;
    });
    const third = JSON.parse(await client.readFile(org, { taskId: record.taskId, path: ".kiln/checkpoints/3.json" })) as Record<string, unknown>;
    expect(third).toMatchObject({ turn: 3, sessionId: "session-2", outcome: "error", changedFiles: [{ path: "a.txt", change: "untracked" }] });
    expect(String(third.error)).toContain("scripted failure requested");
    const second = JSON.parse(await client.readFile(org, { taskId: record.taskId, path: ".kiln/checkpoints/2.json" })) as Record<string, unknown>;
    expect(second).toMatchObject({ turn: 2, sessionId: "session-1", changedFiles: [{ path: "a.txt" }] });
    expect(after.changes.map((c) => c.path)).toEqual(["a.txt"]);
    const log = await client.readFile(org, { taskId: record.taskId, path: ".kiln/generation.log" });
    expect(log.match(/checkpoint \d+:/g)).toEqual(["checkpoint 1:", "checkpoint 2:", "checkpoint 3:"]);
  });

  test("KEEP_SANDBOX keeps the sandbox on archive; destroySandbox then deletes it and the task stays archived", async () => {
    const record = await client.createTask(org, { repoId: repo.repoId, prompt: "keep me" });
    await settled(record.taskId);
    const daemons = daemonPids(backend.dataDir).length;
    await client.archiveTask(org, { taskId: record.taskId }); // no flag: KEEP_SANDBOX decides
    const archived = await client.getTask(org, record.taskId);
    expect(archived.task.status).toBe("archived");
    expect(archived.sandbox?.state).toBe("kept");
    expect(existsSync(path.join(worktree(record.taskId), ".git"))).toBe(true);
    expect(daemonPids(backend.dataDir).length).toBe(daemons - 1); // local keep = stopped: no daemon
    expect(await client.readFile(org, { taskId: record.taskId, path: ".kiln/checkpoints/1.json" })).toContain('"turn": 1');
    expect((await client.listSandboxes(org)).find((s) => s.taskId === record.taskId)?.state).toBe("kept");
    await waitFor("summary shows the kept sandbox", async () =>
      (await client.listTasks(org)).find((t) => t.taskId === record.taskId && t.sandboxState === "kept"),
    );

    const result = await client.destroySandbox(org, record.taskId);
    expect(result).toEqual({ taskId: record.taskId, name: `task-${record.taskId}`, destroyed: true, killedTask: false });
    const after = await client.getTask(org, record.taskId);
    expect(after.task.status).toBe("archived");
    expect(after.sandbox?.state).toBe("destroyed");
    expect(existsSync(worktree(record.taskId))).toBe(false);
    expect(await client.destroySandbox(org, record.taskId)).toMatchObject({ destroyed: false, killedTask: false });
  });

  test("destroySandbox on a live task ends it; destroyAllSandboxes honours keptOnly", async () => {
    const live = await client.createTask(org, { repoId: repo.repoId, prompt: "destroy me" });
    await settled(live.taskId);
    expect(await client.destroySandbox(org, live.taskId)).toMatchObject({ destroyed: true, killedTask: true });
    const killed = await client.getTask(org, live.taskId);
    expect(killed.task.status).toBe("killed");
    expect(killed.sandbox?.state).toBe("destroyed");
    expect(existsSync(worktree(live.taskId))).toBe(false);

    const kept = await client.createTask(org, { repoId: repo.repoId, prompt: "kept one" });
    const running = await client.createTask(org, { repoId: repo.repoId, prompt: "running one" });
    await settled(kept.taskId);
    await settled(running.taskId);
    await client.archiveTask(org, { taskId: kept.taskId, keepSandbox: true });

    const keptOnly = await client.destroyAllSandboxes(org, { keptOnly: true });
    expect(keptOnly.failed).toEqual([]);
    expect(keptOnly.results).toEqual([{ taskId: kept.taskId, name: `task-${kept.taskId}`, destroyed: true, killedTask: false }]);
    expect((await client.getTask(org, running.taskId)).task.status).toBe("idle");

    const all = await client.destroyAllSandboxes(org);
    expect(all.failed).toEqual([]);
    // The first test's task is still live: it goes too.
    expect(all.results.map((r) => r.taskId)).toContain(running.taskId);
    expect(all.results.every((r) => r.destroyed && r.killedTask)).toBe(true);
    expect(await client.listSandboxes(org)).toEqual([]);
    expect(daemonPids(backend.dataDir)).toEqual([]);
  });
});
