import { KilnError, type OrganizationSnapshot, type TaskDetail, applyTaskEvent } from "@kiln/shared";
import { afterEach, describe, expect, it } from "vitest";
import { createMockKilnClient } from "../src/mock.ts";
import type { ConnectionState, KilnClient } from "../src/types.ts";

const ORG = "default";
let client: KilnClient;

afterEach(async () => {
  await client.dispose();
});

/** Resolves with the first task snapshot that satisfies `done` (fails after `ms`). */
function waitForTask(taskId: string, done: (d: TaskDetail) => boolean, ms = 3000): Promise<TaskDetail> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`timed out waiting for task ${taskId}`));
    }, ms);
    const sub = client.subscribeTask(ORG, taskId, {
      onChange: (d) => {
        if (!done(d)) return;
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(d);
      },
      onError: (e) => {
        clearTimeout(timer);
        reject(e);
      },
    });
  });
}

async function rejection(promise: Promise<unknown>): Promise<KilnError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(KilnError);
    return error as KilnError;
  }
  throw new Error("expected a rejection");
}

const texts = (d: TaskDetail, kind: string) => d.transcript.filter((e) => e.kind === kind).map((e) => e.text ?? "");

async function readyTask(prompt = "Fix the README") {
  const repo = await client.addRepo(ORG, { remoteUrl: "https://github.com/acme/widgets.git" });
  const task = await client.createTask(ORG, { repoId: repo.repoId, prompt });
  const detail = await waitForTask(task.taskId, (d) => d.sessions[0]?.status === "ready" && d.transcript.some((e) => e.kind === "turn_end"));
  return { repo, task, detail, sessionId: detail.sessions[0]?.sessionId ?? "" };
}

