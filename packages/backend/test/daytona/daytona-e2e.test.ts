// Daytona end to end: the REAL backend process (harness) configured with DAYTONA_* env against the
// loopback fake Daytona (toolbox commands really run; preview links reach the real sandbox-agent
// daemon; the snapshot's `mock` launcher is Kiln's scripted agent), driven only through @kiln/client
// and HTTP. Covers provisioning, seed-002 sandbox operations and checkpoints, the hybrid create path
// through GitHub Actions and `POST /v1/webhooks/actions`, keep-after-archive, the orphan reaper, and
// destroy one / destroy all.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Daytona } from "@daytonaio/sdk";
import { type KilnClient, createKilnClient } from "@kiln/client";
import { DEFAULT_ORG_ID, PROVISION_STEPS, type RepoRecord, type TaskDetail } from "@kiln/shared";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { signActionsCallback } from "../../src/integrations/github-actions/callbacks.ts";
import { isNotFound } from "../../src/providers/daytona/errors.ts";
import { type Backend, freePort, makeGitRepo, startBackend, waitFor } from "../harness.ts";
import { FakeDaytona } from "./fake-daytona.ts";
import { SANDBOX_AGENT_BIN, workflowGetOrCreate } from "./helpers.ts";

const org = DEFAULT_ORG_ID;
const API_KEY = "e2e-daytona-key";
const SNAPSHOT = "kiln-sandbox:e2e";
const SECRET = "whsec-e2e-0123456789";
const GH_TOKEN = "gh-e2e-token";
const AUTO_STOP_MINUTES = 45;

let fake: FakeDaytona;
let gh: FakeGitHub;
let sdk: Daytona;
let backend: Backend;
let client: KilnClient;
let repo: RepoRecord;
let webhookUrl: string;

interface FakeGitHub {
  url: string;
  dispatches: Array<Record<string, string>>;
  /** What Kiln's webhook route answered to each workflow callback. */
  callbackReplies: Array<{ status: number; body: Record<string, unknown> }>;
  settled(): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * GitHub's workflow_dispatch, "running" daytona/github-actions/create-sandbox.yml: get-or-create the
 * sandbox by name through the Daytona SDK (as the CLI would), then POST the signed callback to the
 * callback_url input — the running backend's own route.
 */
async function startFakeGitHub(): Promise<FakeGitHub> {
  const dispatches: FakeGitHub["dispatches"] = [];
  const callbackReplies: FakeGitHub["callbackReplies"] = [];
  const runs: Promise<void>[] = [];
  const runWorkflow = async (inputs: Record<string, string>) => {
    const { sandboxId, status, error } = await workflowGetOrCreate(sdk, inputs);
    const raw = JSON.stringify({ requestId: inputs.request_id, sandboxId, status, ...(error ? { error } : {}) });
    const response = await fetch(inputs.callback_url ?? "", {
      method: "POST",
      headers: { "content-type": "application/json", "x-kiln-signature": signActionsCallback(raw, SECRET) },
      body: raw,
      signal: AbortSignal.timeout(10_000),
    });
    callbackReplies.push({ status: response.status, body: (await response.json()) as Record<string, unknown> });
  };
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const m = /^\/repos\/acme\/infra\/actions\/workflows\/create-sandbox\.yml\/dispatches$/.exec(req.url ?? "");
    if (req.headers.authorization !== `Bearer ${GH_TOKEN}`) {
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ message: "Bad credentials" }));
      return;
    }
    if (req.method !== "POST" || !m) {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ message: "Not Found" }));
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { ref: string; inputs: Record<string, string> };
    dispatches.push(body.inputs);
    res.writeHead(204).end();
    // The run starts after the dispatch returns, like on GitHub.
    runs.push(new Promise((r) => setTimeout(r, 20)).then(() => runWorkflow(body.inputs)));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    dispatches,
    callbackReplies,
    settled: () => Promise.all(runs),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

