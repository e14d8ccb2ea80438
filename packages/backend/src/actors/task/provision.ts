// The four provision steps. Each runs inside a durable workflow step, is idempotent (a step that was in
// flight during a crash runs again), has its own deadline, and records state, timing, error and history.
import { randomBytes } from "node:crypto";
import {
  type AgentId,
  KilnError,
  type ProvisionStepName,
  deriveTitle,
  errorMessage,
  sandboxNameForTask,
} from "@kiln/shared";
import { and, eq } from "drizzle-orm";
import { withDeadline } from "../../errors.ts";
import type { SandboxHandle, SandboxProvider, StepContext } from "../../providers/types.ts";
import type { AgentRuntime } from "./agent-runtime.ts";
import * as schema from "./schema.ts";
import {
  type TaskCtx,
  appendHistory,
  atomically,
  readSandboxRow,
  readSteps,
  readTaskRow,
  refreshTask,
  toSandboxInfo,
  emit,
  updateStep,
} from "./store.ts";

export interface ProvisionDeps {
  provider(id: string): SandboxProvider;
  agentEnv: Record<string, string>;
  deadlines: Record<ProvisionStepName, number>;
  /** Ask the organization (owner of the task index) for a unique branch name. */
  reserveBranch(input: { taskId: string; repoId: string; title: string }): Promise<string>;
  runtime(): AgentRuntime;
  failCreateSandboxMarker?: string;
  logError(message: string, error: unknown): void;
  /** Credentials for cloning `remoteUrl` (a GitHub App installation token minter), or null for anonymous. */
  gitAccess?(remoteUrl: string): Promise<(() => Promise<string>) | null>;
}

export const FIRST_SESSION_ID = "session-1";

export function sandboxHandleFromRow(row: NonNullable<Awaited<ReturnType<typeof readSandboxRow>>>): SandboxHandle {
  return {
    provider: row.provider as SandboxHandle["provider"],
    sandboxId: row.sandboxId,
    name: row.name,
    workdir: row.workdir,
    state: row.state === "stopped" ? "stopped" : "running",
    labels: JSON.parse(row.labelsJson) as Record<string, string>,
  };
}

async function requireTask(ctx: TaskCtx) {
  const row = await readTaskRow(ctx);
  if (!row) throw new KilnError("not_found", "task is not initialized");
  return row;
}

async function ensureName(ctx: TaskCtx, deps: ProvisionDeps): Promise<string> {
  const row = await requireTask(ctx);
  const title = row.titleExplicit ? row.title : deriveTitle(row.prompt);
  const branch = row.branch ?? (await deps.reserveBranch({ taskId: row.taskId, repoId: row.repoId, title }));
  await atomically(ctx, (tx) => refreshTask(tx, { title, branch }));
  return `branch ${branch}`;
}

async function createSandbox(ctx: TaskCtx, deps: ProvisionDeps, step: StepContext): Promise<string> {
  const row = await requireTask(ctx);
  if (!row.branch) throw new KilnError("internal", "ensure-name did not assign a branch");
  if (deps.failCreateSandboxMarker) {
    // Test hook: fail while the marker file exists, so a test can fail the step and then retry it.
    const { existsSync } = await import("node:fs");
    if (existsSync(deps.failCreateSandboxMarker)) throw new KilnError("unavailable", "injected create-sandbox failure");
  }
  const provider = deps.provider(row.provider);
  const accessToken = deps.gitAccess ? await deps.gitAccess(row.remoteUrl) : null;
  const handle = await provider.createOrGet(
    {
      name: sandboxNameForTask(row.taskId),
      repo: {
        remoteUrl: row.remoteUrl,
        baseBranch: row.baseBranch,
        branch: row.branch,
        ...(accessToken ? { accessToken } : {}),
      },
      labels: { app: "kiln", org: row.orgId, task: row.taskId },
      env: deps.agentEnv,
    },
    step,
  );
  const existing = await readSandboxRow(ctx);
  const values = {
    id: 1,
    provider: handle.provider,
    sandboxId: handle.sandboxId,
    name: handle.name,
    workdir: handle.workdir,
    state: "running",
    labelsJson: JSON.stringify(handle.labels),
    // Per-sandbox daemon token, generated once: a replayed step must reuse it for the running daemon.
    // Hex: never starts with "-" (the daemon's CLI would read that as a flag).
    daemonToken: existing?.daemonToken ?? randomBytes(24).toString("hex"),
  };
  if (existing) await ctx.db.update(schema.sandbox).set(values).where(eq(schema.sandbox.id, 1));
  else await ctx.db.insert(schema.sandbox).values(values);
  const saved = await readSandboxRow(ctx);
  if (saved) await emit(ctx, { type: "sandbox", sandbox: toSandboxInfo(saved) });
  return `${handle.provider} sandbox ${handle.name}`;
}

async function ensureAgent(ctx: TaskCtx, deps: ProvisionDeps, step: StepContext): Promise<string> {
  const row = await requireTask(ctx);
  const sandboxRow = await readSandboxRow(ctx);
  if (!sandboxRow) throw new KilnError("internal", "create-sandbox did not record a sandbox");
  const provider = deps.provider(sandboxRow.provider);
  const endpoint = await provider.ensureDaemon(
    sandboxHandleFromRow(sandboxRow),
    { agent: row.agent as AgentId, token: sandboxRow.daemonToken, env: deps.agentEnv },
    step,
  );
  await assertAgentInstalled(endpoint.baseUrl, endpoint.token, endpoint.headers, row.agent, step.signal);
  await ctx.db
    .update(schema.sandbox)
    .set({ daemonUrl: endpoint.baseUrl, daemonHeadersJson: JSON.stringify(endpoint.headers) })
    .where(eq(schema.sandbox.id, 1));
  // The previous connection (if any) pointed at a daemon that may have been replaced.
  await deps.runtime().reset();
  return `sandbox-agent ready with agent ${row.agent}`;
}

