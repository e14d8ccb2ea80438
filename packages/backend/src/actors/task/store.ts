// Reads and writes of the task actor's own tables, and the ordered realtime event stream.
import {
  type ChangedFile,
  type HistoryEvent,
  PROVISION_STEPS,
  type ProvisionStepName,
  type ProvisionStepRecord,
  type PullRequestInfo,
  type SandboxInfo,
  type SessionRecord,
  TASK_EVENT_NAME,
  type TaskDetail,
  type TaskEventBody,
  type TaskRecord,
  type TaskSummary,
  type TranscriptEvent,
  HISTORY_WINDOW_ENTRIES,
  capTranscriptEvent,
  currentStepOf,
  deriveTaskStatus,
} from "@kiln/shared";
import { and, asc, desc, eq, inArray, sql } from "drizzle-orm";
import type { InferDatabaseClient } from "rivetkit/db";
import { db } from "rivetkit/db/drizzle";
import { createKeyedQueue } from "../../util/keyed-queue.ts";
import { loadMigrations } from "../../util/migrations.ts";
import * as schema from "./schema.ts";
import { named } from "../../util/db.ts";
import { readTranscriptWindow } from "./transcript.ts";

export const taskDatabase = db({ schema, migrations: loadMigrations(new URL("./drizzle/", import.meta.url)) });
export type TaskDb = InferDatabaseClient<typeof taskDatabase>;

/** What the store needs from an actor, action or workflow-step context. */
export interface TaskCtx {
  readonly actorId: string;
  readonly db: TaskDb;
  broadcast(name: string, ...args: unknown[]): void;
}

type TaskRow = typeof schema.task.$inferSelect;
type SessionRow = typeof schema.sessions.$inferSelect;

const parseJson = <T>(text: string | null | undefined, fallback: T): T => (text ? (JSON.parse(text) as T) : fallback);

