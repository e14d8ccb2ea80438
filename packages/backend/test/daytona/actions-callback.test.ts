// The GitHub Actions create path: HMAC-signed callbacks, the waiter, the REST dispatch, and the
// provider's hybrid fallback — with a loopback "GitHub" that runs the workflow: it creates the
// sandbox through the real SDK (as the CLI would) and calls back with the workflow's own bash
// callback block (real jq + openssl + curl), extracted verbatim from create-sandbox.yml.
import { execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { Daytona } from "@daytonaio/sdk";
import { KilnError } from "@kiln/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ActionsCallbackWaiter,
  handleActionsCallback,
  signActionsCallback,
  verifyActionsCallback,
} from "../../src/integrations/github-actions/callbacks.ts";
import { GitHubWorkflowDispatcher } from "../../src/integrations/github-actions/dispatch.ts";
import { DaytonaProvider, type DaytonaProviderOptions } from "../../src/providers/daytona/provider.ts";
import type { SandboxSpec, StepContext } from "../../src/providers/types.ts";
import { FakeDaytona } from "./fake-daytona.ts";
import { REPO_ROOT, SANDBOX_AGENT_BIN, makeRemoteRepo, workflowGetOrCreate } from "./helpers.ts";

const execFileP = promisify(execFile);
const SECRET = "whsec-test-0123456789";
const API_KEY = "actions-test-key";
const SNAPSHOT = "kiln-sandbox:actions";

function body(payload: Record<string, unknown>): string {
  return JSON.stringify(payload);
}

