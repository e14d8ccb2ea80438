// The task actor: owns one task's rows (task, provision steps, sandbox, sessions, transcript, history),
// runs the durable provision workflow, and drives its sandbox and agent.
import {
  AnswerPermissionInputSchema,
  ArchiveTaskInputSchema,
  type ChangedFile,
  CreateSessionInputSchema,
  DestroySandboxInputSchema,
  type DestroySandboxResult,
  ExecInputSchema,
  type ExecResult,
  GetDiffInputSchema,
  KilnError,
  PROVISION_STEPS,
  type ProvisionStepName,
  ReadFileInputSchema,
  RenameSessionInputSchema,
  RunCodeInputSchema,
  SendMessageInputSchema,
  SessionRefSchema,
  TASK_EVENT_NAME,
  type TaskDetail,
  type TaskRecord,
  type TaskSummary,
  WriteFileInputSchema,
  deriveTitle,
  errorMessage,
  GetTranscriptPageInputSchema,
  ReadFileRangeInputSchema,
  type ReadFileRangeResult,
  type TranscriptPage,
  TaskKeySchema,
} from "@kiln/shared";
import { eq, sql } from "drizzle-orm";
import { actor, event, queue } from "rivetkit";
import { ownTaskActions } from "./own-task.ts";
import { workflow } from "rivetkit/workflow";
import { z } from "zod";
import { AUTH_DISABLED } from "../../auth/actor-auth.ts";
import { fail, guard, validate } from "../../errors.ts";
import type { BackendDeps } from "../../deps.ts";
import type { SandboxHandle, SandboxProvider } from "../../providers/types.ts";
import { fileDiff, listChanges, shellQuote } from "../../sandbox/changes.ts";
import { createKeyedQueue } from "../../util/keyed-queue.ts";
import { sleep } from "../../util/process.ts";
import { type ActorHandleCtx, AgentRuntime } from "./agent-runtime.ts";
import { TaskPullRequestSchema, makeTaskGitHub } from "./github.ts";
import { FIRST_SESSION_ID, type ProvisionDeps, runProvisionStep, sandboxHandleFromRow } from "./provision.ts";
import * as schema from "./schema.ts";
import { SeedTranscriptInputSchema, capExecResult, readFileRange, readWholeFile, seedTranscript } from "./large-data.ts";
import { readTranscriptPage } from "./transcript.ts";
import {
  INITIAL_STEPS,
  type TaskCtx,
  appendHistory,
  buildSummary,
  emit,
  onTaskChanged,
  readDetail,
  readSandboxRow,
  readSessions,
  readSteps,
  readTaskRow,
  refreshTask,
  taskDatabase,
  toSandboxInfo,
  toTaskRecord,
  updateSession,
} from "./store.ts";
import { named } from "../../util/db.ts";

/** What the organization passes to `initialize` (internal; validated all the same). */
export const InitializeTaskSchema = z.object({
  orgId: z.string().min(1),
  taskId: z.string().min(1),
  repoId: z.string().min(1),
  repoName: z.string().min(1),
  remoteUrl: z.string().min(1),
  prompt: z.string().min(1),
  title: z.string().nullable(),
  baseBranch: z.string().min(1),
  branch: z.string().nullable(),
  /** The creating organization's actor id: the task calls it by id (no key lookup per call). */
  orgActorId: z.string().min(1).optional(),
  agent: z.enum(["mock", "claude", "codex", "opencode", "amp"]),
  provider: z.enum(["local", "daytona"]),
  createdAt: z.number().int(),
});
export type InitializeTaskInput = z.infer<typeof InitializeTaskSchema>;

/** How long a summary change waits for the rest of its burst before it is pushed to the organization. */
const SUMMARY_COALESCE_MS = 150;
/** The per-task cron of earlier versions (now the organization watches all its tasks). */
const WATCHDOG = "watchdog";
const PROVISION_QUEUE = "provision";
/** Seed-002 checkpoints, one JSON file per settled agent turn, inside the work dir (excluded from diffs). */
export const CHECKPOINT_DIR = ".kiln/checkpoints";
const CHECKPOINT_HISTORY_KIND = "sandbox.checkpoint";
// Checkpoint numbers come from the history count: write them one at a time per task.
const checkpointQueue = createKeyedQueue();