async function assertAgentInstalled(
  baseUrl: string,
  token: string,
  headers: Record<string, string>,
  agent: string,
  signal: AbortSignal,
): Promise<void> {
  const response = await fetch(`${baseUrl}/v1/agents/${encodeURIComponent(agent)}`, {
    headers: { ...headers, authorization: `Bearer ${token}` },
    signal,
  });
  if (!response.ok) throw new KilnError("unavailable", `sandbox-agent could not describe agent ${agent} (HTTP ${response.status})`);
  const info = (await response.json()) as { installed?: boolean; credentialsAvailable?: boolean };
  if (!info.installed) {
    throw new KilnError("unavailable", `agent "${agent}" is not installed in the sandbox (run: sandbox-agent install-agent ${agent})`);
  }
  if (agent !== "mock" && info.credentialsAvailable === false) {
    throw new KilnError("unauthorized", `agent "${agent}" has no credentials: set its API key in the backend environment`);
  }
}

async function createSession(ctx: TaskCtx, deps: ProvisionDeps): Promise<string> {
  const row = await requireTask(ctx);
  const now = Date.now();
  const sessionRows = await ctx.db.select().from(schema.sessions).where(eq(schema.sessions.sessionId, FIRST_SESSION_ID));
  if (!sessionRows[0]) {
    await ctx.db.insert(schema.sessions).values({
      sessionId: FIRST_SESSION_ID,
      title: "Session 1",
      agent: row.agent,
      status: "creating",
      createdAt: now,
      updatedAt: now,
    });
  }
  const runtime = deps.runtime();
  await runtime.openSession(FIRST_SESSION_ID, row.agent as AgentId);
  // A replay after a crash must not send the prompt twice.
  const prompted = await ctx.db
    .select({ i: schema.transcriptEvents.eventIndex })
    .from(schema.transcriptEvents)
    .where(
      and(eq(schema.transcriptEvents.sessionId, FIRST_SESSION_ID), eq(schema.transcriptEvents.kind, "user_message")),
    );
  if (prompted.length === 0 && !runtime.isTurnRunning(FIRST_SESSION_ID)) {
    await runtime.startTurn(FIRST_SESSION_ID, row.agent as AgentId, row.prompt);
  }
  return "session started, prompt sent";
}

const STEP_WORK: Record<ProvisionStepName, (ctx: TaskCtx, deps: ProvisionDeps, step: StepContext) => Promise<string>> = {
  "ensure-name": (ctx, deps) => ensureName(ctx, deps),
  "create-sandbox": createSandbox,
  "ensure-agent": ensureAgent,
  "create-session": (ctx, deps) => createSession(ctx, deps),
};

/** Run one step with bookkeeping. Never throws: failure is recorded and reported as `{ ok: false }`. */
export async function runProvisionStep(
  ctx: TaskCtx,
  deps: ProvisionDeps,
  name: ProvisionStepName,
  abort: AbortSignal,
  onStarted: () => void,
): Promise<{ ok: boolean }> {
  const task = await readTaskRow(ctx);
  if (!task || task.status === "archived" || task.status === "killed") return { ok: false };
  const current = (await readSteps(ctx)).find((s) => s.step === name);
  if (current?.state === "done") return { ok: true };

  const startedAt = Date.now();
  await atomically(ctx, async (tx) => {
    await updateStep(tx, name, {
      state: "running",
      attempt: (current?.attempt ?? 0) + 1,
      startedAt,
      finishedAt: null,
      error: null,
      detail: null,
    });
    await refreshTask(tx);
  });
  onStarted();
  let lastProgress = 0;
  try {
    const detail = await withDeadline(
      name,
      deps.deadlines[name],
      (signal) =>
        STEP_WORK[name](ctx, deps, {
          signal,
          progress: (line) => {
            // Throttle: build logs can be chatty.
            if (Date.now() - lastProgress < 250) return;
            lastProgress = Date.now();
            updateStep(ctx, name, { detail: line.slice(0, 500) }).catch((error: unknown) =>
              deps.logError(`recording progress of ${name}`, error),
            );
          },
        }),
      abort,
    );
    const finishedAt = Date.now();
    await atomically(ctx, async (tx) => {
      await updateStep(tx, name, { state: "done", finishedAt, detail });
      await appendHistory(tx, `step.${name}.done`, `${name} finished in ${finishedAt - startedAt} ms`, {
        step: name,
        durationMs: finishedAt - startedAt,
      });
      await refreshTask(tx);
    });
    return { ok: true };
  } catch (error) {
    const message = errorMessage(error);
    await atomically(ctx, async (tx) => {
      await updateStep(tx, name, { state: "failed", finishedAt: Date.now(), error: message });
      await appendHistory(tx, `step.${name}.failed`, `${name} failed: ${message}`, { step: name });
      await refreshTask(tx);
    });
    return { ok: false };
  }
}