export function toTaskRecord(row: TaskRow): TaskRecord {
  return {
    orgId: row.orgId,
    taskId: row.taskId,
    repoId: row.repoId,
    repoName: row.repoName,
    title: row.title,
    prompt: row.prompt,
    baseBranch: row.baseBranch,
    branch: row.branch,
    agent: row.agent as TaskRecord["agent"],
    provider: row.provider as TaskRecord["provider"],
    status: row.status as TaskRecord["status"],
    currentStep: row.currentStep as TaskRecord["currentStep"],
    error: row.error,
    pullRequest: parseJson<PullRequestInfo | null>(row.pullRequestJson, null),
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export function toSessionRecord(row: SessionRow): SessionRecord {
  return {
    sessionId: row.sessionId,
    title: row.title,
    agent: row.agent as SessionRecord["agent"],
    status: row.status as SessionRecord["status"],
    error: row.error,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export async function readTaskRow(ctx: TaskCtx): Promise<TaskRow | null> {
  const rows = await ctx.db.select().from(schema.task).where(eq(schema.task.id, 1));
  return rows[0] ?? null;
}

export async function readSteps(ctx: TaskCtx): Promise<ProvisionStepRecord[]> {
  const rows = await ctx.db.select().from(schema.provisionSteps).orderBy(asc(schema.provisionSteps.position));
  return rows.map((r) => ({
    step: r.step as ProvisionStepName,
    state: r.state as ProvisionStepRecord["state"],
    attempt: r.attempt,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    error: r.error,
    detail: r.detail,
  }));
}

export async function readSessions(ctx: TaskCtx, includeClosed = false): Promise<SessionRow[]> {
  const rows = await ctx.db.select().from(schema.sessions).orderBy(asc(schema.sessions.createdAt));
  return includeClosed ? rows : rows.filter((r) => !r.closed);
}

export async function readSandboxRow(ctx: TaskCtx) {
  const rows = await ctx.db.select().from(schema.sandbox).where(eq(schema.sandbox.id, 1));
  return rows[0] ?? null;
}

export function toSandboxInfo(row: NonNullable<Awaited<ReturnType<typeof readSandboxRow>>>): SandboxInfo {
  return {
    provider: row.provider as SandboxInfo["provider"],
    sandboxId: row.sandboxId,
    name: row.name,
    workdir: row.workdir,
    state: row.state as SandboxInfo["state"],
  };
}

export function toTranscriptEvent(row: typeof schema.transcriptEvents.$inferSelect): TranscriptEvent {
  return {
    sessionId: row.sessionId,
    eventIndex: row.eventIndex,
    kind: row.kind as TranscriptEvent["kind"],
    createdAt: row.createdAt,
    text: row.text,
    data: parseJson<Record<string, unknown> | null>(row.dataJson, null),
  };
}

function toHistoryEvent(row: typeof schema.history.$inferSelect): HistoryEvent {
  return {
    id: row.id,
    kind: row.kind,
    message: row.message,
    createdAt: row.createdAt,
    data: parseJson<Record<string, unknown> | null>(row.dataJson, null),
  };
}

export async function readDetail(ctx: TaskCtx): Promise<TaskDetail | null> {
  const row = await readTaskRow(ctx);
  if (!row) return null;
  const [steps, sessionRows, sandboxRow, window, historyRows] = await Promise.all([
    readSteps(ctx),
    readSessions(ctx),
    readSandboxRow(ctx),
    readTranscriptWindow(ctx),
    // The latest entries only, oldest first (a long-lived task's history would outgrow one message).
    ctx.db.select().from(schema.history).orderBy(desc(schema.history.id)).limit(HISTORY_WINDOW_ENTRIES),
  ]);
  return {
    seq: row.seq,
    task: toTaskRecord(row),
    steps,
    sandbox: sandboxRow ? toSandboxInfo(sandboxRow) : null,
    sessions: sessionRows.map(toSessionRecord),
    transcript: window.transcript,
    transcriptBefore: window.transcriptBefore,
    history: historyRows.reverse().map(toHistoryEvent),
    changes: parseJson<ChangedFile[]>(row.changesJson, []),
  };
}

// Emission is serialised per actor so events leave in seq order, whichever context emits them.
const emitQueue = createKeyedQueue();
/** Events raised inside `atomically`: numbered and broadcast when its transaction commits. */
const PENDING_EVENTS = Symbol("pendingEvents");
type CollectingCtx = TaskCtx & { [PENDING_EVENTS]?: TaskEventBody[] };

/** Number the event with the next seq (persisted) and broadcast it. Call after the write it describes. */
export function emit(ctx: TaskCtx, body: TaskEventBody): Promise<void> {
  const pending = (ctx as CollectingCtx)[PENDING_EVENTS];
  if (pending) {
    pending.push(body);
    return Promise.resolve();
  }
  return emitQueue(ctx.actorId, async () => {
    const rows = await ctx.db
      .update(schema.task)
      .set({ seq: sql`${schema.task.seq} + 1` })
      .where(eq(schema.task.id, 1))
      .returning({ seq: schema.task.seq });
    const seq = rows[0]?.seq;
    if (seq !== undefined) ctx.broadcast(TASK_EVENT_NAME, { ...body, seq });
  });
}

/**
 * Run several store writes and their events' seq bump as one transaction: one commit instead of two
 * per write (each commit is a round trip to the engine's storage). Events are broadcast after the
 * commit, in order. `work` must use only the context it is given (a query on the outer context would
 * wait for this transaction to finish).
 */
export function atomically<T>(ctx: TaskCtx, work: (tx: TaskCtx) => Promise<T>): Promise<T> {
  return emitQueue(ctx.actorId, async () => {
    const pending: TaskEventBody[] = [];
    const { result, lastSeq } = await ctx.db.transaction(async (db) => {
      const txCtx: CollectingCtx = { actorId: ctx.actorId, db: db as unknown as TaskDb, broadcast: ctx.broadcast.bind(ctx), [PENDING_EVENTS]: pending };
      const result = await work(txCtx);
      if (pending.length === 0) return { result, lastSeq: 0 };
      const rows = await db
        .update(schema.task)
        .set({ seq: sql`${schema.task.seq} + ${pending.length}` })
        .where(eq(schema.task.id, 1))
        .returning({ seq: schema.task.seq });
      return { result, lastSeq: rows[0]?.seq ?? 0 };
    }, named("task-write-with-events"));
    if (lastSeq > 0) {
      pending.forEach((body, i) => ctx.broadcast(TASK_EVENT_NAME, { ...body, seq: lastSeq - pending.length + 1 + i }));
    }
    return result;
  });
}

export async function appendHistory(
  ctx: TaskCtx,
  kind: string,
  message: string,
  data: Record<string, unknown> | null = null,
): Promise<void> {
  const rows = await ctx.db
    .insert(schema.history)
    .values({ kind, message, dataJson: data ? JSON.stringify(data) : null, createdAt: Date.now() })
    .returning();
  const row = rows[0];
  if (row) await emit(ctx, { type: "history", event: toHistoryEvent(row) });
}

export async function updateStep(
  ctx: TaskCtx,
  step: ProvisionStepName,
  patch: Partial<typeof schema.provisionSteps.$inferInsert>,
): Promise<void> {
  await ctx.db.update(schema.provisionSteps).set(patch).where(eq(schema.provisionSteps.step, step));
  const record = (await readSteps(ctx)).find((s) => s.step === step);
  if (record) await emit(ctx, { type: "step", step: record });
}

// The one projection path to the organization's summary: every task write goes through refreshTask,
// and refreshTask tells the actor's summary pusher (registered on wake), so no status change can reach
// the task view without being scheduled for the sidebar too. Keyed by actor id (one process).
const summaryListeners = new Map<string, () => void>();
/** Called by the task actor on wake (and cleared on sleep): schedules the push of its summary. */
export function onTaskChanged(actorId: string, listener: (() => void) | null): void {
  if (listener) summaryListeners.set(actorId, listener);
  else summaryListeners.delete(actorId);
}

/**
 * Recompute status/currentStep from steps and sessions, persist, emit the task, and schedule the
 * summary push to the organization (inside `atomically` the push reads after the commit: it waits
 * for the burst to coalesce, and its reads queue behind the transaction).
 */
export async function refreshTask(
  ctx: TaskCtx,
  patch: Partial<typeof schema.task.$inferInsert> = {},
): Promise<TaskRecord | null> {
  const row = await readTaskRow(ctx);
  if (!row) return null;
  const steps = await readSteps(ctx);
  const sessionRows = await readSessions(ctx);
  const merged = { ...row, ...patch };
  const status = deriveTaskStatus(
    merged.status as TaskRecord["status"],
    steps,
    sessionRows.map((s) => ({ status: s.status as SessionRecord["status"] })),
  );
  const failedStep = steps.find((s) => s.state === "failed");
  const erroredSession = sessionRows.find((s) => s.status === "error");
  const error =
    status === "error" ? (failedStep?.error ?? erroredSession?.error ?? merged.error ?? "unknown error") : patch.error ?? null;
  const next = {
    ...patch,
    status,
    currentStep: status === "archived" || status === "killed" ? null : currentStepOf(steps),
    error: status === "archived" || status === "killed" ? merged.error : error,
    updatedAt: Date.now(),
  };
  const updated = await ctx.db.update(schema.task).set(next).where(eq(schema.task.id, 1)).returning();
  const record = updated[0] ? toTaskRecord(updated[0]) : null;
  if (record) {
    await emit(ctx, { type: "task", task: record });
    // A refresh that changed nothing the sidebar shows (e.g. on wake) does not cost the organization a write.
    const changed =
      Object.keys(patch).length > 0 || record.status !== row.status || record.currentStep !== row.currentStep || record.error !== row.error;
    if (changed) summaryListeners.get(ctx.actorId)?.();
  }
  return record;
}

export async function buildSummary(ctx: TaskCtx): Promise<TaskSummary | null> {
  const row = await readTaskRow(ctx);
  if (!row) return null;
  const record = toTaskRecord(row);
  const sessionRows = await readSessions(ctx);
  const sandboxRow = await readSandboxRow(ctx);
  return {
    orgId: record.orgId,
    taskId: record.taskId,
    repoId: record.repoId,
    repoName: record.repoName,
    title: record.title,
    branch: record.branch,
    agent: record.agent,
    provider: record.provider,
    status: record.status,
    currentStep: record.currentStep,
    error: record.error,
    pullRequest: record.pullRequest,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    changedFiles: parseJson<ChangedFile[]>(row.changesJson, []).length,
    sessionCount: sessionRows.length,
    sandboxState: sandboxRow ? (sandboxRow.state as SandboxInfo["state"]) : null,
  };
}

export const INITIAL_STEPS = PROVISION_STEPS.map((step, position) => ({
  step,
  position,
  state: "pending" as const,
  attempt: 0,
}));

// Transcript appends are serialised per actor so per-session indexes stay gap-free and ordered.
const transcriptQueue = createKeyedQueue();

export interface TranscriptAppend {
  sessionId: string;
  kind: TranscriptEvent["kind"];
  text: string | null;
  data: Record<string, unknown> | null;
  /** SDK event (for dedupe and resume replay); absent for Kiln's synthetic events. */
  sdkEvent?: { id: string; raw: unknown; createdAt: number };
}

export function appendTranscript(ctx: TaskCtx, item: TranscriptAppend): Promise<TranscriptEvent | null> {
  return transcriptQueue(ctx.actorId, async () => {
    if (item.sdkEvent) {
      const seen = await ctx.db
        .select({ i: schema.transcriptEvents.eventIndex })
        .from(schema.transcriptEvents)
        .where(eq(schema.transcriptEvents.sdkEventId, item.sdkEvent.id));
      if (seen.length) return null; // at-least-once delivery from the SDK
    }
    const [last] = await ctx.db
      .select({ max: sql<number>`coalesce(max(${schema.transcriptEvents.eventIndex}), 0)` })
      .from(schema.transcriptEvents)
      .where(eq(schema.transcriptEvents.sessionId, item.sessionId));
    const row = {
      sessionId: item.sessionId,
      eventIndex: Number(last?.max ?? 0) + 1,
      sdkEventId: item.sdkEvent?.id ?? null,
      kind: item.kind,
      text: item.text,
      dataJson: item.data ? JSON.stringify(item.data) : null,
      rawJson: item.sdkEvent ? JSON.stringify(item.sdkEvent.raw) : null,
      createdAt: item.sdkEvent?.createdAt ?? Date.now(),
    };
    const event = toTranscriptEvent(row);
    await atomically(ctx, async (tx) => {
      await tx.db.insert(schema.transcriptEvents).values(row);
      await emit(tx, { type: "transcript", event: capTranscriptEvent(event) });
    });
    return event;
  });
}

/** Update a session (only while its status is one of `onlyIfStatus`, when given: atomic in SQL). */
export async function updateSession(
  ctx: TaskCtx,
  sessionId: string,
  patch: Partial<typeof schema.sessions.$inferInsert>,
  onlyIfStatus?: SessionRecord["status"][],
): Promise<SessionRecord | null> {
  const match = onlyIfStatus
    ? and(eq(schema.sessions.sessionId, sessionId), inArray(schema.sessions.status, onlyIfStatus))
    : eq(schema.sessions.sessionId, sessionId);
  const rows = await ctx.db
    .update(schema.sessions)
    .set({ ...patch, updatedAt: Date.now() })
    .where(match)
    .returning();
  const row = rows[0];
  if (!row) return null;
  const record = toSessionRecord(row);
  await emit(ctx, { type: "session", session: record });
  return record;
}