describe("mock Kiln client", () => {
  it("adds repos idempotently and publishes them to org subscribers", async () => {
    client = createMockKilnClient({ stepDelayMs: 1 });
    const snapshots: OrganizationSnapshot[] = [];
    const states: ConnectionState[] = [];
    const sub = client.subscribeOrganization(ORG, { onChange: (s) => snapshots.push(s), onConnectionChange: (s) => states.push(s) });
    await new Promise((r) => setTimeout(r, 0));
    const a = await client.addRepo(ORG, { remoteUrl: "https://github.com/acme/widgets.git" });
    const b = await client.addRepo(ORG, { remoteUrl: "https://github.com/acme/widgets" });
    const local = await client.addRepo(ORG, { remoteUrl: "/srv/git/gadgets" });
    expect(b.repoId).toBe(a.repoId);
    expect(a.name).toBe("widgets");
    expect(local.name).toBe("gadgets");
    expect(states).toEqual(["connecting", "connected"]);
    expect(snapshots.at(-1)?.repos.map((r) => r.name)).toEqual(["widgets", "gadgets"]);
    expect(await client.listRepos(ORG)).toHaveLength(2);
    sub.unsubscribe();
  });

  it("rejects invalid input and unknown ids with KilnErrors", async () => {
    client = createMockKilnClient({ stepDelayMs: 1 });
    expect((await rejection(client.addRepo(ORG, { remoteUrl: "not a url" }))).code).toBe("invalid_input");
    expect((await rejection(client.createTask(ORG, { repoId: "nope", prompt: "x" }))).code).toBe("not_found");
    const repo = await client.addRepo(ORG, { remoteUrl: "/srv/git/x" });
    const empty = await rejection(client.createTask(ORG, { repoId: repo.repoId, prompt: "   " }));
    expect(empty.code).toBe("invalid_input");
    expect(empty.issues[0]?.path).toBe("prompt");
    expect((await rejection(client.getTask(ORG, "missing"))).code).toBe("not_found");
    const error = await new Promise<Error>((resolve) => client.subscribeTask(ORG, "missing", { onChange: () => undefined, onError: resolve }));
    expect(error).toBeInstanceOf(KilnError);
  });

  it("creates a task that provisions through four steps and answers the prompt", async () => {
    client = createMockKilnClient({ stepDelayMs: 2 });
    const repo = await client.addRepo(ORG, { remoteUrl: "https://github.com/acme/widgets.git" });
    const task = await client.createTask(ORG, { repoId: repo.repoId, prompt: "Explain the build" });
    expect(task.status).toBe("queued");
    expect(task.branch).toBe("kiln/explain-the-build");
    const first = await client.getTask(ORG, task.taskId);
    expect(first.steps.map((s) => [s.step, s.state])).toEqual([
      ["ensure-name", "pending"],
      ["create-sandbox", "pending"],
      ["ensure-agent", "pending"],
      ["create-session", "pending"],
    ]);

    const seen = new Set<string>();
    const replayed: { value: TaskDetail | null } = { value: null };
    const sub = client.subscribeTask(ORG, task.taskId, (d) => {
      seen.add(d.task.status);
      replayed.value = d;
    });
    const done = await waitForTask(task.taskId, (d) => d.transcript.some((e) => e.kind === "turn_end"));
    sub.unsubscribe();
    expect([...seen]).toEqual(expect.arrayContaining(["provisioning", "running", "idle"]));
    for (const step of done.steps) {
      expect(step.state).toBe("done");
      expect(step.startedAt).not.toBeNull();
      expect(step.finishedAt).toBeGreaterThanOrEqual(step.startedAt ?? Infinity);
    }
    expect(done.sandbox?.state).toBe("running");
    expect(done.sessions.map((s) => s.title)).toEqual(["Session 1"]);
    expect(texts(done, "user_message")).toEqual(["Explain the build"]);
    expect(texts(done, "agent_thought")[0]).toContain("Explain the build");
    expect(texts(done, "agent_message").join("")).toContain("You said: Explain the build");
    expect(done.task.status).toBe("idle");
    // Subscribers only ever see the latest snapshot: the last one delivered equals getTask.
    expect(await client.getTask(ORG, task.taskId)).toEqual(done);
    const org = await client.getOrganization(ORG);
    expect(org.tasks.find((t) => t.taskId === task.taskId)).toMatchObject({ status: "idle", sessionCount: 1 });
  });

  it("snapshots are reproducible by folding events with the shared reducer", async () => {
    client = createMockKilnClient({ stepDelayMs: 1 });
    const { task, detail } = await readyTask();
    // Re-applying a session event from the final snapshot is a no-op on content.
    const session = detail.sessions[0];
    if (!session) throw new Error("no session");
    const again = applyTaskEvent(detail, { seq: detail.seq + 1, type: "session", session });
    expect(again.sessions).toEqual(detail.sessions);
    expect(detail.task.taskId).toBe(task.taskId);
  });

  it("writes files, produces diffs, and rejects messages while the session is busy", async () => {
    client = createMockKilnClient({ stepDelayMs: 2 });
    const { task, sessionId } = await readyTask();
    await client.sendMessage(ORG, { taskId: task.taskId, sessionId, text: "write notes.txt hello\nwrite README.md # Widgets v2" });
    const busy = await rejection(client.sendMessage(ORG, { taskId: task.taskId, sessionId, text: "again" }));
    expect(busy.code).toBe("not_ready");
    const done = await waitForTask(task.taskId, (d) => d.transcript.filter((e) => e.kind === "turn_end").length === 2);
    expect(done.changes).toEqual([
      { path: "README.md", change: "modified", additions: 1, deletions: 1 },
      { path: "notes.txt", change: "added", additions: 1, deletions: 0 },
    ]);
    expect(await client.getDiff(ORG, task.taskId)).toEqual(done.changes);
    const diff = await client.getFileDiff(ORG, task.taskId, "notes.txt");
    expect(diff.diff).toContain("+++ b/notes.txt");
    expect(diff.diff).toContain("\n+hello\n");
    expect(await client.readFile(ORG, { taskId: task.taskId, path: "notes.txt" })).toBe("hello\n");
    expect((await client.exec(ORG, { taskId: task.taskId, command: "cat notes.txt" })).stdout).toBe("hello\n");
    expect((await rejection(client.getFileDiff(ORG, task.taskId, "nope.txt"))).code).toBe("not_found");
    const tools = done.transcript.filter((e) => e.kind === "tool_call");
    expect(tools.map((e) => e.text)).toEqual(["Write notes.txt", "Write README.md"]);
    const plans = done.transcript.filter((e) => e.kind === "plan");
    expect(plans).toHaveLength(1);
    const plan = plans[0];
    expect(plan?.data?.entries).toHaveLength(2);
    expect(texts(done, "agent_message").join("")).toContain("Wrote `notes.txt`, `README.md`.");
  });

  it("asks for permission, waits in needs_input, and resumes on answer", async () => {
    client = createMockKilnClient({ stepDelayMs: 2 });
    const { task, sessionId } = await readyTask();
    await client.sendMessage(ORG, { taskId: task.taskId, sessionId, text: "ask-permission" });
    const waiting = await waitForTask(task.taskId, (d) => d.task.status === "needs_input");
    expect(waiting.sessions[0]?.status).toBe("needs_input");
    const request = waiting.transcript.find((e) => e.kind === "permission_request");
    const permissionId = String(request?.data?.permissionId);
    expect(request?.data?.options).toHaveLength(2);
    expect((await client.getOrganization(ORG)).tasks[0]?.status).toBe("needs_input");
    const wrong = await rejection(client.answerPermission(ORG, { taskId: task.taskId, sessionId, permissionId: "nope", reply: "once" }));
    expect(wrong.code).toBe("not_found");
    await client.answerPermission(ORG, { taskId: task.taskId, sessionId, permissionId, reply: "once" });
    const done = await waitForTask(task.taskId, (d) => d.task.status === "idle");
    expect(done.transcript.find((e) => e.kind === "permission_reply")?.data).toEqual({ permissionId, reply: "once" });
    expect(texts(done, "agent_message")).toContain("Permission granted\n");
  });

  it("reports an agent failure as a session error", async () => {
    client = createMockKilnClient({ stepDelayMs: 2 });
    const { task, sessionId } = await readyTask();
    await client.sendMessage(ORG, { taskId: task.taskId, sessionId, text: "fail" });
    const failed = await waitForTask(task.taskId, (d) => d.sessions[0]?.status === "error");
    expect(failed.sessions[0]?.error).toContain("scripted failure");
    expect(texts(failed, "error")[0]).toContain("scripted failure");
    expect(failed.task).toMatchObject({ status: "error", error: expect.stringContaining("scripted failure") });
    expect((await rejection(client.sendMessage(ORG, { taskId: task.taskId, sessionId, text: "hi" }))).code).toBe("not_ready");
    await client.retryTask(ORG, task.taskId);
    const restarted = await client.getTask(ORG, task.taskId);
    expect(restarted.task.status).toBe("idle");
    expect(restarted.sessions[0]).toMatchObject({ status: "ready", error: null });
  });

  it("fails provisioning on request and resumes from the failed step on retry", async () => {
    client = createMockKilnClient({ stepDelayMs: 2 });
    const repo = await client.addRepo(ORG, { remoteUrl: "/srv/git/x" });
    expect((await rejection(client.retryTask(ORG, "missing"))).code).toBe("not_found");
    const task = await client.createTask(ORG, { repoId: repo.repoId, prompt: "fail-provision" });
    const failed = await waitForTask(task.taskId, (d) => d.task.status === "error");
    expect(failed.task.currentStep).toBe("create-sandbox");
    expect(failed.steps.map((s) => s.state)).toEqual(["done", "failed", "pending", "pending"]);
    expect(failed.steps[1]?.error).toContain("simulated");
    await client.retryTask(ORG, task.taskId);
    const ready = await waitForTask(task.taskId, (d) => d.task.status === "idle" && d.transcript.some((e) => e.kind === "turn_end"));
    expect(ready.steps.map((s) => [s.state, s.attempt])).toEqual([
      ["done", 1],
      ["done", 2],
      ["done", 1],
      ["done", 1],
    ]);
    expect((await rejection(client.retryTask(ORG, task.taskId))).code).toBe("conflict");
  });

  it("manages sessions: create, rename, stop, close", async () => {
    client = createMockKilnClient({ stepDelayMs: 2 });
    const { task, sessionId } = await readyTask();
    const second = await client.createSession(ORG, { taskId: task.taskId });
    expect(second).toMatchObject({ title: "Session 2", status: "creating" });
    await waitForTask(task.taskId, (d) => d.sessions.find((s) => s.sessionId === second.sessionId)?.status === "ready");
    await client.renameSession(ORG, { taskId: task.taskId, sessionId: second.sessionId, title: "Review" });
    await client.sendMessage(ORG, { taskId: task.taskId, sessionId: second.sessionId, text: "ask-permission" });
    await waitForTask(task.taskId, (d) => d.task.status === "needs_input");
    await client.stopSession(ORG, { taskId: task.taskId, sessionId: second.sessionId });
    const stopped = await client.getTask(ORG, task.taskId);
    expect(stopped.sessions.map((s) => [s.title, s.status])).toEqual([
      ["Session 1", "ready"],
      ["Review", "stopped"],
    ]);
    expect(stopped.task.status).toBe("idle");
    await client.closeSession(ORG, { taskId: task.taskId, sessionId });
    const closed = await client.getTask(ORG, task.taskId);
    expect(closed.sessions.map((s) => s.title)).toEqual(["Review"]);
    expect((await client.getOrganization(ORG)).tasks[0]?.sessionCount).toBe(1);
    const last = await rejection(client.closeSession(ORG, { taskId: task.taskId, sessionId: second.sessionId }));
    expect(last.code).toBe("conflict");
    expect((await rejection(client.renameSession(ORG, { taskId: task.taskId, sessionId, title: "x" }))).code).toBe("not_found");
  });

  it("archives and kills tasks, releasing their sandboxes", async () => {
    client = createMockKilnClient({ stepDelayMs: 1 });
    const { task } = await readyTask();
    await client.archiveTask(ORG, { taskId: task.taskId });
    const archived = await client.getTask(ORG, task.taskId);
    expect(archived.task.status).toBe("archived");
    expect(archived.sandbox?.state).toBe("destroyed");
    expect(archived.sessions.every((s) => s.status === "stopped")).toBe(true);
    expect((await rejection(client.archiveTask(ORG, { taskId: task.taskId }))).code).toBe("conflict");
    expect((await rejection(client.exec(ORG, { taskId: task.taskId, command: "ls" }))).code).toBe("not_ready");

    const repo = await client.addRepo(ORG, { remoteUrl: "/srv/git/y" });
    const other = await client.createTask(ORG, { repoId: repo.repoId, prompt: "Kill me", branch: "feature/kill" });
    await client.killTask(ORG, other.taskId);
    const killed = await client.getTask(ORG, other.taskId);
    expect(killed.task.status).toBe("killed");
    expect(killed.history.at(-1)?.kind).toBe("task.killed");
    // Provisioning timers stop for a killed task.
    await new Promise((r) => setTimeout(r, 30));
    expect((await client.getTask(ORG, other.taskId)).sandbox).toBeNull();
    expect((await client.listSandboxes(ORG)).map((s) => s.taskId)).toEqual([task.taskId]);
  });

  it("destroys one sandbox (kills a live task, deletes a kept one) and all of them", async () => {
    client = createMockKilnClient({ stepDelayMs: 1 });
    const { repo, task } = await readyTask();
    await client.archiveTask(ORG, { taskId: task.taskId, keepSandbox: true });
    expect((await client.getTask(ORG, task.taskId)).sandbox?.state).toBe("kept");
    const other = await client.createTask(ORG, { repoId: repo.repoId, prompt: "Live one", branch: "feature/live" });
    await waitForTask(other.taskId, (d) => d.sandbox?.state === "running");

    const keptOnly = await client.destroyAllSandboxes(ORG, { keptOnly: true });
    expect(keptOnly).toEqual({ results: [{ taskId: task.taskId, name: `task-${task.taskId}`, destroyed: true, killedTask: false }], failed: [] });
    const archived = await client.getTask(ORG, task.taskId);
    expect(archived.task.status).toBe("archived");
    expect(archived.sandbox?.state).toBe("destroyed");
    expect(await client.destroySandbox(ORG, task.taskId)).toMatchObject({ destroyed: false, killedTask: false });

    expect(await client.destroyAllSandboxes(ORG)).toEqual({
      results: [{ taskId: other.taskId, name: `task-${other.taskId}`, destroyed: true, killedTask: true }],
      failed: [],
    });
    expect((await client.getTask(ORG, other.taskId)).task.status).toBe("killed");
    expect((await rejection(client.destroySandbox(ORG, "no-such-task"))).code).toBe("not_found");
    expect((await rejection(client.destroyAllSandboxes(ORG, { keptOnly: 1 as never }))).code).toBe("invalid_input");
  });

  it("rejects a branch that another live task in the repo uses", async () => {
    client = createMockKilnClient({ stepDelayMs: 1 });
    const repo = await client.addRepo(ORG, { remoteUrl: "/srv/git/z" });
    await client.createTask(ORG, { repoId: repo.repoId, prompt: "one", branch: "feature/x" });
    expect((await rejection(client.createTask(ORG, { repoId: repo.repoId, prompt: "two", branch: "feature/x" }))).code).toBe("conflict");
    const derived = await client.createTask(ORG, { repoId: repo.repoId, prompt: "one" });
    const again = await client.createTask(ORG, { repoId: repo.repoId, prompt: "one" });
    expect([derived.branch, again.branch]).toEqual(["kiln/one", "kiln/one-2"]);
  });

  it("closes subscriptions on dispose", async () => {
    client = createMockKilnClient({ stepDelayMs: 1 });
    const states: ConnectionState[] = [];
    client.subscribeOrganization(ORG, { onChange: () => undefined, onConnectionChange: (s) => states.push(s) });
    await new Promise((r) => setTimeout(r, 0));
    await client.dispose();
    expect(states).toEqual(["connecting", "connected", "closed"]);
    expect((await rejection(client.addRepo(ORG, { remoteUrl: "/srv/x" }))).code).toBe("unavailable");
  });
});