describe("verifyActionsCallback", () => {
  const raw = body({ requestId: "r1", sandboxId: "sb-1", status: "created" });

  it("accepts a good signature and returns the payload", () => {
    expect(verifyActionsCallback(raw, signActionsCallback(raw, SECRET), SECRET)).toEqual({
      requestId: "r1",
      sandboxId: "sb-1",
      status: "created",
    });
    // Signature computed independently (not by the code under test), uppercase hex accepted.
    const hex = createHmac("sha256", SECRET).update(raw).digest("hex").toUpperCase();
    expect(verifyActionsCallback(raw, `sha256=${hex}`, SECRET).requestId).toBe("r1");
  });

  it.each([
    ["missing header", undefined],
    ["empty header", ""],
    ["not sha256=", "sha1=abcdef"],
    ["short hex", "sha256=abcd"],
    ["wrong secret", signActionsCallback(raw, "other-secret")],
    ["other body", signActionsCallback(body({ requestId: "r2", sandboxId: "", status: "failed" }), SECRET)],
    ["re-serialised body", signActionsCallback(JSON.stringify(JSON.parse(raw), null, 1), SECRET)],
  ])("rejects %s as unauthorized", (_, header) => {
    const error = (() => {
      try {
        verifyActionsCallback(raw, header, SECRET);
        return null;
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(KilnError);
    expect((error as KilnError).code).toBe("unauthorized");
  });

  it("rejects everything when no secret is configured", () => {
    expect(() => verifyActionsCallback(raw, signActionsCallback(raw, ""), "")).toThrow(/no callback secret/);
  });

  it("rejects a well-signed but invalid payload as invalid_input", () => {
    const bad = body({ requestId: "r1", status: "maybe" });
    expect(() => verifyActionsCallback(bad, signActionsCallback(bad, SECRET), SECRET)).toThrow(
      expect.objectContaining({ code: "invalid_input" }),
    );
    expect(() => verifyActionsCallback("not json", signActionsCallback("not json", SECRET), SECRET)).toThrow(
      expect.objectContaining({ code: "invalid_input" }),
    );
  });
});

describe("handleActionsCallback + ActionsCallbackWaiter", () => {
  it("delivers a verified callback to the waiter; rejects bad ones with 401", async () => {
    const waiter = new ActionsCallbackWaiter();
    const waiting = waiter.wait("req-1", 5000);
    const raw = body({ requestId: "req-1", sandboxId: "sb-9", status: "created" });
    const bad = handleActionsCallback(raw, { "x-kiln-signature": "sha256=" + "0".repeat(64) }, SECRET, waiter);
    expect(bad.status).toBe(401);
    expect(bad.body).toMatchObject({ code: "unauthorized" });
    const missing = handleActionsCallback(raw, new Headers(), SECRET, waiter);
    expect(missing.status).toBe(401);
    const ok = handleActionsCallback(raw, { "X-Kiln-Signature": signActionsCallback(raw, SECRET) }, SECRET, waiter);
    expect(ok).toEqual({ status: 200, body: { ok: true, requestId: "req-1", matched: true } });
    await expect(waiting).resolves.toMatchObject({ sandboxId: "sb-9" });
    expect(waiter.waiting).toBe(0);
  });

  it("keeps an early callback for a waiter that registers just after", async () => {
    const waiter = new ActionsCallbackWaiter();
    expect(waiter.resolve({ requestId: "early", sandboxId: "sb-1", status: "created" })).toBe(false);
    await expect(waiter.wait("early", 1000)).resolves.toMatchObject({ sandboxId: "sb-1" });
  });

  it("times out with a timeout KilnError, and honours an abort signal", async () => {
    const waiter = new ActionsCallbackWaiter();
    await expect(waiter.wait("never", 50)).rejects.toMatchObject({ code: "timeout" });
    const controller = new AbortController();
    const p = waiter.wait("aborted", 5000, controller.signal);
    controller.abort(new KilnError("timeout", "step cancelled"));
    await expect(p).rejects.toThrow("step cancelled");
    expect(waiter.waiting).toBe(0);
  });
});

// ------------------------------------------------------------------ loopback infrastructure

/** Kiln's route, as the lead will wire it: raw body → handleActionsCallback. */
async function startCallbackRoute(waiter: ActionsCallbackWaiter) {
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const result = handleActionsCallback(Buffer.concat(chunks).toString("utf8"), req.headers, SECRET, waiter);
    res.writeHead(result.status, { "content-type": "application/json" }).end(JSON.stringify(result.body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/webhooks/actions`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The workflow's callback block, verbatim from the YAML. */
function callbackScript(): string {
  const yml = readFileSync(path.join(REPO_ROOT, "daytona/github-actions/create-sandbox.yml"), "utf8");
  const lines = yml.split("\n");
  const start = lines.findIndex((l) => l.includes("# --- kiln-callback begin ---"));
  const end = lines.findIndex((l) => l.includes("# --- kiln-callback end ---"));
  if (start < 0 || end < start) throw new Error("kiln-callback markers not found in create-sandbox.yml");
  const block = lines.slice(start, end + 1);
  const indent = Math.min(...block.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
  return ["set -euo pipefail", ...block.map((l) => l.slice(indent))].join("\n");
}

async function runCallbackScript(env: Record<string, string>): Promise<void> {
  await execFileP("bash", ["-c", callbackScript()], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", KILN_CALLBACK_SECRET: SECRET, ...env },
    timeout: 30_000,
  });
}

interface DispatchSeen {
  path: string;
  auth: string | undefined;
  apiVersion: string | undefined;
  body: { ref: string; inputs: Record<string, string> };
}

/** Fake GitHub REST: accepts workflow dispatches and "runs" the workflow. */
async function startFakeGitHub(run: (inputs: Record<string, string>) => Promise<void>) {
  const seen: DispatchSeen[] = [];
  const runs: Promise<void>[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? "/", "http://x");
    const m = /^\/repos\/([^/]+)\/([^/]+)\/actions\/workflows\/([^/]+)\/dispatches$/.exec(url.pathname);
    if (req.headers.authorization !== "Bearer gh-token") {
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ message: "Bad credentials" }));
      return;
    }
    if (req.method !== "POST" || !m || m[1] !== "acme" || m[2] !== "infra" || m[3] !== "create-sandbox.yml") {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ message: "Not Found" }));
      return;
    }
    const parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as DispatchSeen["body"];
    seen.push({ path: url.pathname, auth: req.headers.authorization, apiVersion: req.headers["x-github-api-version"] as string, body: parsed });
    res.writeHead(204).end();
    // The run happens after the dispatch returns, like on GitHub.
    runs.push(new Promise((r) => setTimeout(r, 20)).then(() => run(parsed.inputs)));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    settled: () => Promise.all(runs),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("GitHubWorkflowDispatcher", () => {
  it("POSTs a workflow_dispatch with string inputs, bearer token and API version", async () => {
    const gh = await startFakeGitHub(async () => undefined);
    try {
      const d = new GitHubWorkflowDispatcher({ token: "gh-token", owner: "acme", repo: "infra", workflow: "create-sandbox.yml", ref: "main", apiUrl: gh.url });
      await d.dispatch({
        requestId: "req-7",
        sandboxName: "task-7",
        snapshot: "kiln-sandbox:0.1.0",
        callbackUrl: "https://kiln.example/v1/webhooks/actions",
        labels: { app: "kiln", task: "7" },
        autoStopMinutes: 0,
      });
      expect(gh.seen).toEqual([
        {
          path: "/repos/acme/infra/actions/workflows/create-sandbox.yml/dispatches",
          auth: "Bearer gh-token",
          apiVersion: "2022-11-28",
          body: {
            ref: "main",
            inputs: {
              request_id: "req-7",
              sandbox_name: "task-7",
              snapshot: "kiln-sandbox:0.1.0",
              callback_url: "https://kiln.example/v1/webhooks/actions",
              labels: '{"app":"kiln","task":"7"}',
              auto_stop_minutes: "0",
            },
          },
        },
      ]);
      // Every input the dispatcher sends is declared by the workflow (GitHub rejects unknown ones).
      const yml = readFileSync(path.join(REPO_ROOT, "daytona/github-actions/create-sandbox.yml"), "utf8");
      for (const key of [...Object.keys(gh.seen[0]?.body.inputs ?? {}), "target"]) expect(yml).toContain(`      ${key}:\n`);
      const bad = new GitHubWorkflowDispatcher({ token: "nope", owner: "acme", repo: "infra", workflow: "create-sandbox.yml", ref: "main", apiUrl: gh.url });
      await expect(bad.dispatch({ requestId: "r", sandboxName: "s", snapshot: "x", callbackUrl: "u", labels: {}, autoStopMinutes: 0 })).rejects.toMatchObject({
        code: "unauthorized",
      });
      const missing = new GitHubWorkflowDispatcher({ token: "gh-token", owner: "acme", repo: "other", workflow: "create-sandbox.yml", ref: "main", apiUrl: gh.url });
      await expect(missing.dispatch({ requestId: "r", sandboxName: "s", snapshot: "x", callbackUrl: "u", labels: {}, autoStopMinutes: 0 })).rejects.toMatchObject({
        code: "not_found",
      });
    } finally {
      await gh.close();
    }
  });
});

describe("the workflow's callback block", () => {
  it("produces a signature Kiln accepts (real jq/openssl/curl)", async () => {
    const waiter = new ActionsCallbackWaiter();
    const route = await startCallbackRoute(waiter);
    try {
      const waiting = waiter.wait("req-bash", 10_000);
      await runCallbackScript({ REQUEST_ID: "req-bash", SANDBOX_ID: "sb-bash", STATUS: "created", ERROR_TEXT: "", CALLBACK_URL: route.url });
      await expect(waiting).resolves.toEqual({ requestId: "req-bash", sandboxId: "sb-bash", status: "created" });
      const failed = waiter.wait("req-fail", 10_000);
      await runCallbackScript({ REQUEST_ID: "req-fail", SANDBOX_ID: "", STATUS: "failed", ERROR_TEXT: 'quota "exceeded"', CALLBACK_URL: route.url });
      await expect(failed).resolves.toEqual({ requestId: "req-fail", sandboxId: "", status: "failed", error: 'quota "exceeded"' });
    } finally {
      await route.close();
    }
  });
});

describe("provider create modes via GitHub Actions", () => {
  let fake: FakeDaytona;
  let repo: Awaited<ReturnType<typeof makeRemoteRepo>>;
  let waiter: ActionsCallbackWaiter;
  let route: Awaited<ReturnType<typeof startCallbackRoute>>;
  let workflowDaytona: Daytona;
  const providers: DaytonaProvider[] = [];
  const failNextRun = { value: "" };

  beforeAll(async () => {
    fake = await FakeDaytona.start({ apiKey: API_KEY, snapshots: [SNAPSHOT], sandboxAgentBin: SANDBOX_AGENT_BIN });
    repo = await makeRemoteRepo();
    waiter = new ActionsCallbackWaiter();
    route = await startCallbackRoute(waiter);
    // The workflow's own Daytona credentials (the DAYTONA_API_KEY repository secret).
    workflowDaytona = new Daytona({ apiKey: API_KEY, apiUrl: fake.apiUrl, useDeprecatedPolling: true });
  });

  afterAll(async () => {
    for (const p of providers) await p.close();
    await workflowDaytona?.[Symbol.asyncDispose]();
    await route?.close();
    await fake?.close();
    await repo?.cleanup();
  });

  /** What create-sandbox.yml does: get-or-create by name with the CLI, then the callback block. */
  async function runWorkflow(inputs: Record<string, string>): Promise<void> {
    const result = failNextRun.value
      ? { sandboxId: "", status: "failed" as const, error: failNextRun.value }
      : await workflowGetOrCreate(workflowDaytona, inputs);
    const { sandboxId, status } = result;
    const errorText = result.error ?? "";
    await runCallbackScript({
      REQUEST_ID: inputs.request_id ?? "",
      SANDBOX_ID: sandboxId,
      STATUS: status,
      ERROR_TEXT: errorText,
      CALLBACK_URL: inputs.callback_url ?? "",
    });
  }

  function provider(gitHubUrl: string, overrides: Partial<DaytonaProviderOptions>): DaytonaProvider {
    const p = new DaytonaProvider({
      apiKey: API_KEY,
      apiUrl: fake.apiUrl,
      snapshotName: SNAPSHOT,
      autoStopMinutes: 30,
      createMode: "hybrid",
      useDeprecatedPolling: true,
      createTimeoutSec: 30,
      actionsDispatcher: new GitHubWorkflowDispatcher({
        token: "gh-token",
        owner: "acme",
        repo: "infra",
        workflow: "create-sandbox.yml",
        ref: "main",
        apiUrl: gitHubUrl,
      }),
      actionsWaiter: waiter,
      actionsCallbackUrl: route.url,
      actionsTimeoutMs: 30_000,
      log: () => undefined,
      ...overrides,
    });
    providers.push(p);
    return p;
  }

  function spec(taskId: string): SandboxSpec {
    return {
      name: `task-${taskId}`,
      repo: { remoteUrl: `file://${repo.bare}`, baseBranch: "main", branch: `kiln/${taskId}` },
      labels: { org: "default", task: taskId },
      env: {},
    };
  }

  function ctx(lines: string[]): StepContext {
    return { signal: AbortSignal.timeout(60_000), progress: (l) => lines.push(l) };
  }

  it("hybrid: falls back to the Actions path when the direct create fails", async () => {
    const gh = await startFakeGitHub(runWorkflow);
    try {
      fake.failCreates = { remaining: 1, status: 503, message: "no runners available" };
      const lines: string[] = [];
      const handle = await provider(gh.url, {}).createOrGet(spec("hyb"), ctx(lines));
      await gh.settled();
      const text = lines.join("\n");
      expect(text).toContain("direct Daytona create failed");
      expect(text).toContain("no runners available");
      expect(text).toContain("sandbox task-hyb created by GitHub Actions");
      expect(gh.seen).toHaveLength(1);
      expect(gh.seen[0]?.body.inputs).toMatchObject({ sandbox_name: "task-hyb", snapshot: SNAPSHOT, callback_url: route.url });
      expect(JSON.parse(gh.seen[0]?.body.inputs.labels ?? "{}")).toEqual({ org: "default", task: "hyb", app: "kiln" });
      expect(handle).toMatchObject({ name: "task-hyb", state: "running", sandboxId: fake.byName("task-hyb")?.id });
      expect(fake.count("POST /api/sandbox")).toBe(2); // the failed direct try + the workflow's
      expect(waiter.waiting).toBe(0);
      // And it is a normal sandbox afterwards: checked out, idempotent.
      const again = await provider(gh.url, {}).createOrGet(spec("hyb"), ctx([]));
      expect(again.sandboxId).toBe(handle.sandboxId);
      expect(gh.seen).toHaveLength(1);
    } finally {
      fake.failCreates = null;
      await gh.close();
    }
  });

  it("hybrid: uses the direct API when it works (no dispatch)", async () => {
    const gh = await startFakeGitHub(runWorkflow);
    try {
      await provider(gh.url, {}).createOrGet(spec("direct"), ctx([]));
      expect(gh.seen).toHaveLength(0);
    } finally {
      await gh.close();
    }
  });

  it("actions: reports the workflow's failure as unavailable", async () => {
    const gh = await startFakeGitHub(runWorkflow);
    try {
      failNextRun.value = "daytona: quota exceeded";
      const error = await provider(gh.url, { createMode: "actions" })
        .createOrGet(spec("wffail"), ctx([]))
        .then(
          () => null,
          (e: unknown) => e,
        );
      await gh.settled();
      expect(error).toBeInstanceOf(KilnError);
      expect((error as KilnError).code).toBe("unavailable");
      expect((error as KilnError).message).toContain("quota exceeded");
    } finally {
      failNextRun.value = "";
      await gh.close();
    }
  });

  it("actions: a refused dispatch fails fast and leaves no waiter behind", async () => {
    const gh = await startFakeGitHub(runWorkflow);
    try {
      const p = provider(gh.url, {
        createMode: "actions",
        actionsDispatcher: new GitHubWorkflowDispatcher({ token: "gh-token", owner: "acme", repo: "missing", workflow: "create-sandbox.yml", ref: "main", apiUrl: gh.url }),
      });
      await expect(p.createOrGet(spec("nodispatch"), ctx([]))).rejects.toMatchObject({ code: "not_found" });
      expect(waiter.waiting).toBe(0);
    } finally {
      await gh.close();
    }
  });
});