beforeAll(async () => {
  fake = await FakeDaytona.start({ apiKey: API_KEY, snapshots: [SNAPSHOT], sandboxAgentBin: SANDBOX_AGENT_BIN });
  sdk = new Daytona({ apiKey: API_KEY, apiUrl: fake.apiUrl, target: "us", useDeprecatedPolling: true });
  gh = await startFakeGitHub();
  const port = await freePort();
  webhookUrl = `http://127.0.0.1:${port}/v1/webhooks/actions`;
  backend = await startBackend({
    port,
    env: {
      DAYTONA_API_KEY: API_KEY,
      DAYTONA_API_URL: fake.apiUrl,
      DAYTONA_TARGET: "us",
      DAYTONA_SNAPSHOT_NAME: SNAPSHOT,
      // The SDK's own switch: the fake has no socket.io, so state changes are polled.
      DAYTONA_USE_DEPRECATED_POLLING: "true",
      DAYTONA_AUTO_STOP_MINUTES: String(AUTO_STOP_MINUTES),
      // Hybrid: direct API first, GitHub Actions (the fake above) when it fails.
      DAYTONA_CREATE_MODE: "hybrid",
      KILN_ACTIONS_CALLBACK_SECRET: SECRET,
      KILN_ACTIONS_CALLBACK_URL: webhookUrl,
      KILN_ACTIONS_REPO: "acme/infra",
      KILN_ACTIONS_GITHUB_TOKEN: GH_TOKEN,
      KILN_ACTIONS_TIMEOUT_MS: "60000",
      GITHUB_API_URL: gh.url,
      KILN_REAPER_INTERVAL_MS: "5000",
    },
  });
  client = createKilnClient({ endpoint: backend.url });
  repo = await client.addRepo(org, { remoteUrl: makeGitRepo({ "README.md": "# daytona fixture\n", "app.txt": "one\n" }) });
}, 120_000);

afterAll(async () => {
  await client?.dispose();
  await backend?.destroy();
  await sdk?.[Symbol.asyncDispose]();
  await gh?.close();
  await fake?.close();
}, 60_000);

const agentText = (detail: TaskDetail, sessionId = "session-1") =>
  detail.transcript
    .filter((e) => e.sessionId === sessionId && e.kind === "agent_message")
    .map((e) => e.text ?? "")
    .join("");

/** Provisioned, first turn over and its checkpoint written. */
async function settled(taskId: string, checkpoints = 1, timeoutMs = 90_000): Promise<TaskDetail> {
  return waitFor(
    `task ${taskId} to settle with ${checkpoints} checkpoint(s)`,
    async () => {
      const d = await client.getTask(org, taskId);
      if (d.task.status === "error") throw new Error(`task failed: ${d.task.error}\n${backend.log().slice(-3000)}`);
      const written = d.history.filter((h) => h.kind === "sandbox.checkpoint").length;
      return d.task.status === "idle" && written >= checkpoints ? d : null;
    },
    timeoutMs,
    250,
  );
}

/**
 * A sandbox labelled as this org's but for no live task. The SDK's create waits for it to start; a
 * reaper pass may delete it during that wait, which is the outcome under test, not a failure.
 */
