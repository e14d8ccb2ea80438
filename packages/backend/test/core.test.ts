// Core flow against the real backend process: embedded engine, local worktree provider, real
// sandbox-agent daemon, scripted agent, temp git repos. No mocks.
import { existsSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type KilnClient, createKilnClient } from "@kiln/client";
import {
  DEFAULT_ORG_ID,
  KilnError,
  PROVISION_STEPS,
  type RepoRecord,
  type TaskDetail,
  type TranscriptEvent,
} from "@kiln/shared";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Backend, daemonPids, makeGitRepo, startBackend, tempDir, waitFor } from "./harness.ts";

const org = DEFAULT_ORG_ID;
let backend: Backend;
let client: KilnClient;
let repo: RepoRecord;
const failMarker = path.join(tempDir("marker"), "fail-create-sandbox");

beforeAll(async () => {
  backend = await startBackend({ env: { KILN_TEST_FAIL_CREATE_SANDBOX_MARKER: failMarker } });
  client = createKilnClient({ endpoint: backend.url });
  repo = await client.addRepo(org, { remoteUrl: makeGitRepo({ "README.md": "# fixture\n", "app.txt": "one\n" }) });
}, 90_000);

afterAll(async () => {
  await client?.dispose();
  await backend?.destroy();
});

const agentText = (detail: TaskDetail, sessionId = "session-1") =>
  detail.transcript
    .filter((e) => e.sessionId === sessionId && e.kind === "agent_message")
    .map((e) => e.text ?? "")
    .join("");

/** Subscribe and collect every value; resolves when `done(value)` holds. */
function watchTask(taskId: string, done: (d: TaskDetail) => boolean, timeoutMs = 45_000) {
  const seen: TaskDetail[] = [];
  let resolve!: (d: TaskDetail) => void;
  let reject!: (e: Error) => void;
  const finished = new Promise<TaskDetail>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const timer = setTimeout(() => reject(new Error(`task ${taskId} did not finish; last: ${JSON.stringify(seen.at(-1)?.task)}`)), timeoutMs);
  const sub = client.subscribeTask(org, taskId, {
    onChange: (d) => {
      seen.push(d);
      if (done(d)) {
        clearTimeout(timer);
        resolve(d);
      }
    },
    onError: (e) => reject(e),
  });
  return { seen, finished: finished.finally(() => sub.unsubscribe()) };
}

const isSettled = (d: TaskDetail) => d.task.status === "idle" && d.transcript.some((e) => e.kind === "turn_end");