/** Per-instance, in-memory: rebuilt whenever the actor wakes. */
interface TaskVars {
  /** The actor context captured on wake: the only context valid outside actions and workflow steps. */
  actor: unknown;
  runtime: AgentRuntime | null;
  summaryDirty: boolean;
  summaryPushing: boolean;
  /** The organization's actor id, once known (recorded at creation, else resolved on first call). */
  orgActorId: string | null;
}

interface OrgForTask {
  reserveBranch(input: { taskId: string; repoId: string; title: string }): Promise<string>;
  applyTaskSummary(summary: TaskSummary): Promise<void>;
}

export function makeTaskActor(deps: BackendDeps) {
  const { config } = deps;
  const auth = deps.auth ?? AUTH_DISABLED;
  const internalOpts = () => {
    const params = auth.internalParams();
    return params ? { params } : {};
  };
  const deadlines: Record<ProvisionStepName, number> = {
    "ensure-name": 30_000,
    "create-sandbox": config.KILN_CREATE_SANDBOX_TIMEOUT_MS,
    "ensure-agent": config.KILN_STEP_TIMEOUT_MS,
    "create-session": config.KILN_STEP_TIMEOUT_MS,
  };

  type Ctx = TaskCtx & {
    vars: TaskVars;
    key: string[];
    client(): unknown;
    log: { error(message: string | Record<string, unknown>, ...rest: unknown[]): void };
  };

  /**
   * The organization, addressed by actor id: a call by key costs the engine a lookup each time
   * (≈2× the engine CPU of a call by id, decision 0009), and tasks call it on every change.
   */
  const orgOf = async (c: Ctx): Promise<OrgForTask> => {
    const [, orgId] = c.key;
    // Typed narrowly on purpose: importing the registry type here would be circular.
    const accessor = (
      c.client() as {
        organization: {
          getOrCreate(key: string[], opts?: object): { resolve(): Promise<string> };
          getForId(actorId: string, opts?: object): OrgForTask;
        };
      }
    ).organization;
    c.vars.orgActorId ??=
      (await readTaskRow(c))?.orgActorId ?? (await accessor.getOrCreate(["org", orgId ?? "default"], internalOpts()).resolve());
    return accessor.getForId(c.vars.orgActorId, internalOpts());
  };

  const logError = (c: { log: Ctx["log"] }) => (message: string, error: unknown) =>
    c.log.error({ msg: message, error: errorMessage(error) });

  /** Background work (agent turns, summary pushes) must use the live actor context, never `c`. */
  const live = (c: Ctx): Ctx & ActorHandleCtx => {
    if (!c.vars.actor) throw new KilnError("unavailable", "task actor is not awake yet");
    return c.vars.actor as Ctx & ActorHandleCtx;
  };

  const runtimeOf = (c: Ctx): AgentRuntime => {
    const ctx = live(c);
    if (!ctx.vars.runtime) {
      ctx.vars.runtime = new AgentRuntime({
        ctx,
        promptTimeoutMs: config.KILN_PROMPT_TIMEOUT_MS,
        connectTimeoutMs: 30_000,
        logError: logError(c),
        endpoint: async () => {
          const row = await readSandboxRow(ctx);
          if (!row?.daemonUrl) throw new KilnError("not_ready", "the sandbox agent is not running yet");
          return {
            baseUrl: row.daemonUrl,
            token: row.daemonToken,
            headers: row.daemonHeadersJson ? (JSON.parse(row.daemonHeadersJson) as Record<string, string>) : {},
            cwd: row.workdir,
          };
        },
        onTurnSettled: async (sessionId) => {
          const changes = await refreshChanges(ctx);
          // Before refreshTask: once the task shows idle, the turn's checkpoint is in the sandbox.
          try {
            await writeCheckpoint(ctx, sessionId, changes);
          } catch (error) {
            logError(ctx)("writing the turn checkpoint", error);
            await appendHistory(ctx, `${CHECKPOINT_HISTORY_KIND}.failed`, `Checkpoint not written: ${errorMessage(error)}`, {
              sessionId,
            });
          }
          await refreshTask(ctx);
          scheduleSummaryPush(ctx);
        },
      });
    }
    return ctx.vars.runtime;
  };

  /** Push this task's summary to the organization; coalesces bursts, retries a few times, logs failures. */
  const scheduleSummaryPush = (c: Ctx) => {
    const ctx = live(c);
    const vars = ctx.vars;
    vars.summaryDirty = true;
    if (vars.summaryPushing) return;
    vars.summaryPushing = true;
    const push = async () => {
      // Step transitions come in bursts (done → next running → …): one push carries the whole burst.
      await sleep(SUMMARY_COALESCE_MS);
      let failures = 0;
      while (vars.summaryDirty) {
        vars.summaryDirty = false;
        try {
          const summary = await buildSummary(ctx);
          if (summary) await (await orgOf(ctx)).applyTaskSummary(summary);
          failures = 0;
        } catch (error) {
          logError(ctx)("pushing task summary to the organization", error);
          vars.orgActorId = null; // look the organization up again on the next attempt
          if (++failures >= 5) break;
          vars.summaryDirty = true;
          await sleep(1000 * failures);
        }
      }
      vars.summaryPushing = false;
    };
    ctx.waitUntil(push());
  };

  const sandboxOf = async (c: TaskCtx) => {
    const row = await readSandboxRow(c);
    if (!row || row.state === "destroyed") throw new KilnError("not_ready", "the task has no sandbox yet");
    const provider = deps.providers[row.provider as keyof typeof deps.providers];
    if (!provider) throw new KilnError("unavailable", `sandbox provider ${row.provider} is not configured`);
    return { provider, handle: sandboxHandleFromRow(row) };
  };

  const refreshChanges = async (c: Ctx): Promise<ChangedFile[]> => {
    const task = await readTaskRow(c);
    if (!task) return [];
    const { provider, handle } = await sandboxOf(c);
    const changes = await listChanges(provider, handle, task.baseBranch);
    await c.db.update(schema.task).set({ changesJson: JSON.stringify(changes) }).where(eq(schema.task.id, 1));
    await emit(c, { type: "changes", changes });
    return changes;
  };

  /**
   * After each settled agent turn: `.kiln/checkpoints/<n>.json` (turn number, time, session, outcome,
   * changed files) in the work dir, a line in `.kiln/generation.log` and a history event. Skipped when
   * the task ended meanwhile (its sandbox is gone or kept as it was).
   */
  const writeCheckpoint = (c: Ctx, sessionId: string, changes: ChangedFile[]) =>
    checkpointQueue(c.actorId, async () => {
      const task = await readTaskRow(c);
      const row = await readSandboxRow(c);
      if (!task || task.status === "archived" || task.status === "killed" || row?.state !== "running") return;
      const { provider, handle } = await sandboxOf(c);
      const [counted] = await c.db
        .select({ n: sql<number>`count(*)` })
        .from(schema.history)
        .where(eq(schema.history.kind, CHECKPOINT_HISTORY_KIND));
      const turn = Number(counted?.n ?? 0) + 1;
      const [session] = await c.db.select().from(schema.sessions).where(eq(schema.sessions.sessionId, sessionId));
      const file = `${CHECKPOINT_DIR}/${turn}.json`;
      const checkpoint = {
        turn,
        at: new Date().toISOString(),
        taskId: task.taskId,
        sessionId,
        agent: session?.agent ?? task.agent,
        /** Session status after the turn: ready, error or stopped. */
        outcome: session?.status ?? "unknown",
        error: session?.error ?? null,
        branch: task.branch,
        changedFiles: changes,
      };
      await provider.writeFile(handle, file, `${JSON.stringify(checkpoint, null, 2)}\n`);
      await logToSandbox(provider, handle, `checkpoint ${turn}: ${sessionId} ${checkpoint.outcome}, ${changes.length} changed file(s) → ${file}`);
      await appendHistory(c, CHECKPOINT_HISTORY_KIND, `Checkpoint ${turn} written (${changes.length} changed files)`, {
        turn,
        sessionId,
        path: file,
      });
    });

  const requireLive = async (c: TaskCtx) => {
    const row = await readTaskRow(c);
    if (!row) throw new KilnError("not_found", "task not found");
    if (row.status === "archived" || row.status === "killed") throw new KilnError("conflict", `task is ${row.status}`);
    return row;
  };

  const provisionDeps = (c: Ctx): ProvisionDeps => ({
    provider: (id) => {
      const provider = deps.providers[id as keyof typeof deps.providers];
      if (!provider) throw new KilnError("unavailable", `sandbox provider "${id}" is not configured on this backend`);
      return provider;
    },
    agentEnv: deps.agentEnv,
    deadlines,
    reserveBranch: async (input) => (await orgOf(c)).reserveBranch(input),
    runtime: () => runtimeOf(c),
    failCreateSandboxMarker: config.KILN_TEST_FAIL_CREATE_SANDBOX_MARKER,
    logError: logError(c),
    gitAccess: (remoteUrl) => github.cloneAccess(c, remoteUrl),
  });

  /** Release the sandbox (daemon stopped, worktree removed) unless asked to keep it. */
  const releaseSandbox = async (c: Ctx, keep: boolean) => {
    const vars = live(c).vars;
    await vars.runtime?.dispose();
    vars.runtime = null;
    const row = await readSandboxRow(c);
    if (!row || row.state === "destroyed") return;
    const provider = deps.providers[row.provider as keyof typeof deps.providers];
    if (!provider) throw new KilnError("unavailable", `sandbox provider ${row.provider} is not configured`);
    if (keep) {
      // Kept for debugging: a provider with an idle policy reclaims it itself (Daytona: auto-stop
      // re-enabled, so the sandbox stays up for immediate inspection); others stop it now.
      if (provider.release) await provider.release(row.name);
      else await provider.stop(row.name);
      await c.db.update(schema.sandbox).set({ state: "kept", daemonUrl: null }).where(eq(schema.sandbox.id, 1));
    } else {
      await provider.destroy(row.name);
      await c.db.update(schema.sandbox).set({ state: "destroyed", daemonUrl: null }).where(eq(schema.sandbox.id, 1));
    }
    const saved = await readSandboxRow(c);
    if (saved) await emit(c, { type: "sandbox", sandbox: toSandboxInfo(saved) });
  };

  const finish = async (c: Ctx, status: "archived" | "killed", reason: string, keepSandbox: boolean) => {
    await requireLive(c);
    // Stop everything first so the workflow and turns see the terminal status.
    await c.db.update(schema.task).set({ status, updatedAt: Date.now() }).where(eq(schema.task.id, 1));
    for (const session of await readSessions(c)) {
      if (session.status !== "stopped") await updateSession(c, session.sessionId, { status: "stopped" });
    }
    let releaseError: string | null = null;
    try {
      await releaseSandbox(c, keepSandbox);
    } catch (error) {
      releaseError = errorMessage(error);
    }
    await appendHistory(c, `task.${status}`, reason, releaseError ? { releaseError } : null);
    await refreshTask(c, { status, error: releaseError ? `sandbox release failed: ${releaseError}` : null });
    scheduleSummaryPush(c);
    if (releaseError) throw new KilnError("unavailable", `task ${status}, but the sandbox could not be released: ${releaseError}`);
  };

  /** Write the task and its four pending steps, and enqueue provisioning. */
  const bootstrap = async (
    c: TaskCtx & { queue: { send(name: string, body: unknown): Promise<void> } },
    data: InitializeTaskInput,
  ) => {
    await c.db.transaction(async (tx) => {
      await tx.insert(schema.task).values({
        id: 1,
        orgId: data.orgId,
        orgActorId: data.orgActorId ?? null,
        taskId: data.taskId,
        repoId: data.repoId,
        repoName: data.repoName,
        remoteUrl: data.remoteUrl,
        title: data.title ?? deriveTitle(data.prompt),
        titleExplicit: data.title !== null,
        prompt: data.prompt,
        baseBranch: data.baseBranch,
        branch: data.branch,
        agent: data.agent,
        provider: data.provider,
        status: "queued",
        createdAt: data.createdAt,
        updatedAt: data.createdAt,
      });
      await tx.insert(schema.provisionSteps).values(INITIAL_STEPS);
      await tx.insert(schema.history).values({ kind: "task.created", message: "Task created", createdAt: data.createdAt });
    }, named("task-bootstrap"));
    // Enqueue without waiting for the workflow. The durable wake-up after a crash is the organization's
    // task watch (armed by createTask before it created this actor).
    await c.queue.send(PROVISION_QUEUE, { reason: "created" });
  };

  const github = makeTaskGitHub({
    deps,
    auth,
    requireLive,
    sandboxOf,
    scheduleSummaryPush: (c) => scheduleSummaryPush(c as unknown as Ctx),
  });

  return actor({
    db: taskDatabase,
    queues: { [PROVISION_QUEUE]: queue<{ reason: string }>({ canPublish: auth.internalOnly }) },
    events: { [TASK_EVENT_NAME]: event<unknown>() },
    options: { actionTimeout: 120_000, sleepTimeout: config.KILN_TASK_SLEEP_MS },
    ...auth.hooksFor(TaskKeySchema),
    createVars: (): TaskVars => ({ actor: null, runtime: null, summaryDirty: false, summaryPushing: false, orgActorId: null }),

    /** `task.initialize`: runs inside actor creation, so the organization's `create` returns after it. */
    onCreate: async (c, input: InitializeTaskInput) => {
      // `create` skips onBeforeConnect: only the organization (holding the key's create proof) may create tasks.
      validate(TaskKeySchema, c.key, "actor key");
      auth.requireCreateProof(c.key, input);
      try {
        await bootstrap(c, validate(InitializeTaskSchema, input, "task"));
      } catch (error) {
        // RivetKit reports a failed onCreate to the creator only as "internal error": keep the cause.
        c.log.error({ msg: "task bootstrap failed", error: errorMessage(error) });
        throw error;
      }
    },

    onWake: async (c) => {
      c.vars.actor = c;
      onTaskChanged(c.actorId, () => scheduleSummaryPush(c as unknown as Ctx));
      // Turns and permission requests do not survive a restart: say so instead of showing them as live.
      for (const session of await readSessions(c)) {
        if (session.status === "running" || session.status === "needs_input" || session.status === "creating") {
          await updateSession(c, session.sessionId, {
            status: "error",
            error: "interrupted by a backend restart; send a message to continue",
          });
        }
      }
      if (await readTaskRow(c)) await refreshTask(c);
    },

    onSleep: async (c) => {
      onTaskChanged(c.actorId, null);
      await c.vars.runtime?.dispose();
    },

    actions: ownTaskActions({
      /** Idempotent read of the bootstrap record (the rows are written by onCreate). */
      initialize: async (c, input: InitializeTaskInput): Promise<TaskRecord> =>
        guard(async () => {
          auth.requireInternal(c, "initialize");
          const data = validate(InitializeTaskSchema, input, "task");
          const existing = await readTaskRow(c);
          if (existing) return toTaskRecord(existing);
          await bootstrap(c, data);
          const row = await readTaskRow(c);
          if (!row) throw new KilnError("internal", "task row missing after initialize");
          return toTaskRecord(row);
        }),

      /**
       * Called by the organization's task watch when this task looks stalled. Being called wakes the
       * actor (which resumes an interrupted workflow); a step stuck past its deadline is failed here.
       */
      watchdog: async (c) => {
        // Tasks created before the organization's watch existed armed their own cron: retire it.
        if (await c.cron.get(WATCHDOG)) await c.cron.delete(WATCHDOG);
        const row = await readTaskRow(c);
        const steps = await readSteps(c);
        // Settled: finished, or failed and waiting for a person to retry.
        const settled = steps.every((s) => s.state === "done") || steps.some((s) => s.state === "failed");
        if (!row || row.status === "archived" || row.status === "killed" || settled) {
          // The organization thought this task was in flight: its copy of the summary is stale.
          scheduleSummaryPush(c as unknown as Ctx);
          return;
        }
        for (const step of steps) {
          const limit = deadlines[step.step] + 60_000;
          if (step.state === "running" && step.startedAt && Date.now() - step.startedAt > limit) {
            // The workflow replays a crashed step with a fresh startedAt; this only trips when it is wedged.
            await c.db
              .update(schema.provisionSteps)
              .set({ state: "failed", finishedAt: Date.now(), error: `${step.step} exceeded its deadline` })
              .where(eq(schema.provisionSteps.step, step.step));
            await appendHistory(c, `step.${step.step}.failed`, `${step.step} exceeded its deadline`);
            await refreshTask(c);
          }
        }
      },

      getDetail: async (c): Promise<TaskDetail> =>
        guard(async () => {
          const detail = await readDetail(c);
          if (!detail) throw new KilnError("not_found", "task not found");
          return detail;
        }),

      getSummary: async (c): Promise<TaskSummary | null> => buildSummary(c),

      retry: async (c, input: unknown) =>
        guard(async () => {
          validate(z.object({ taskId: z.string() }), input);
          await requireLive(c);
          const steps = await readSteps(c);
          const failed = steps.find((s) => s.state === "failed");
          if (!failed) throw new KilnError("conflict", "nothing to retry: no provision step has failed");
          await c.db
            .update(schema.provisionSteps)
            .set({ state: "pending", error: null, startedAt: null, finishedAt: null, detail: null })
            .where(eq(schema.provisionSteps.step, failed.step));
          const record = (await readSteps(c)).find((s) => s.step === failed.step);
          if (record) await emit(c, { type: "step", step: record });
          await appendHistory(c, "task.retry", `Retrying from ${failed.step}`, { step: failed.step });
          await refreshTask(c);
          await c.queue.send(PROVISION_QUEUE, { reason: "retry" });
          // The organization's task watch is this workflow's durable wake-up: tell it now, not eventually
          // (if that fails, the retry is still under way: fall back to the retried background push).
          try {
            const summary = await buildSummary(c);
            if (summary) await (await orgOf(c as unknown as Ctx)).applyTaskSummary(summary);
          } catch (error) {
            logError(c)("reporting the retry to the organization", error);
            scheduleSummaryPush(c as unknown as Ctx);
          }
        }),

      sendMessage: async (c, input: unknown) =>
        guard(async () => {
          const data = validate(SendMessageInputSchema, input, "message");
          const task = await requireLive(c);
          const [session] = await c.db.select().from(schema.sessions).where(eq(schema.sessions.sessionId, data.sessionId));
          if (!session || session.closed) throw new KilnError("not_found", `session ${data.sessionId} not found`);
          if (session.status === "stopped") throw new KilnError("not_ready", "this session is stopped; open a new session");
          if (session.status === "creating") throw new KilnError("not_ready", "the session is still starting");
          await runtimeOf(c as unknown as Ctx).startTurn(data.sessionId, session.agent as TaskRecord["agent"], data.text);
          scheduleSummaryPush(c as unknown as Ctx);
          void task;
        }),

      answerPermission: async (c, input: unknown) =>
        guard(async () => {
          const data = validate(AnswerPermissionInputSchema, input, "permission answer");
          await requireLive(c);
          await runtimeOf(c as unknown as Ctx).answerPermission(data.sessionId, data.permissionId, data.reply);
          scheduleSummaryPush(c as unknown as Ctx);
        }),

      createSession: async (c, input: unknown) =>
        guard(async () => {
          const data = validate(CreateSessionInputSchema, input, "session");
          const task = await requireLive(c);
          const steps = await readSteps(c);
          if (!steps.every((s) => s.state === "done")) throw new KilnError("not_ready", "the task is still provisioning");
          const all = await readSessions(c, true);
          const sessionId = `session-${all.length + 1}`;
          const now = Date.now();
          await c.db.insert(schema.sessions).values({
            sessionId,
            title: data.title ?? `Session ${all.length + 1}`,
            agent: data.agent ?? task.agent,
            status: "creating",
            createdAt: now,
            updatedAt: now,
          });
          const runtime = runtimeOf(c as unknown as Ctx);
          try {
            await runtime.openSession(sessionId, (data.agent ?? task.agent) as TaskRecord["agent"]);
            const record = await updateSession(c, sessionId, { status: "ready" });
            await appendHistory(c, "session.created", `Opened ${sessionId}`, { sessionId });
            await refreshTask(c);
            scheduleSummaryPush(c as unknown as Ctx);
            if (!record) throw new KilnError("internal", "session vanished");
            return record;
          } catch (error) {
            await updateSession(c, sessionId, { status: "error", error: errorMessage(error) });
            throw error;
          }
        }),

      stopSession: async (c, input: unknown) =>
        guard(async () => {
          const data = validate(SessionRefSchema, input, "session");
          await runtimeOf(c as unknown as Ctx).stopSession(data.sessionId);
          const record = await updateSession(c, data.sessionId, { status: "stopped" });
          if (!record) throw new KilnError("not_found", `session ${data.sessionId} not found`);
          await appendHistory(c, "session.stopped", `Stopped ${data.sessionId}`, { sessionId: data.sessionId });
          await refreshTask(c);
          scheduleSummaryPush(c as unknown as Ctx);
        }),

      closeSession: async (c, input: unknown) =>
        guard(async () => {
          const data = validate(SessionRefSchema, input, "session");
          const open = await readSessions(c);
          if (!open.some((s) => s.sessionId === data.sessionId)) throw new KilnError("not_found", "session not found");
          if (open.length <= 1) throw new KilnError("conflict", "a task keeps at least one open session");
          await runtimeOf(c as unknown as Ctx).stopSession(data.sessionId);
          await c.db
            .update(schema.sessions)
            .set({ status: "stopped", closed: true, updatedAt: Date.now() })
            .where(eq(schema.sessions.sessionId, data.sessionId));
          await emit(c, { type: "session-removed", sessionId: data.sessionId });
          await appendHistory(c, "session.closed", `Closed ${data.sessionId}`, { sessionId: data.sessionId });
          await refreshTask(c);
          scheduleSummaryPush(c as unknown as Ctx);
        }),

      renameSession: async (c, input: unknown) =>
        guard(async () => {
          const data = validate(RenameSessionInputSchema, input, "session");
          const record = await updateSession(c, data.sessionId, { title: data.title });
          if (!record) throw new KilnError("not_found", "session not found");
        }),

      archive: async (c, input: unknown) =>
        guard(async () => {
          const data = validate(ArchiveTaskInputSchema, input, "archive");
          const keep = data.keepSandbox ?? config.KEEP_SANDBOX;
          await finish(c as unknown as Ctx, "archived", keep ? "Archived (sandbox kept for debugging)" : "Archived", keep);
        }),

      kill: async (c, input: unknown) =>
        guard(async () => {
          validate(z.object({ taskId: z.string() }), input);
          await finish(c as unknown as Ctx, "killed", "Killed", false);
        }),

      /**
       * Seed-002 `destroyWorkspace`: a live task's sandbox is where it runs, so destroying it ends the
       * task (killed); an archived task's kept sandbox is deleted and the task stays archived.
       */
      destroySandbox: async (c, input: unknown): Promise<DestroySandboxResult> =>
        guard(async () => {
          validate(DestroySandboxInputSchema, input, "sandbox");
          const task = await readTaskRow(c);
          if (!task) throw new KilnError("not_found", "task not found");
          const row = await readSandboxRow(c);
          const had = !!row && row.state !== "destroyed";
          const result = { taskId: task.taskId, name: row?.name ?? null, destroyed: had, killedTask: false };
          if (task.status !== "archived" && task.status !== "killed") {
            await finish(c as unknown as Ctx, "killed", "Killed: its sandbox was destroyed", false);
            return { ...result, killedTask: true };
          }
          if (!row || !had) return result;
          await releaseSandbox(c as unknown as Ctx, false);
          await appendHistory(c, "sandbox.destroyed", `Destroyed the kept sandbox ${row.name}`, { name: row.name });
          scheduleSummaryPush(c as unknown as Ctx);
          return result;
        }),

      /** Auto-archive and PR updates come from github-state through this action. */
      archiveBecause: async (c, reason: string) =>
        guard(async () => {
          auth.requireInternal(c, "archiveBecause");
          reason = validate(z.string().trim().min(1).max(500), reason, "reason");
          await finish(c as unknown as Ctx, "archived", reason, config.KEEP_SANDBOX);
        }),

      getChanges: async (c): Promise<ChangedFile[]> => guard(() => refreshChanges(c as unknown as Ctx)),

      getFileDiff: async (c, input: unknown) =>
        guard(async () => {
          const data = validate(GetDiffInputSchema, input, "diff");
          if (!data.path) throw new KilnError("invalid_input", "path is required");
          const task = await readTaskRow(c);
          if (!task) throw new KilnError("not_found", "task not found");
          const { provider, handle } = await sandboxOf(c);
          return { path: data.path, diff: await fileDiff(provider, handle, task.baseBranch, data.path) };
        }),

      exec: async (c, input: unknown): Promise<ExecResult> =>
        guard(async () => {
          const data = validate(ExecInputSchema, input, "command");
          const { provider, handle } = await sandboxOf(c);
          const result = await provider.exec(handle, data.command, { timeoutMs: data.timeoutMs });
          await appendHistory(c, "sandbox.exec", `$ ${data.command.slice(0, 200)} → exit ${result.exitCode}`);
          await logToSandbox(provider, handle, `exec: ${data.command} (exit ${result.exitCode})`);
          return capExecResult(result);
        }),

      runCode: async (c, input: unknown): Promise<ExecResult> =>
        guard(async () => {
          const data = validate(RunCodeInputSchema, input, "code");
          const { provider, handle } = await sandboxOf(c);
          const interpreter = { javascript: "node", python: "python3", bash: "bash" }[data.language];
          const file = `.kiln/run-${Date.now()}.${{ javascript: "mjs", python: "py", bash: "sh" }[data.language]}`;
          await provider.writeFile(handle, file, data.code);
          const result = await provider.exec(handle, `${interpreter} ${shellQuote(file)}`, { timeoutMs: data.timeoutMs });
          await logToSandbox(provider, handle, `run ${data.language} (exit ${result.exitCode})`);
          return capExecResult(result);
        }),

      readFile: async (c, input: unknown): Promise<string> =>
        guard(async () => {
          const data = validate(ReadFileInputSchema, input, "file");
          const { provider, handle } = await sandboxOf(c);
          return readWholeFile(provider, handle, data.path);
        }),

      readFileRange: async (c, input: unknown): Promise<ReadFileRangeResult> =>
        guard(async () => {
          const { provider, handle } = await sandboxOf(c);
          return readFileRange(provider, handle, validate(ReadFileRangeInputSchema, input, "file range"));
        }),

      getTranscriptPage: async (c, input: unknown): Promise<TranscriptPage> =>
        guard(async () => readTranscriptPage(c, validate(GetTranscriptPageInputSchema, input, "transcript page"))),

      testSeedTranscript: async (c, input: unknown) =>
        guard(async () => {
          if (!config.KILN_TEST_SEED_TRANSCRIPT) throw new KilnError("forbidden", "test hook is off");
          return seedTranscript(c, validate(SeedTranscriptInputSchema, input, "seed"));
        }),

      writeFile: async (c, input: unknown) =>
        guard(async () => {
          const data = validate(WriteFileInputSchema, input, "file");
          const { provider, handle } = await sandboxOf(c);
          await provider.writeFile(handle, data.path, data.content);
          await logToSandbox(provider, handle, `write ${data.path} (${data.content.length} bytes)`);
          await refreshChanges(c as unknown as Ctx);
        }),

      getSandbox: async (c) => {
        const row = await readSandboxRow(c);
        return row ? toSandboxInfo(row) : null;
      },

      setPullRequest: async (c, pullRequest: TaskRecord["pullRequest"]) =>
        guard(async () => {
          auth.requireInternal(c, "setPullRequest");
          const info = validate(TaskPullRequestSchema, pullRequest, "pull request");
          const current = await readTaskRow(c);
          const json = info ? JSON.stringify(info) : null;
          if (!current || current.pullRequestJson === json) return;
          await refreshTask(c, { pullRequestJson: json });
          scheduleSummaryPush(c as unknown as Ctx);
        }),

      /** Commit uncommitted work and push the task branch to GitHub with a short-lived installation token. */
      pushBranch: async (c, input: unknown) => guard(() => github.pushBranch(c as unknown as Ctx, input)),

      /** Push, then open the task's pull request — or reuse the open one for its branch. */
      openPullRequest: async (c, input: unknown) => guard(() => github.openPullRequest(c as unknown as Ctx, input)),
    }),

    run: workflow(async (ctx) => {
      await ctx.loop("commands", async (loop) => {
        await loop.queue.next("next-command", { names: [PROVISION_QUEUE] });
        for (const name of PROVISION_STEPS) {
          const result = await loop.tryStep({
            name,
            // Our own deadline fires first and records a clean failure; this is the engine's backstop.
            timeout: deadlines[name] + 30_000,
            maxRetries: 0,
            run: async (s) => {
              const c = s as unknown as Ctx;
              const outcome = await runProvisionStep(c, provisionDeps(c), name, s.abortSignal, () =>
                scheduleSummaryPush(c),
              );
              scheduleSummaryPush(c);
              return outcome;
            },
          });
          if (!result.ok || !result.value.ok) break;
        }
      });
    }),
  });
}

/** Seed-002 operation log inside the sandbox work dir (`.kiln/generation.log`, excluded from diffs). */
async function logToSandbox(provider: SandboxProvider, handle: SandboxHandle, line: string): Promise<void> {
  const stamp = new Date().toISOString();
  const result = await provider.exec(
    handle,
    `mkdir -p .kiln && printf '%s\\n' ${shellQuote(`${stamp} ${line}`)} >> .kiln/generation.log`,
    { timeoutMs: 10_000 },
  );
  if (result.exitCode !== 0) throw new KilnError("internal", `writing the sandbox log failed: ${result.stderr.trim()}`);
}