async function makeOrphan(name: string): Promise<void> {
  try {
    await sdk.create({ name, snapshot: SNAPSHOT, labels: { app: "kiln", org, task: `gone-${name}` } }, { timeout: 30 });
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

const gone = (name: string) => {
  const s = fake.byName(name);
  return !s || s.state === "destroying" || s.state === "destroyed";
};

describe("Daytona provider, end to end through the real backend", { timeout: 150_000 }, () => {
  let first: TaskDetail;

  test("config advertises daytona; a daytona task runs all four steps and the scripted agent answers", async () => {
    const config = (await (await fetch(`${backend.url}/v1/config`)).json()) as { providers: string[] };
    expect(config.providers).toEqual(expect.arrayContaining(["local", "daytona"]));

    const prompt = "Summarise the daytona fixture please";
    const record = await client.createTask(org, { repoId: repo.repoId, prompt, provider: "daytona" });
    expect(record.provider).toBe("daytona");
    first = await settled(record.taskId);

    expect(first.steps.map((s) => [s.step, s.state])).toEqual(PROVISION_STEPS.map((s) => [s, "done"]));
    expect(agentText(first)).toContain(prompt);
    const name = `task-${record.taskId}`;
    expect(first.sandbox).toMatchObject({ provider: "daytona", name, state: "running" });
    const sandbox = fake.byName(name);
    expect(sandbox?.id).toBe(first.sandbox?.sandboxId);
    expect(sandbox?.labels).toMatchObject({ app: "kiln", org, task: record.taskId });
    expect(sandbox?.autoStopInterval).toBe(0); // live: never auto-stopped (see 0006-daytona-lifecycle)
    expect(sandbox?.snapshot).toBe(SNAPSHOT);
    expect(gh.dispatches).toHaveLength(0); // hybrid used the direct API

    // Checkpoint after the first turn, in the sandbox work dir.
    const checkpoint = JSON.parse(await client.readFile(org, { taskId: record.taskId, path: ".kiln/checkpoints/1.json" })) as Record<
      string,
      unknown
    >;
    expect(checkpoint).toMatchObject({ turn: 1, taskId: record.taskId, sessionId: "session-1", outcome: "ready", changedFiles: [] });
    expect(Date.parse(String(checkpoint.at))).toBeGreaterThan(first.task.createdAt - 1000);
  });

  test("seed-002 operations on the daytona sandbox: exec, files, run code, log, checkpoints, list", async () => {
    const taskId = first.task.taskId;
    const head = await client.exec(org, { taskId, command: "git rev-parse --abbrev-ref HEAD && cat app.txt" });
    expect(head).toMatchObject({ exitCode: 0, stdout: `${first.task.branch}\none\n` });
    const failing = await client.exec(org, { taskId, command: "echo oops >&2; exit 3" });
    expect(failing).toMatchObject({ exitCode: 3, stderr: "oops\n" });

    await client.writeFile(org, { taskId, path: "notes/plan.md", content: "# plan\n" });
    expect(await client.readFile(org, { taskId, path: "notes/plan.md" })).toBe("# plan\n");
    const code = await client.runCode(org, { taskId, language: "bash", code: "echo $((6 * 7))" });
    expect(code).toMatchObject({ exitCode: 0, stdout: "42\n" });

    await client.sendMessage(org, { taskId, sessionId: "session-1", text: "write notes.txt hello" });
    const after = await settled(taskId, 2);
    expect(after.changes.map((c) => c.path).sort()).toEqual(["notes.txt", "notes/plan.md"]);
    const second = JSON.parse(await client.readFile(org, { taskId, path: ".kiln/checkpoints/2.json" })) as {
      turn: number;
      changedFiles: Array<{ path: string }>;
    };
    expect(second.turn).toBe(2);
    expect(second.changedFiles.map((c) => c.path).sort()).toEqual(["notes.txt", "notes/plan.md"]);

    const log = await client.readFile(org, { taskId, path: ".kiln/generation.log" });
    for (const line of ["exec: git rev-parse", "exit 3", "write notes/plan.md", "run bash (exit 0)", "checkpoint 1:", "checkpoint 2:"]) {
      expect(log).toContain(line);
    }
    // .kiln/ (log, checkpoints, run-code scratch) never shows as the task's changes.
    expect(after.changes.some((c) => c.path.startsWith(".kiln"))).toBe(false);

    const sandboxes = await client.listSandboxes(org);
    expect(sandboxes).toEqual([expect.objectContaining({ taskId, provider: "daytona", state: "running" })]);
  });

  test("POST /v1/webhooks/actions over HTTP: 401 on missing/bad signatures, 200 when signed, 400 when malformed", async () => {
    const post = async (body: string, signature?: string) => {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (signature !== undefined) headers["x-kiln-signature"] = signature;
      const response = await fetch(webhookUrl, { method: "POST", headers, body, signal: AbortSignal.timeout(10_000) });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const raw = JSON.stringify({ requestId: "e2e-unknown", sandboxId: "sb-1", status: "created" });
    expect(await post(raw)).toMatchObject({ status: 401, body: { code: "unauthorized" } });
    expect(await post(raw, `sha256=${"0".repeat(64)}`)).toMatchObject({ status: 401, body: { code: "unauthorized" } });
    expect(await post(raw, signActionsCallback(raw, "another-secret"))).toMatchObject({ status: 401 });
    // Signed over other bytes (re-serialised JSON) is not the same body.
    expect(await post(JSON.stringify(JSON.parse(raw), null, 2), signActionsCallback(raw, SECRET))).toMatchObject({ status: 401 });
    expect(await post(raw, signActionsCallback(raw, SECRET))).toEqual({
      status: 200,
      body: { ok: true, requestId: "e2e-unknown", matched: false },
    });
    const malformed = JSON.stringify({ requestId: "x", status: "maybe" });
    expect(await post(malformed, signActionsCallback(malformed, SECRET))).toMatchObject({ status: 400, body: { code: "invalid_input" } });
    const huge = "x".repeat(70_000);
    expect((await post(huge, signActionsCallback(huge, SECRET))).status).toBe(413);
  });

  test("hybrid: a failed direct create falls back to GitHub Actions, whose callback reaches the backend's route; archive deletes the sandbox", async () => {
    fake.failCreates = { remaining: 1, status: 503, message: "no capacity in region" };
    try {
      const record = await client.createTask(org, { repoId: repo.repoId, prompt: "via actions", provider: "daytona" });
      const detail = await settled(record.taskId);
      await gh.settled();
      const name = `task-${record.taskId}`;
      expect(gh.dispatches).toHaveLength(1);
      expect(gh.dispatches[0]).toMatchObject({ sandbox_name: name, snapshot: SNAPSHOT, callback_url: webhookUrl });
      expect(gh.callbackReplies).toEqual([{ status: 200, body: expect.objectContaining({ ok: true, matched: true }) }]);
      expect(detail.steps.find((s) => s.step === "create-sandbox")?.state).toBe("done");
      expect(agentText(detail)).toContain("via actions");
      const sandboxId = fake.byName(name)?.id;
      expect(detail.sandbox?.sandboxId).toBe(sandboxId);

      const deletesBefore = fake.count("DELETE /api/sandbox/{id}");
      await client.archiveTask(org, { taskId: record.taskId, keepSandbox: false });
      const archived = await client.getTask(org, record.taskId);
      expect(archived.task.status).toBe("archived");
      expect(archived.sandbox?.state).toBe("destroyed");
      expect(fake.count("DELETE /api/sandbox/{id}")).toBe(deletesBefore + 1);
      await waitFor("sandbox deleted in Daytona", () => gone(name), 10_000);
    } finally {
      fake.failCreates = null;
    }
  });

  test("the maintenance actor reaps orphaned sandboxes of this org only, never live ones", async () => {
    const make = (name: string, labels: Record<string, string>) => sdk.create({ name, snapshot: SNAPSHOT, labels }, { timeout: 30 });
    await makeOrphan("stray-orphan");
    await make("stray-other-org", { app: "kiln", org: "someone-else", task: "no-such-task" });
    await make("not-kiln", { app: "other", org, task: "no-such-task" });
    // Armed by the organization on addRepo; interval 5 s in this test.
    await waitFor("the orphan to be reaped", () => gone("stray-orphan"), 30_000, 250);
    expect(gone(`task-${first.task.taskId}`)).toBe(false); // live task
    expect(gone("stray-other-org")).toBe(false); // another organization's
    expect(gone("not-kiln")).toBe(false); // not Kiln's
  });

  test("archive with keepSandbox keeps (and releases) the sandbox; the reaper spares it; destroySandbox deletes it", async () => {
    const taskId = first.task.taskId;
    const name = `task-${taskId}`;
    await client.archiveTask(org, { taskId, keepSandbox: true });
    const archived = await client.getTask(org, taskId);
    expect(archived.task.status).toBe("archived");
    expect(archived.sandbox?.state).toBe("kept");
    expect(archived.history.map((h) => h.kind)).toContain("task.archived");
    // Released: Daytona may stop it once idle; until then it stays up for debugging.
    expect(fake.byName(name)).toMatchObject({ state: "started", autoStopInterval: AUTO_STOP_MINUTES });
    expect(await client.listSandboxes(org)).toEqual([expect.objectContaining({ taskId, state: "kept" })]);
    // Debugging a kept sandbox: the operations still work.
    expect(await client.readFile(org, { taskId, path: "notes.txt" })).toBe("hello\n");

    // A full reaper pass after the archive (proved by a fresh orphan going away) leaves it alone.
    await makeOrphan("stray-orphan-2");
    await waitFor("the second orphan to be reaped", () => gone("stray-orphan-2"), 30_000, 250);
    expect(gone(name)).toBe(false);

    const result = await client.destroySandbox(org, taskId);
    expect(result).toEqual({ taskId, name, destroyed: true, killedTask: false });
    const after = await client.getTask(org, taskId);
    expect(after.task.status).toBe("archived");
    expect(after.sandbox?.state).toBe("destroyed");
    expect(after.history.some((h) => h.kind === "sandbox.destroyed")).toBe(true);
    await waitFor("kept sandbox deleted in Daytona", () => gone(name), 10_000);
    // Idempotent.
    expect(await client.destroySandbox(org, taskId)).toEqual({ taskId, name, destroyed: false, killedTask: false });
  });

  test("destroyAllSandboxes: keptOnly spares live tasks; without it every live task ends with its sandbox", async () => {
    const record = await client.createTask(org, { repoId: repo.repoId, prompt: "last one", provider: "daytona" });
    await settled(record.taskId);
    const name = `task-${record.taskId}`;
    expect(await client.destroyAllSandboxes(org, { keptOnly: true })).toEqual({ results: [], failed: [] });
    expect(gone(name)).toBe(false);

    const all = await client.destroyAllSandboxes(org);
    expect(all).toEqual({ results: [{ taskId: record.taskId, name, destroyed: true, killedTask: true }], failed: [] });
    const killed = await client.getTask(org, record.taskId);
    expect(killed.task.status).toBe("killed");
    expect(killed.sandbox?.state).toBe("destroyed");
    await waitFor("sandbox deleted in Daytona", () => gone(name), 10_000);
    expect(await client.listSandboxes(org)).toEqual([]);
    await expect(client.destroyAllSandboxes(org, { keptOnly: "yes" as never })).rejects.toMatchObject({ code: "invalid_input" });
  });
});