describe("task lifecycle", () => {
  test("createTask returns at once; the four steps finish in order and the agent answers", async () => {
    const prompt = "Please summarise the repository layout";
    const record = await client.createTask(org, { repoId: repo.repoId, prompt });
    // initialize only wrote bootstrap rows: nothing of the workflow has run yet. The organization
    // reserved the branch as it indexed the task.
    expect(record.status).toBe("queued");
    expect(record.branch).toBe("kiln/please-summarise-the-repository-layout");
    expect(record.currentStep).toBeNull();

    const { seen, finished } = watchTask(record.taskId, isSettled);
    const detail = await finished;

    // Every step done, with timings, strictly in workflow order.
    expect(detail.steps.map((s) => s.step)).toEqual([...PROVISION_STEPS]);
    for (const step of detail.steps) {
      expect(step.state).toBe("done");
      expect(step.startedAt).not.toBeNull();
      expect(step.finishedAt!).toBeGreaterThanOrEqual(step.startedAt!);
    }
    for (let i = 1; i < detail.steps.length; i++) {
      expect(detail.steps[i]!.startedAt!).toBeGreaterThanOrEqual(detail.steps[i - 1]!.finishedAt!);
    }
    // Realtime, not just the end state: every step the subscription saw start live was seen running
    // before done. A step may already be done in the first snapshot (ensure-name takes a few ms and
    // can finish before the subscription opens), but never jump from pending to done in the stream.
    const runningSeen = new Set(seen.flatMap((d) => d.steps.filter((s) => s.state === "running").map((s) => s.step)));
    const doneAtSubscribe = new Set(seen[0]!.steps.filter((s) => s.state === "done").map((s) => s.step));
    for (const step of PROVISION_STEPS) expect(runningSeen.has(step) || doneAtSubscribe.has(step), step).toBe(true);
    expect(runningSeen.size).toBeGreaterThan(0); // the stream carried live transitions, not only end states

    expect(detail.task.branch).toBe(record.branch);
    expect(detail.task.title).toBe(prompt);
    expect(agentText(detail)).toContain(prompt);
    expect(detail.transcript.find((e) => e.kind === "user_message")?.text).toBe(prompt);
    expect(detail.sandbox?.state).toBe("running");
    expect(detail.history.map((h) => h.kind)).toEqual(
      expect.arrayContaining(["task.created", ...PROVISION_STEPS.map((s) => `step.${s}.done`)]),
    );

    // The organization's projection follows.
    await waitFor("summary idle", async () =>
      (await client.listTasks(org)).find((t) => t.taskId === record.taskId && t.status === "idle"),
    );
  });

  test("the agent writes a file: changed files and diff; a permission request is answered", async () => {
    const record = await client.createTask(org, { repoId: repo.repoId, prompt: "start", branch: "feature/notes" });
    expect(record.branch).toBe("feature/notes");
    await watchTask(record.taskId, isSettled).finished;

    await client.sendMessage(org, { taskId: record.taskId, sessionId: "session-1", text: "write notes.txt hello" });
    const afterWrite = await watchTask(record.taskId, (d) => d.changes.some((c) => c.path === "notes.txt") && d.task.status === "idle").finished;
    expect(afterWrite.changes).toEqual([{ path: "notes.txt", change: "untracked", additions: 1, deletions: 0 }]);
    const diff = await client.getFileDiff(org, record.taskId, "notes.txt");
    expect(diff.diff).toContain("+hello");
    expect(await client.readFile(org, { taskId: record.taskId, path: "notes.txt" })).toBe("hello\n");

    await client.sendMessage(org, { taskId: record.taskId, sessionId: "session-1", text: "ask-permission" });
    const asking = await watchTask(record.taskId, (d) => d.task.status === "needs_input").finished;
    const request = asking.transcript.findLast((e: TranscriptEvent) => e.kind === "permission_request");
    const permissionId = String(request?.data?.permissionId);
    expect(permissionId).toBeTruthy();
    await client.answerPermission(org, { taskId: record.taskId, sessionId: "session-1", permissionId, reply: "once" });
    const answered = await watchTask(record.taskId, (d) => d.task.status === "idle" && agentText(d).includes("Permission granted")).finished;
    expect(answered.transcript.some((e) => e.kind === "permission_reply" && e.data?.reply === "once")).toBe(true);

    // Answering twice is a clear error, not a hang.
    await expect(
      client.answerPermission(org, { taskId: record.taskId, sessionId: "session-1", permissionId, reply: "once" }),
    ).rejects.toMatchObject({ code: "not_found" });
  });

  test("an agent error shows on the session and the task; the next message recovers", async () => {
    const record = await client.createTask(org, { repoId: repo.repoId, prompt: "fail" });
    const failed = await watchTask(record.taskId, (d) => d.task.status === "error").finished;
    expect(failed.task.error).toContain("scripted failure requested");
    expect(failed.sessions[0]?.status).toBe("error");
    expect(failed.transcript.some((e) => e.kind === "error")).toBe(true);

    await client.sendMessage(org, { taskId: record.taskId, sessionId: "session-1", text: "try again" });
    const recovered = await watchTask(record.taskId, (d) => d.task.status === "idle" && agentText(d).includes("try again")).finished;
    expect(recovered.task.error).toBeNull();
  });

  test("a failed step shows its error and retry resumes from that step", async () => {
    writeFileSync(failMarker, "fail");
    const record = await client.createTask(org, { repoId: repo.repoId, prompt: "retry me" });
    const failed = await watchTask(record.taskId, (d) => d.task.status === "error").finished;
    const step = failed.steps.find((s) => s.step === "create-sandbox");
    expect(step?.state).toBe("failed");
    expect(step?.error).toContain("injected create-sandbox failure");
    expect(failed.task.currentStep).toBe("create-sandbox");
    expect(failed.steps.find((s) => s.step === "ensure-name")?.state).toBe("done");
    expect(failed.history.some((h) => h.kind === "step.create-sandbox.failed")).toBe(true);

    rmSync(failMarker);
    await client.retryTask(org, record.taskId);
    const done = await watchTask(record.taskId, isSettled).finished;
    expect(done.steps.every((s) => s.state === "done")).toBe(true);
    expect(done.steps.find((s) => s.step === "create-sandbox")?.attempt).toBe(2);
    expect(done.steps.find((s) => s.step === "ensure-name")?.attempt).toBe(1); // not re-run
    expect(agentText(done)).toContain("retry me");

    await expect(client.retryTask(org, record.taskId)).rejects.toMatchObject({ code: "conflict" });
  });

  test("sessions: open a second one, talk to it, stop it", async () => {
    const record = await client.createTask(org, { repoId: repo.repoId, prompt: "first session" });
    await watchTask(record.taskId, isSettled).finished;
    const second = await client.createSession(org, { taskId: record.taskId, title: "Review" });
    expect(second).toMatchObject({ sessionId: "session-2", title: "Review", status: "ready" });
    await client.sendMessage(org, { taskId: record.taskId, sessionId: "session-2", text: "second hello" });
    const detail = await watchTask(record.taskId, (d) => agentText(d, "session-2").includes("second hello") && d.task.status === "idle").finished;
    expect(agentText(detail, "session-1")).not.toContain("second hello");

    await client.stopSession(org, { taskId: record.taskId, sessionId: "session-2" });
    await expect(
      client.sendMessage(org, { taskId: record.taskId, sessionId: "session-2", text: "more" }),
    ).rejects.toMatchObject({ code: "not_ready" });
  });

  test("archive releases the sandbox: no daemon, no worktree", async () => {
    const record = await client.createTask(org, { repoId: repo.repoId, prompt: "to archive" });
    const detail = await watchTask(record.taskId, isSettled).finished;
    const sandboxDir = path.join(backend.dataDir, "sandboxes", `task-${record.taskId}`);
    expect(existsSync(path.join(sandboxDir, "repo", ".git"))).toBe(true);
    const daemonsBefore = daemonPids(backend.dataDir).length;
    expect(daemonsBefore).toBeGreaterThan(0);

    await client.archiveTask(org, { taskId: record.taskId });
    const archived = await client.getTask(org, record.taskId);
    expect(archived.task.status).toBe("archived");
    expect(archived.sandbox?.state).toBe("destroyed");
    expect(existsSync(sandboxDir)).toBe(false);
    expect(daemonPids(backend.dataDir).length).toBe(daemonsBefore - 1);
    expect(detail.sandbox?.workdir).toBeTruthy();
    await expect(
      client.sendMessage(org, { taskId: record.taskId, sessionId: "session-1", text: "hi" }),
    ).rejects.toMatchObject({ code: "conflict" });
  });
});

describe("bad input gets a clear, typed error and changes nothing", () => {
  const expectError = async (work: Promise<unknown>, code: string, message?: RegExp) => {
    const error = await work.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KilnError);
    expect((error as KilnError).code).toBe(code);
    if (message) expect((error as KilnError).message).toMatch(message);
    return error as KilnError;
  };

  test("organization inputs", async () => {
    const before = await client.getOrganization(org);
    const invalidUrl = await expectError(client.addRepo(org, { remoteUrl: "not a url" }), "invalid_input", /remoteUrl/);
    expect(invalidUrl.issues[0]?.path).toBe("remoteUrl");
    await expectError(client.addRepo(org, { remoteUrl: "/definitely/not/a/repo" }), "invalid_input", /cannot reach/);
    const empty = await expectError(client.createTask(org, { repoId: repo.repoId, prompt: "   " }), "invalid_input");
    expect(empty.issues.map((i) => i.path)).toContain("prompt");
    await expectError(client.createTask(org, { repoId: "no-such-repo", prompt: "x" }), "not_found");
    await expectError(client.createTask(org, { repoId: repo.repoId, prompt: "x", branch: "bad..branch" }), "invalid_input");
    await expectError(
      client.createTask(org, { repoId: repo.repoId, prompt: "x", agent: "gpt-9" as never }),
      "invalid_input",
      /agent/,
    );
    await expectError(client.createTask(org, { repoId: repo.repoId, prompt: "dup", branch: "feature/notes" }), "conflict");
    const after = await client.getOrganization(org);
    expect(after.tasks.length).toBe(before.tasks.length);
    expect(after.repos.length).toBe(before.repos.length);
  });

  test("task inputs", async () => {
    await expectError(client.getTask(org, "00000000-0000-0000-0000-000000000000"), "not_found");
    const task = (await client.listTasks(org)).find((t) => t.status === "idle");
    await expectError(
      client.sendMessage(org, { taskId: task!.taskId, sessionId: "session-1", text: "" }),
      "invalid_input",
    );
    await expectError(
      client.sendMessage(org, { taskId: task!.taskId, sessionId: "session-99", text: "hi" }),
      "not_found",
    );
    await expectError(client.readFile(org, { taskId: task!.taskId, path: "../../etc/passwd" }), "invalid_input");
  });
});
